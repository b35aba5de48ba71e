// The Redis rate limiter on real servers (one, and a three-master Redis Cluster): it passes the
// RateLimiter conformance suite, processes sharing one Redis share one budget, and an outage falls
// back to the per-process limiter within the command timeout, then recovers by itself.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import {
  killRedisServer,
  type RedisServers,
  redisTarget,
  redisUnavailable,
  startRedis,
  startRedisServer,
  stopRedis,
} from '../../scripts/cluster/redis-servers.ts';
import { MemoryRateLimiter } from '../../src/ratelimit/memory-rate-limiter.ts';
import type { RateDecision, RateLimiter } from '../../src/ratelimit/rate-limiter.ts';
import { RedisRateLimiter } from '../../src/ratelimit/redis-rate-limiter.ts';
import { connectRedis, type RedisClient } from '../../src/redis/connect-redis.ts';
import { CircuitBreaker } from '../../src/resilience/circuit-breaker.ts';
import { runRateLimiterConformance } from '../conformance/rate-limiter-conformance.ts';

const skip = redisUnavailable() ?? false;
const COMMAND_TIMEOUT_MS = 200;
/** Scheduling slack on a busy machine, on top of the command timeout. */
const SLACK_MS = 150;
const MODES = ['single', 'cluster'] as const;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function connected(r: RedisServers, name: string): Promise<RedisClient> {
  const client = connectRedis(redisTarget(r), { commandTimeoutMs: COMMAND_TIMEOUT_MS, name });
  client.on('error', () => {
    // It reconnects by itself; failures reach the limiter as rejected commands.
  });
  if (client.status !== 'ready') await once(client, 'ready', { signal: AbortSignal.timeout(10_000) });
  return client;
}

/** Where every answer must come from Redis: a fallback answer fails the test. */
const noFallback: RateLimiter = {
  take() {
    throw new Error('the fallback limiter answered: Redis failed');
  },
};

async function timed(l: RateLimiter, key: string): Promise<{ d: RateDecision; ms: number }> {
  const began = performance.now();
  const d = await l.take({ name: 'outage', perSecond: 0.5, burst: 2 }, key);
  return { d, ms: performance.now() - began };
}

describe('RedisRateLimiter', { skip, timeout: 120_000 }, () => {
  const servers = new Map<string, RedisServers>();
  before(async () => {
    const [single, cluster] = await Promise.all([
      startRedis({ mode: 'single' }),
      startRedis({ mode: 'cluster' }),
    ]);
    servers.set('single', single);
    servers.set('cluster', cluster);
  });
  after(async () => {
    await Promise.all([...servers.values()].map((r) => stopRedis(r)));
  });
  const on = (mode: string) => servers.get(mode)!;

  for (const mode of MODES) {
    runRateLimiterConformance(`redis (${mode})`, async () => {
      const client = await connected(on(mode), 'conformance');
      return {
        limiter: new RedisRateLimiter(client, { fallback: noFallback }),
        close: async () => client.disconnect(),
      };
    });

    test(`${mode}: two processes sharing Redis never grant more than burst + elapsed × rate together`, async (t) => {
      const clients = [await connected(on(mode), 'process-a'), await connected(on(mode), 'process-b')];
      try {
        const [a, b] = clients.map((c) => new RedisRateLimiter(c, { fallback: noFallback }));
        const policy = { name: 'shared', perSecond: 20, burst: 5 };
        const key = randomUUID();
        let granted = 0;
        const began = performance.now();
        const client = async (l: RateLimiter) => {
          while (performance.now() - began < 1_000) {
            if ((await l.take(policy, key)).allowed) granted++;
            await sleep(2);
          }
        };
        await Promise.all([client(a!), client(a!), client(b!), client(b!)]);
        const elapsed = (performance.now() - began) / 1000;
        const bound = policy.burst + elapsed * policy.perSecond;
        t.diagnostic(`granted ${granted} of at most ${bound.toFixed(1)} in ${elapsed.toFixed(2)} s`);
        assert.ok(granted <= bound, `granted ${granted} > ${bound.toFixed(1)} in ${elapsed.toFixed(2)} s`);
        // Each alone would grant about the bound; together they still make progress.
        assert.ok(granted >= policy.burst + 10, `granted only ${granted} in ${elapsed.toFixed(2)} s`);
      } finally {
        for (const c of clients) c.disconnect();
      }
    });
  }

  describe('when Redis fails', () => {
    let r: RedisServers;
    let client: RedisClient;
    let limiter: RedisRateLimiter;
    let fallbacks = 0;

    before(async () => {
      r = await startRedis({ mode: 'single' });
      client = await connected(r, 'outage');
      limiter = new RedisRateLimiter(client, {
        fallback: new MemoryRateLimiter(),
        onFallback: () => fallbacks++,
        breaker: new CircuitBreaker({ failureThreshold: 1, coolDownMs: 300 }),
      });
    });
    after(async () => {
      client?.disconnect();
      if (r !== undefined) await stopRedis(r);
    });

    /** Takes until one is answered by Redis (no fallback), or fails after `timeoutMs`. */
    async function untilRedisAnswers(
      l: RedisRateLimiter,
      keys: string[],
      timeoutMs: number,
    ): Promise<number> {
      const began = performance.now();
      for (;;) {
        const before = fallbacks;
        for (const k of keys) await l.take({ name: 'back', perSecond: 100, burst: 100 }, k);
        if (fallbacks === before && l.breakerState === 'closed') return performance.now() - began;
        if (performance.now() - began > timeoutMs) assert.fail(`Redis not used again within ${timeoutMs} ms`);
        await sleep(50);
      }
    }

    test('a killed Redis: every take falls back within the command timeout and keeps answering', async () => {
      const key = randomUUID();
      assert.equal((await timed(limiter, key)).d.allowed, true);
      assert.equal(fallbacks, 0);
      await killRedisServer(r, 'redis');
      const answers: RateDecision[] = [];
      for (let i = 0; i < 12; i++) {
        const { d, ms } = await timed(limiter, key);
        assert.ok(ms < COMMAND_TIMEOUT_MS + SLACK_MS, `take ${i} took ${ms.toFixed(0)} ms`);
        answers.push(d);
        await sleep(50);
      }
      assert.equal(fallbacks, 12);
      assert.notEqual(limiter.breakerState, 'closed');
      // The per-process limiter starts with a full bucket of its own: approximate, but still a limit.
      assert.deepEqual(
        answers.map((d) => d.allowed),
        [true, true, ...Array(10).fill(false)],
      );
      assert.ok(answers.slice(2).every((d) => d.retryAfterSeconds >= 1));
    });

    test('a restarted Redis is used again once the cool-down has passed: the breaker closes', async (t) => {
      await startRedisServer(r, 'redis');
      const ms = await untilRedisAnswers(limiter, [randomUUID()], 10_000);
      t.diagnostic(`Redis answering again ${ms.toFixed(0)} ms after the restart`);
      // The restarted server kept nothing, the script included (ioredis loads it again).
      assert.equal((await timed(limiter, randomUUID())).d.remaining, 1);
    });

    test('a Redis that stops answering costs one command timeout per cool-down, no more', async () => {
      const pid = r.servers[0]!.pid!;
      const key = randomUUID();
      const before = fallbacks;
      process.kill(pid, 'SIGSTOP');
      try {
        const first = await timed(limiter, key);
        assert.ok(
          first.ms >= COMMAND_TIMEOUT_MS - 20 && first.ms < COMMAND_TIMEOUT_MS + SLACK_MS,
          `the first take waited ${first.ms.toFixed(0)} ms`,
        );
        for (let i = 0; i < 5; i++) {
          const { ms } = await timed(limiter, key);
          assert.ok(ms < 20, `take ${i} during the cool-down took ${ms.toFixed(0)} ms`);
        }
        assert.equal(fallbacks - before, 6);
      } finally {
        process.kill(pid, 'SIGCONT');
      }
      await untilRedisAnswers(limiter, [randomUUID()], 5_000);
    });

    test('cluster: a killed master costs at most a timeout per cool-down; restarted, it is used again', async (t) => {
      const cluster = on('cluster');
      const c = await connected(cluster, 'outage-cluster');
      try {
        const l = new RedisRateLimiter(c, {
          fallback: new MemoryRateLimiter(),
          onFallback: () => fallbacks++,
          breaker: new CircuitBreaker({ failureThreshold: 1, coolDownMs: 300 }),
        });
        // Keys spread over every master.
        const keys = Array.from({ length: 12 }, () => randomUUID());
        await untilRedisAnswers(l, keys, 1_000);
        const before = fallbacks;
        await killRedisServer(cluster, 'redis-1');
        for (let i = 0; i < 24; i++) {
          const { ms } = await timed(l, keys[i % keys.length]!);
          assert.ok(ms < COMMAND_TIMEOUT_MS + SLACK_MS, `take ${i} took ${ms.toFixed(0)} ms`);
        }
        assert.ok(fallbacks > before, 'keys of the dead master fell back');
        t.diagnostic(`${fallbacks - before} of 24 takes fell back while redis-1 was dead`);
        await startRedisServer(cluster, 'redis-1');
        const ms = await untilRedisAnswers(l, keys, 10_000);
        t.diagnostic(`the cluster answered every key again ${ms.toFixed(0)} ms after the restart`);
      } finally {
        c.disconnect();
      }
    });
  });
});
