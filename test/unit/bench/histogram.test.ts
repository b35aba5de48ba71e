// Percentile maths of the latency histogram against distributions whose answers are known exactly.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LatencyHistogram } from '../../../bench/lib/histogram.ts';

/** Three significant digits: every reported value is within 0.1% of the true one. */
function near(actual: number, expected: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= expected * 0.001 + 0.001, `${what}: ${actual} vs ${expected}`);
}

describe('LatencyHistogram', () => {
  it('matches the percentiles of a uniform 1..10000 µs distribution', () => {
    const h = new LatencyHistogram();
    for (let us = 1; us <= 10_000; us++) h.recordMicros(us);
    const s = h.summary();
    assert.equal(s.count, 10_000);
    near(s.p50, 5, 'p50');
    near(s.p90, 9, 'p90');
    near(s.p99, 9.9, 'p99');
    near(s.p999, 9.99, 'p99.9');
    near(s.max, 10, 'max');
    near(s.mean, 5.0005, 'mean');
  });

  it('puts a rare outlier exactly where its rank says', () => {
    const h = new LatencyHistogram();
    // 990 fast answers and 10 one-second stalls: p99 is the last fast one, p99.9 a stall.
    for (let i = 0; i < 990; i++) h.recordMillis(2);
    for (let i = 0; i < 10; i++) h.recordMillis(1000);
    const s = h.summary();
    near(s.p50, 2, 'p50');
    near(s.p99, 2, 'p99');
    near(s.p999, 1000, 'p99.9');
    near(s.max, 1000, 'max');
    near(s.mean, (990 * 2 + 10 * 1000) / 1000, 'mean');
    assert.equal(h.countAtOrAboveMs(500), 10);
    assert.equal(h.countAtOrAboveMs(2), 1000);
    assert.equal(h.countAtOrAboveMs(1001), 0);
  });

  it('clamps out-of-range values instead of losing them', () => {
    const h = new LatencyHistogram();
    h.recordMicros(0);
    h.recordMillis(120_000);
    assert.equal(h.count, 2);
    near(h.summary().max, 60_000, 'max');
  });

  it('merges and reports an empty histogram as zeros', () => {
    const a = new LatencyHistogram();
    const b = new LatencyHistogram();
    assert.deepEqual(a.summary(), { count: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 });
    a.recordMillis(1);
    b.recordMillis(3);
    a.add(b);
    assert.equal(a.count, 2);
    near(a.summary().max, 3, 'max');
    const curve = a.curve();
    assert.equal(curve[0]!.percentile, 0);
    assert.equal(curve.at(-1)!.percentile, 100);
  });
});
