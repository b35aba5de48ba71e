// One contract for every RateLimiter adapter (GCRA: `perSecond` sustained, `burst` at once): the
// in-process limiter and the Redis one run it on real time, with small rates and short waits.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { RateDecision, RateLimiter, RatePolicy } from '../../src/ratelimit/rate-limiter.ts';

export interface LimiterUnderTest {
  readonly limiter: RateLimiter;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function runRateLimiterConformance(name: string, open: () => Promise<LimiterUnderTest>): void {
  describe(`RateLimiter conformance: ${name}`, () => {
    let under: LimiterUnderTest;
    // A fresh client key per test: suites may share one server, and rerun against it.
    const take = (policy: RatePolicy, key: string): Promise<RateDecision> =>
      Promise.resolve(under.limiter.take(policy, key));

    before(async () => {
      under = await open();
    });
    after(async () => {
      await under?.close();
    });

    test('a full bucket allows a burst, then refuses with a Retry-After of the wait for one request', async () => {
      const policy = { name: 'burst', perSecond: 1, burst: 3 };
      const key = randomUUID();
      for (let i = 0; i < 3; i++) {
        const d = await take(policy, key);
        assert.equal(d.allowed, true, `request ${i + 1} of the burst`);
        assert.equal(d.retryAfterSeconds, 0);
      }
      const refused = await take(policy, key);
      assert.equal(refused.allowed, false);
      assert.equal(refused.remaining, 0);
      assert.equal(refused.retryAfterSeconds, 1);
      assert.equal(refused.resetSeconds, 3);
    });

    test('remaining counts down to zero while reset grows by one interval per request', async () => {
      const policy = { name: 'countdown', perSecond: 1, burst: 5 };
      const key = randomUUID();
      const seen: [number, number][] = [];
      for (let i = 0; i < 5; i++) {
        const d = await take(policy, key);
        seen.push([d.remaining, d.resetSeconds]);
      }
      assert.deepEqual(seen, [
        [4, 1],
        [3, 2],
        [2, 3],
        [1, 4],
        [0, 5],
      ]);
    });

    test('an awkward rate (7/s, burst 10) still grants exactly the burst: the sums are exact', async () => {
      const policy = { name: 'awkward', perSecond: 7, burst: 10 };
      const key = randomUUID();
      const remaining: (number | 'refused')[] = [];
      for (let i = 0; i < 11; i++) {
        const d = await take(policy, key);
        remaining.push(d.allowed ? d.remaining : 'refused');
      }
      assert.deepEqual(remaining, [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 'refused']);
    });

    test('refusals cost nothing: each one in a row gives the same answer', async () => {
      const policy = { name: 'refusals', perSecond: 1, burst: 1 };
      const key = randomUUID();
      assert.equal((await take(policy, key)).allowed, true);
      const refusals = [await take(policy, key), await take(policy, key), await take(policy, key)];
      for (const d of refusals) {
        assert.deepEqual(d, { allowed: false, remaining: 0, resetSeconds: 1, retryAfterSeconds: 1 });
      }
    });

    test('a slow policy (one request per 2 s) asks to retry after 2 s', async () => {
      const policy = { name: 'slow', perSecond: 0.5, burst: 1 };
      const key = randomUUID();
      const first = await take(policy, key);
      assert.deepEqual(first, { allowed: true, remaining: 0, resetSeconds: 2, retryAfterSeconds: 0 });
      const second = await take(policy, key);
      assert.deepEqual(second, { allowed: false, remaining: 0, resetSeconds: 2, retryAfterSeconds: 2 });
    });

    test('the bucket refills at the policy rate', async () => {
      const policy = { name: 'refill', perSecond: 10, burst: 2 };
      const key = randomUUID();
      assert.equal((await take(policy, key)).allowed, true);
      assert.equal((await take(policy, key)).allowed, true);
      assert.equal((await take(policy, key)).allowed, false);
      // 1.5 intervals: one request's worth is back.
      await sleep(150);
      assert.equal((await take(policy, key)).allowed, true);
    });

    test('a long idle time refills only up to the burst', async () => {
      const policy = { name: 'idle', perSecond: 10, burst: 2 };
      const key = randomUUID();
      await take(policy, key);
      await take(policy, key);
      // Long enough for four requests; the bucket holds two.
      await sleep(400);
      const next = [await take(policy, key), await take(policy, key), await take(policy, key)];
      assert.deepEqual(
        next.map((d) => d.allowed),
        [true, true, false],
      );
    });

    test('clients and policies have buckets of their own', async () => {
      const api = { name: 'api', perSecond: 1, burst: 1 };
      const create = { name: 'create', perSecond: 1, burst: 1 };
      const alice = randomUUID();
      const bob = randomUUID();
      assert.equal((await take(api, alice)).allowed, true);
      assert.equal((await take(api, alice)).allowed, false);
      assert.equal((await take(api, bob)).allowed, true, 'another client of the same policy');
      assert.equal((await take(create, alice)).allowed, true, 'the same client under another policy');
    });
  });
}
