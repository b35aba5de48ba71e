// The arithmetic behind the redis-tier scenario, without servers: Hop's tier counters, store reads per
// expiry from per-second scrapes, what a cyclic scan of unknown codes should cost the store, delay
// percentiles and the verdicts. A slip here would misreport a target as met (or not), not crash.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  coalescedShare,
  cyclicScanStoreReads,
  emptyTierCounts,
  expiriesInWindow,
  hitShares,
  median,
  metText,
  parseTierCounts,
  ratioVerdict,
  stampedeFigures,
  storeWindows,
  summarizeDelays,
  tierCountsDelta,
} from '../../../bench/lib/redis-tier-figures.ts';
import { targetsTable } from '../../../bench/scenarios/redis-tier.ts';

const EXPOSITION = [
  '# HELP hop_cache_requests_total Cache lookups by tier and result',
  '# TYPE hop_cache_requests_total counter',
  'hop_cache_requests_total{tier="l1",result="hit"} 900',
  'hop_cache_requests_total{result="miss",tier="l1"} 100',
  'hop_cache_requests_total{tier="l2",result="hit"} 60',
  'hop_cache_requests_total{tier="l2",result="negative"} 15',
  'hop_cache_requests_total{tier="l2",result="miss"} 25',
  'hop_cache_loads_coalesced_total 7',
  'hop_cache_early_refreshes_total 2',
  'hop_store_lookups_total 27',
  'hop_store_reads_rejected_total 5',
  'hop_redis_command_seconds_bucket{le="0.001",op="get",ok="false"} 3',
  'hop_redis_command_seconds_count{op="get",ok="false"} 3',
  'hop_redis_command_seconds_count{op="set",ok="false"} 1',
  'hop_redis_command_seconds_count{op="get",ok="true"} 500',
  'hop_redirects_total{outcome="redirect"} 1000',
].join('\n');

describe('redis-tier figures', () => {
  it('reads every tier, the store and the stampede counters out of /metrics, whatever the label order', () => {
    const c = parseTierCounts(EXPOSITION);
    assert.deepEqual(c, {
      l1Hit: 900,
      l1Miss: 100,
      l1Negative: 0,
      l2Hit: 60,
      l2Miss: 25,
      l2Negative: 15,
      storeLookups: 27,
      coalesced: 7,
      earlyRefreshes: 2,
      redisFailures: 4,
    });
    assert.deepEqual(parseTierCounts(''), emptyTierCounts());
  });

  it('gives hit shares per tier from the counters of a window', () => {
    const before = parseTierCounts(EXPOSITION);
    const after = {
      ...before,
      l1Hit: before.l1Hit + 80,
      l1Miss: before.l1Miss + 20,
      l2Hit: before.l2Hit + 15,
    };
    after.l2Miss += 5;
    const d = tierCountsDelta(before, after);
    assert.equal(d.storeLookups, 0);
    const s = hitShares(d);
    assert.equal(s.l1, 0.8);
    assert.equal(s.l2, 0.75);
    assert.deepEqual(hitShares(emptyTierCounts()), { l1: null, l2: null });
    // Without L1, a lookup either reached L2 or joined one in flight.
    assert.equal(coalescedShare({ ...emptyTierCounts(), l2Hit: 75, coalesced: 25 }), 0.25);
    assert.equal(coalescedShare({ ...emptyTierCounts(), l1Hit: 90, l1Miss: 10, coalesced: 5 }), 0.05);
    assert.equal(coalescedShare(emptyTierCounts()), null);
  });

  it('puts each expiry into the window between the scrapes around it', () => {
    const scrapes = [
      { at: 0, storeLookups: 10, earlyRefreshes: 0 },
      { at: 1000, storeLookups: 11, earlyRefreshes: 0 },
      { at: 2000, storeLookups: 11, earlyRefreshes: 0 },
      { at: 3000, storeLookups: 14, earlyRefreshes: 1 },
    ];
    const w = storeWindows(scrapes, [-5, 1000, 2500, 2600, 3001]);
    assert.deepEqual(
      w.map((x) => [x.reads, x.earlyRefreshes, x.expiries, x.seconds]),
      [
        [1, 0, 1, 1],
        [0, 0, 0, 1],
        [3, 1, 2, 1],
      ],
    );
  });

  it('counts an entry gone before the window opened once, at the opening, and none after the load', () => {
    assert.deepEqual(
      expiriesInWindow([5, 120, 300], { absentAtOpen: false, openedAt: 100, endedAt: 200 }),
      [100, 120],
    );
    // Gone at the opening, and Redis said so just before: one expiry, not two.
    assert.deepEqual(expiriesInWindow([5], { absentAtOpen: true, openedAt: 100, endedAt: 200 }), [100]);
    // Expired before Redis was asked to tell: gone all the same.
    assert.deepEqual(
      expiriesInWindow([150], { absentAtOpen: true, openedAt: 100, endedAt: 200 }),
      [100, 150],
    );
    assert.deepEqual(expiriesInWindow([], { absentAtOpen: false, openedAt: 100, endedAt: 200 }), []);
  });

  it('counts store reads per expiry without early refreshes, and the worst second', () => {
    const f = stampedeFigures([
      { at: 1000, seconds: 1, reads: 1, earlyRefreshes: 0, expiries: 1 },
      // The read after an expiry at the very end of the previous window: one read, no expiry.
      { at: 2000, seconds: 1, reads: 1, earlyRefreshes: 0, expiries: 0 },
      { at: 3000, seconds: 1, reads: 0, earlyRefreshes: 0, expiries: 1 },
      { at: 4000, seconds: 1, reads: 2, earlyRefreshes: 1, expiries: 1 },
    ]);
    assert.equal(f.reads, 4);
    assert.equal(f.earlyRefreshes, 1);
    assert.equal(f.expiries, 3);
    assert.equal(f.readsPerExpiry, 1);
    assert.equal(f.meanPerS, 1);
    assert.equal(f.maxPerS, 2);
    assert.equal(f.worstWindowReadsPerExpiry, 1);

    const stampede = stampedeFigures([{ at: 1000, seconds: 1, reads: 9, earlyRefreshes: 0, expiries: 2 }]);
    assert.equal(stampede.readsPerExpiry, 4.5);
    assert.equal(stampede.worstWindowReadsPerExpiry, 4.5);
    assert.equal(
      stampedeFigures([{ at: 1, seconds: 1, reads: 0, earlyRefreshes: 0, expiries: 0 }]).readsPerExpiry,
      null,
    );
    assert.equal(stampedeFigures([]).worstWindowReadsPerExpiry, null);
  });

  it('replays a cyclic scan: the first cycle misses, then a code is read again once its entry has gone', () => {
    // 4 codes at 1/s with a 5 s TTL: a code comes back every 4 s, so every other visit reads the store.
    assert.deepEqual(cyclicScanStoreReads(4, 1, 16, 5000), { requests: 16, storeReads: 4 + 4 });
    // Back exactly when the entry expires: Hop's L1 treats expiresAt <= now as gone.
    assert.deepEqual(cyclicScanStoreReads(5, 1, 10, 5000), { requests: 10, storeReads: 10 });
    assert.deepEqual(cyclicScanStoreReads(20_000, 5000, 10, 0), { requests: 50_000, storeReads: 50_000 });
    // The scenario's default: a 4 s cycle against a 5 s TTL.
    const d = cyclicScanStoreReads(20_000, 5000, 10, 5000);
    assert.equal(d.storeReads, 20_000 + 10_000);
  });

  it('takes nearest-rank percentiles of delays', () => {
    const values = Array.from({ length: 200 }, (_, i) => i + 1);
    assert.deepEqual(summarizeDelays(values.reverse()), { count: 200, p50: 100, p99: 198, max: 200 });
    assert.deepEqual(summarizeDelays([3]), { count: 1, p50: 3, p99: 3, max: 3 });
    assert.equal(summarizeDelays([]), null);
  });

  it('takes the median of probes', () => {
    assert.equal(median([22_359, 10_936, 14_650]), 14_650);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.equal(median([]), null);
  });

  it('judges a ratio against its target and says when a figure is missing', () => {
    assert.deepEqual(ratioVerdict(90, 100, 0.9), { ratio: 0.9, met: true });
    assert.equal(ratioVerdict(89, 100, 0.9)?.met, false);
    assert.equal(ratioVerdict(undefined, 100, 0.9), null);
    assert.equal(ratioVerdict(5, 0, 0.9), null);
    assert.equal(metText(null), 'not measured');
    assert.equal(metText(false), 'NOT met');
  });

  it('lists the targets of the parts asked for, each with its verdict', () => {
    const t = targetsTable(
      {
        costs: [
          { a: 'L2 only', b: 'node:http + Redis', dist: 'zipf', aUs: 50, bUs: 46, ratio: 0.92 },
          { a: 'L1+L2', b: 'embedded hot path', dist: 'zipf', aUs: 40, bUs: 34, ratio: 0.85 },
        ],
        hotPath: { ratio: 0.95, met: true, medianRatio: 0.85 },
        l2: { uniform: { ratio: 0.8, met: false, medianRatio: null }, zipf: null },
        stampede: { worst: 0.5, met: true },
        scan: [{ codes: 2000, on: 400, off: 2400 }],
        invalidation: { p99: 3.2, missed: 0, met: true },
      },
      ['throughput', 'stampede', 'scan', 'invalidation'],
    );
    assert.deepEqual(
      t.rows.map((r) => [r[1], r[2]]),
      [
        ['0.95x (medians 0.85x)', 'met'],
        ['0.80x', 'NOT met'],
        ['-', 'not measured'],
        ['0.92x (50.0 vs 46.0 µs)', 'met'],
        ['0.85x (40.0 vs 34.0 µs)', 'NOT met'],
        ['0.50 (worst process)', 'met'],
        ['400 vs 2,400/s (0.17x)', 'reported'],
        ['3.20 ms', 'met'],
      ],
    );
    const none = targetsTable(
      { costs: [], hotPath: null, l2: {}, stampede: null, scan: [], invalidation: null },
      ['scan'],
    );
    assert.deepEqual(none.rows, [['scan store reads/s, negative cache on vs off', '-', 'not measured']]);
  });
});
