// Redis behind Sentinel (issue #19, "Survive the loss of any server"): a Redis primary, its replica and
// three Sentinels (scripts/cluster/redis-servers.ts) under a Hop process and a `hop worker` on a real
// PostgreSQL shard. The primary is SIGKILLed under load; the Sentinels promote the replica; Hop keeps
// answering redirects and creates throughout, its cache, rate limits and click stream work against
// the new primary within seconds, and every click answered is counted exactly once.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import {
  killRedisServer,
  loadRedis,
  type RedisServers,
  redisPrimary,
  redisUnavailable,
  startRedis,
  startRedisServer,
  stopRedis,
  waitRedisFailover,
} from '../../scripts/cluster/redis-servers.ts';
import { TEST_KEY } from '../support/harness.ts';
import { type HopProcess, startHop, startWorker } from '../support/hop-process.ts';
import { type Cluster, freshDatabases, stopCluster, testCluster } from '../support/pg-cluster.ts';

/**
 * From the kill until the cache and the rate limits work against the new primary: the Sentinels need
 * down-after (1.5 s) and an election (about 1 s) to promote the replica, clients ask them again every
 * 0.5 s at most, the breakers probe every second. Measured: 3 to 5 s.
 */
const RECOVERY_BOUND_S = 10;
/**
 * Until a click made after the failover is counted: the worker's reads back off while Redis is away
 * (full jitter, capped at 5 s), so add up to that. Measured: 4 to 8.5 s.
 */
const CLICKS_BOUND_S = 15;

const skip = redisUnavailable('sentinel') ?? false;
const auth = { authorization: `Bearer ${TEST_KEY}` };

let pg: Cluster;
let redis: RedisServers;
before(async () => {
  if (skip) return;
  [pg, redis] = await Promise.all([testCluster(1, 0), startRedis({ mode: 'sentinel' })]);
});
after(async () => {
  await Promise.all([pg && stopCluster(pg), redis && stopRedis(redis)]);
});

async function createLink(hop: HopProcess, url: string): Promise<{ status: number; code: string }> {
  const res = await fetch(`${hop.url}/api/v1/links`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ url }),
  });
  const body = (await res.json()) as { code: string };
  return { status: res.status, code: body.code };
}

async function clicksOf(hop: HopProcess, code: string): Promise<number> {
  const res = await fetch(`${hop.url}/api/v1/links/${code}`, { headers: auth });
  assert.equal(res.status, 200);
  return ((await res.json()) as { clicks: number }).clicks;
}

/** A counter from /metrics, summed over the series whose labels contain `labels`. */
async function metric(hop: HopProcess, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${hop.url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) {
      if (line.includes(labels)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return sum;
}

async function until<T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(v)} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A Hop and a worker on fresh databases, the click stream on, Redis through the Sentinels. */
async function startPair(t: { after(fn: () => Promise<void>): void }) {
  const db = await freshDatabases(pg);
  const env = {
    HOP_DATABASE_URLS: db.urls,
    HOP_REDIS_URL: redis.url,
    HOP_INITIAL_API_KEY: TEST_KEY,
    HOP_CLICK_PIPELINE: 'stream',
    HOP_CLICK_STREAM_PARTITIONS: '2',
    HOP_CLICK_FLUSH_MS: '100',
    // No in-process cache: every redirect asks Redis, so the shared cache's return shows.
    HOP_CACHE_SIZE: '0',
    HOP_RATE_LIMITS: 'on',
    HOP_RATE_LIMIT_CREATE: '1000/s,1000',
    HOP_RATE_LIMIT_API: '1000/s,1000',
    // Entries whose acknowledgement the failover lost are taken over soon (and counted once).
    HOP_WORKER_CLAIM_IDLE_MS: '1500',
  };
  const hop = await startHop(env);
  const worker = await startWorker(env);
  t.after(async () => {
    await Promise.all([hop.stop(), worker.stop()]);
  });
  return hop;
}

async function makeLinks(hop: HopProcess, n: number, prefix: string): Promise<Map<string, string>> {
  const links = new Map<string, string>();
  for (let i = 0; i < n; i++) {
    const url = `https://${prefix}.example/${i}`;
    const made = await createLink(hop, url);
    assert.equal(made.status, 201);
    links.set(made.code, url);
  }
  return links;
}

/** Redirects of the links (one request in 20 a create) from four lanes until stopped. */
function startLoad(hop: HopProcess, links: Map<string, string>) {
  const codes = [...links.keys()];
  const sent = new Map<string, number>();
  const problems: string[] = [];
  const state = { creates: 0, running: true };
  let n = 0;
  const lane = async () => {
    while (state.running) {
      const i = n++;
      if (i % 20 === 19) {
        const made = await createLink(hop, `https://load.example/new/${i}`);
        if (made.status !== 201) problems.push(`create answered ${made.status}`);
        else state.creates++;
        continue;
      }
      const code = codes[i % codes.length]!;
      const res = await fetch(`${hop.url}/${code}`, { redirect: 'manual' });
      await res.arrayBuffer();
      if (res.status !== 302 || res.headers.get('location') !== links.get(code)) {
        problems.push(`/${code} answered ${res.status} ${res.headers.get('location')}`);
      } else sent.set(code, (sent.get(code) ?? 0) + 1);
    }
  };
  const lanes = Promise.all([lane(), lane(), lane(), lane()]);
  return {
    sent,
    problems,
    state,
    async stop() {
      state.running = false;
      await lanes;
    },
  };
}

/** Every redirect answered is counted, none twice (waits for the worker, then for anything late). */
async function assertCountedOnce(hop: HopProcess, sent: Map<string, number>): Promise<number> {
  const answered = [...sent.values()].reduce((a, b) => a + b, 0);
  const counted = async () => {
    let total = 0;
    for (const c of sent.keys()) total += await clicksOf(hop, c);
    return total;
  };
  await until('every click counted', counted, (total) => total >= answered, 30_000);
  await new Promise((r) => setTimeout(r, 2_500)); // a late duplicate would show now
  for (const [c, n] of sent) assert.equal(await clicksOf(hop, c), n, `clicks of ${c}`);
  return answered;
}

describe('Redis behind Sentinel', { skip, timeout: 120_000 }, () => {
  test('the Redis primary SIGKILLed under load: Hop follows the promoted replica, and every click counts once', async (t) => {
    const hop = await startPair(t);
    assert.match(redis.url, /^redis-sentinel:\/\/127\.0\.0\.1:\d+,127\.0\.0\.1:\d+,127\.0\.0\.1:\d+\/hop$/);
    const primary = await redisPrimary(redis);
    assert.deepEqual(redis.servers.map((s) => s.role).sort(), [
      'redis-primary',
      'redis-replica',
      'sentinel',
      'sentinel',
      'sentinel',
    ]);
    const links = await makeLinks(hop, 10, 'failover');
    const probe = await createLink(hop, 'https://failover.example/probe');
    assert.equal(probe.status, 201);
    const load = startLoad(hop, links);
    await new Promise((r) => setTimeout(r, 1_500));

    const killedAt = performance.now();
    const since = () => (performance.now() - killedAt) / 1000;
    await killRedisServer(redis, primary.name);
    const promoted = await waitRedisFailover(redis, primary.name, 20_000);
    const failoverS = since();
    assert.notEqual(promoted.name, primary.name);
    assert.equal(promoted.role, 'redis-primary');

    // The shared cache answers again: L2 hits grow while the load runs.
    const l2 = () => metric(hop, 'hop_cache_requests_total', 'tier="l2",result="hit"');
    let lastHits = await l2();
    await until(
      'L2 hits after the failover',
      async () => {
        const [then, now] = [lastHits, await l2()];
        lastHits = now;
        return now - then;
      },
      (grown) => grown > 0,
      RECOVERY_BOUND_S * 1_000,
    );
    const cacheS = since();
    // Rate limits are shared again: creates go through Redis, not the per-process fallback.
    let lastFallbacks = await metric(hop, 'hop_rate_limit_fallbacks_total');
    let lastCreates = load.state.creates;
    await until(
      'rate limits answered by Redis',
      async () => {
        await new Promise((r) => setTimeout(r, 300));
        const [fallbacks, made] = [await metric(hop, 'hop_rate_limit_fallbacks_total'), load.state.creates];
        const clean = fallbacks === lastFallbacks && made > lastCreates;
        [lastFallbacks, lastCreates] = [fallbacks, made];
        return clean;
      },
      (clean) => clean,
      RECOVERY_BOUND_S * 1_000,
    );
    const limitsS = since();
    // A click made now travels the stream on the new primary and is counted.
    let probeClicks = 0;
    await until(
      'a click after the failover counted',
      async () => {
        const res = await fetch(`${hop.url}/${probe.code}`, { redirect: 'manual' });
        await res.arrayBuffer();
        assert.equal(res.status, 302);
        probeClicks++;
        return clicksOf(hop, probe.code);
      },
      (count) => count > 0,
      CLICKS_BOUND_S * 1_000,
    );
    const clicksS = since();
    await new Promise((r) => setTimeout(r, 1_000));
    await load.stop();
    assert.deepEqual(load.problems, [], 'every redirect and create answered right throughout');
    const answered = await assertCountedOnce(hop, load.sent);
    assert.equal(await clicksOf(hop, probe.code), probeClicks, 'clicks of the probe');

    // The Redis that Hop writes to is the promoted replica: the clicks' streams live there.
    const direct = new Redis({ host: '127.0.0.1', port: promoted.port, lazyConnect: true });
    try {
      await direct.connect();
      assert.match(await direct.info('replication'), /role:master/);
      assert.ok((await direct.exists('hop:clicks:{0}', 'hop:clicks:{1}')) >= 1);
    } finally {
      direct.disconnect();
    }

    // The killed primary comes back as a replica of the promoted one, and the roles say so.
    await startRedisServer(redis, primary.name);
    const roles = Object.fromEntries((await loadRedis(redis.dir)).servers.map((s) => [s.name, s.role]));
    assert.equal(roles[primary.name], 'redis-replica');
    assert.equal(roles[promoted.name], 'redis-primary');

    t.diagnostic(
      `failover ${failoverS.toFixed(1)} s after the kill; cache back at ${cacheS.toFixed(1)} s, ` +
        `shared rate limits at ${limitsS.toFixed(1)} s, a new click counted at ${clicksS.toFixed(1)} s; ` +
        `${answered} redirects and ${load.state.creates} creates answered, every click counted once`,
    );
    for (const s of [cacheS, limitsS]) assert.ok(s <= RECOVERY_BOUND_S, `recovered in ${s} s`);
    assert.ok(clicksS <= CLICKS_BOUND_S, `clicks counted again in ${clicksS} s`);
  });

  test('a switchover (SENTINEL FAILOVER) under load: the old primary, alive, gets no more writes, and every click counts once', async (t) => {
    const hop = await startPair(t);
    const old = await redisPrimary(redis);
    const links = await makeLinks(hop, 10, 'switchover');
    const load = startLoad(hop, links);
    await new Promise((r) => setTimeout(r, 1_000));
    const sentinel = redis.servers.find((s) => s.role === 'sentinel' && s.pid !== null)!;
    const admin = new Redis({ host: '127.0.0.1', port: sentinel.port, lazyConnect: true });
    const began = performance.now();
    let switchedS: number;
    try {
      await admin.connect();
      assert.equal(await admin.call('SENTINEL', 'FAILOVER', 'hop'), 'OK');
      await waitRedisFailover(redis, old.name, 20_000);
      switchedS = (performance.now() - began) / 1000;
    } finally {
      admin.disconnect();
    }
    // Hop's connections left the old primary, though it still runs (until Sentinel demotes it).
    const oldServer = new Redis({ host: '127.0.0.1', port: old.port, lazyConnect: true });
    try {
      await oldServer.connect();
      await until(
        'Hop off the old primary',
        async () => {
          const clients = String(await oldServer.call('CLIENT', 'LIST', 'TYPE', 'normal'));
          return clients.split('\n').filter((l) => / name=hop/.test(l)).length;
        },
        (n) => n === 0,
        RECOVERY_BOUND_S * 1_000,
      );
    } finally {
      oldServer.disconnect();
    }
    const movedS = (performance.now() - began) / 1000;
    await new Promise((r) => setTimeout(r, 1_500));
    await load.stop();
    assert.deepEqual(load.problems, [], 'every redirect and create answered right throughout');
    const answered = await assertCountedOnce(hop, load.sent);
    t.diagnostic(
      `switchover done ${switchedS.toFixed(1)} s after SENTINEL FAILOVER, Hop off the old primary at ` +
        `${movedS.toFixed(1)} s; ${answered} redirects answered, every click counted once`,
    );
  });
});
