// One contract for every shared-cache adapter (in-memory and Redis, single and cluster): entries,
// negative entries, expiry, and invalidation reaching every other instance on the same backend.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { SharedCache } from '../../src/cache/shared-cache.ts';
import { redirectRecord } from '../support/fixtures.ts';

export interface SharedCachePair {
  /** Two instances on one backend, as two Hop processes on one Redis. */
  a: SharedCache;
  b: SharedCache;
  /** The negative TTL the instances were made with (ms), short enough to wait out. */
  negativeTtlMs: number;
  close(): Promise<void>;
}

const until = async (what: string, ok: () => boolean, ms = 2_000) => {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

export function runSharedCacheConformance(name: string, open: () => Promise<SharedCachePair>): void {
  describe(`SharedCache conformance: ${name}`, () => {
    let p: SharedCachePair;
    before(async () => {
      p = await open();
      await until('the cache to be healthy', () => p.a.healthy && p.b.healthy, 5_000);
    });
    after(async () => {
      await p.close();
    });

    test('a miss is undefined; what one instance sets the other reads, dates intact', async () => {
      assert.equal(await p.a.get('sc-miss'), undefined);
      const rec = redirectRecord({
        code: 'sc-one',
        expiresAt: new Date('2040-01-02T03:04:05.678Z'),
        maxClicks: 3,
      });
      await p.a.set('sc-one', rec, 7);
      const got = await p.b.get('sc-one');
      assert.deepEqual(got?.record, rec);
      assert.equal(got?.loadMs, 7);
      assert.ok(got !== undefined && got.expiresAt > Date.now());
    });

    test('a negative entry is a null record and expires after the negative TTL', async () => {
      await p.a.set('sc-none', null, 1);
      assert.equal((await p.b.get('sc-none'))?.record, null);
      await new Promise((r) => setTimeout(r, p.negativeTtlMs + 50));
      assert.equal(await p.b.get('sc-none'), undefined);
    });

    test('invalidating drops the entry and tells every instance', async () => {
      const seenA: (string | null)[] = [];
      const seenB: (string | null)[] = [];
      p.a.onInvalidate((c) => seenA.push(c));
      p.b.onInvalidate((c) => seenB.push(c));
      await p.a.set('sc-gone', redirectRecord({ code: 'sc-gone' }), 1);
      await p.a.invalidate('sc-gone');
      assert.equal(await p.b.get('sc-gone'), undefined);
      await until('b to hear of it', () => seenB.includes('sc-gone'));
      await until('a to hear of it', () => seenA.includes('sc-gone'));
    });
  });
}
