// In-process adapters: LRU cache, rate limiter, resolver coalescing, click buffer, config.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LruCache } from '../../src/cache/lru-cache.ts';
import { loadConfig } from '../../src/config.ts';
import type { RedirectRecord } from '../../src/domain/link.ts';
import { BufferedClickSink } from '../../src/events/buffered-click-sink.ts';
import { uuid7 } from '../../src/events/uuid7.ts';
import { createLogger } from '../../src/logger.ts';
import { noopMetrics } from '../../src/metrics/metrics.ts';
import { MemoryRateLimiter } from '../../src/ratelimit/memory-rate-limiter.ts';
import { LinkResolver } from '../../src/redirect/resolve-link.ts';
import type { ClickBatch } from '../../src/storage/ports.ts';
import { clickEvent, redirectRecord } from '../support/fixtures.ts';

const silent = createLogger('silent');

describe('LRU cache', () => {
  test('is bounded, evicts entries not used since the last pass, and expires entries', () => {
    const c = new LruCache<number>(3);
    c.set('a', 1, 1000, 0);
    c.set('b', 2, 1000, 0);
    c.set('c', 3, 1000, 0);
    assert.equal(c.get('a', 1), 1); // a is now most recent
    c.set('d', 4, 1000, 1);
    assert.equal(c.size, 3);
    assert.equal(c.get('b', 2), undefined);
    assert.equal(c.get('a', 2), 1);
    assert.equal(c.get('a', 1001), undefined);
    const off = new LruCache<number>(0);
    off.set('x', 1, 1000, 0);
    assert.equal(off.size, 0);
  });
});

describe('rate limiter (GCRA)', () => {
  test('allows the burst, then the sustained rate, and says when to retry', () => {
    let now = 0;
    const rl = new MemoryRateLimiter(() => now);
    const p = { name: 't', perSecond: 10, burst: 5 };
    for (let i = 0; i < 5; i++) assert.equal(rl.take(p, 'k').allowed, true, `burst ${i}`);
    const denied = rl.take(p, 'k');
    assert.equal(denied.allowed, false);
    assert.ok(denied.retryAfterSeconds >= 1);
    assert.equal(rl.take(p, 'other').allowed, true, 'keys are independent');
    now += 100;
    assert.equal(rl.take(p, 'k').allowed, true);
    assert.equal(rl.take(p, 'k').allowed, false);
  });
});

describe('link resolver', () => {
  const rec = redirectRecord({ code: 'hot' });

  test('1,000 concurrent lookups of an uncached code cause one store read', async () => {
    let reads = 0;
    const store = {
      getRedirect: async (code: string) => {
        reads++;
        await new Promise((r) => setTimeout(r, 20));
        return code === 'hot' ? rec : null;
      },
    };
    const r = new LinkResolver(
      store,
      { l1: new LruCache(100), l2: null, ttlMs: 60_000, negativeTtlMs: 5000 },
      noopMetrics,
    );
    const got = await Promise.all(Array.from({ length: 1000 }, () => r.resolve('hot')));
    assert.equal(reads, 1);
    assert.ok(got.every((g) => g === rec));
    assert.equal(r.resolve('hot'), rec, 'an L1 hit answers synchronously');
    await r.resolve('none');
    await r.resolve('none');
    assert.equal(reads, 2, 'unknown codes are cached negatively');
    await r.invalidate('none');
    await r.resolve('none');
    assert.equal(reads, 3);
  });

  test('a load that began before an invalidation does not refill the cache with stale data', async () => {
    let url = 'https://old.example/';
    let release!: () => void;
    const store = {
      getRedirect: async () => {
        const seen = url;
        await new Promise<void>((r) => {
          release = r;
        });
        return { ...rec, url: seen };
      },
    };
    const r = new LinkResolver(
      store,
      { l1: new LruCache(100), l2: null, ttlMs: 60_000, negativeTtlMs: 5000 },
      noopMetrics,
    );
    const stale = r.resolve('hot') as Promise<RedirectRecord | null>;
    url = 'https://new.example/';
    await r.invalidate('hot');
    release();
    await stale;
    const fresh = r.resolve('hot');
    assert.ok(fresh instanceof Promise, 'the stale read was not cached');
    release();
    assert.equal((await fresh)?.url, 'https://new.example/');
  });
});

describe('click buffer', () => {
  const event = (code: string) => clickEvent({ code });
  const clicksIn = (bs: readonly ClickBatch[]) =>
    bs.reduce(
      (n, b) =>
        n + b.rollups.filter((r) => r.dim === 'country' && r.code !== '').reduce((m, r) => m + r.clicks, 0),
      0,
    );

  test('writes in batches by size and keeps a failed batch id for the retry', async () => {
    const written: ClickBatch[] = [];
    let fail = true;
    const store = {
      recordClickBatch: async (b: ClickBatch) => {
        if (fail) {
          fail = false;
          throw new Error('transient');
        }
        written.push(b);
        return 'applied' as const;
      },
    };
    const sink = new BufferedClickSink(
      store,
      { batchSize: 3, flushMs: 60_000, maxBuffered: 100 },
      noopMetrics,
      silent,
    );
    for (let i = 0; i < 7; i++) sink.record(event(i % 2 === 0 ? 'a' : 'b'));
    await sink.flush().catch(() => {});
    await sink.close();
    assert.equal(clicksIn(written), 7);
    assert.equal(
      written.reduce((n, b) => n + b.events.length, 0),
      7,
    );
    assert.equal(new Set(written.map((b) => b.id)).size, written.length);
    assert.ok(
      written.every((b) => b.rollups.filter((r) => r.dim === 'country').length <= 3),
      'clicks are summed per link before writing',
    );
  });

  test('many distinct links are written in small batches, none lost', async () => {
    const written: ClickBatch[] = [];
    const store = {
      recordClickBatch: async (b: ClickBatch) => {
        written.push(b);
        return 'applied' as const;
      },
    };
    const sink = new BufferedClickSink(
      store,
      { batchSize: 100_000, flushMs: 60_000, maxBuffered: 100_000 },
      noopMetrics,
      silent,
    );
    for (let i = 0; i < 1200; i++) sink.record(event(`code-${i}`));
    for (let i = 0; i < 300; i++) sink.record(event('code-1'));
    await sink.close();
    assert.ok(written.length >= 3 && written.every((b) => b.rollups.length <= 2000));
    assert.equal(
      written.reduce((n, b) => n + b.events.length, 0),
      1500,
    );
    assert.equal(clicksIn(written), 1500);
    assert.equal(sink.buffered, 0);
  });

  test('a full buffer drops and counts instead of growing', async () => {
    let dropped = 0;
    const metrics = { ...noopMetrics, clicksDropped: (n: number) => (dropped += n) };
    const never = { recordClickBatch: () => new Promise<'applied'>(() => {}) };
    const sink = new BufferedClickSink(
      never,
      { batchSize: 1000, flushMs: 60_000, maxBuffered: 10 },
      metrics,
      silent,
    );
    for (let i = 0; i < 25; i++) sink.record(event('a'));
    assert.equal(sink.buffered, 10);
    assert.equal(dropped, 15);
  });

  test('uuid7 ids sort by time', () => {
    const a = uuid7(1_000);
    const b = uuid7(2_000);
    assert.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.ok(a < b);
  });
});

describe('configuration', () => {
  test('flags beat environment beat defaults', () => {
    const c = loadConfig({ port: '9000' }, { PORT: '8000', HOP_CACHE_SIZE: '5' });
    assert.equal(c.port, 9000);
    assert.equal(c.cacheSize, 5);
    assert.equal(c.codeLength, 7);
    assert.equal(c.apiKeyCacheMs, 1000);
    assert.ok(
      Object.values(c).every((v) => v !== undefined),
      'every Config field has a setting',
    );
    assert.equal(c.publicUrl, 'http://127.0.0.1:9000');
    assert.equal(loadConfig({}, { HOP_PUBLIC_URL: 'https://s.example/' }).publicUrl, 'https://s.example');
    assert.equal(loadConfig({}, { HOP_RATE_LIMITS: 'off' }).rateLimits, false);
    assert.deepEqual(loadConfig({}, { HOP_DENY_HOSTS: 'Bad.example, ünï.example' }).denyHosts, [
      'bad.example',
      'xn--n-nga1b.example',
    ]);
  });

  test('a bad value names the setting', () => {
    assert.throws(
      () => loadConfig({}, { PORT: '70000' }),
      /PORT="70000" must be a whole number from 0 to 65535/,
    );
    assert.throws(
      () => loadConfig({}, { HOP_RATE_LIMITS: 'maybe' }),
      /HOP_RATE_LIMITS="maybe" must be on or off/,
    );
    assert.throws(() => loadConfig({}, { HOP_INITIAL_API_KEY: 'short' }), /HOP_INITIAL_API_KEY/);
    assert.throws(() => loadConfig({ 'log-level': 'loud' }, {}), /--log-level="loud"/);
  });
});
