// Bench test data: codes must be distinct and well-formed, and the Zipf sampler must be skewed as
// the exponent says, or the cache scenarios measure the wrong thing.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { indexSampler, randomApiKey, randomCodes } from '../../../bench/lib/links.ts';

describe('bench links', () => {
  it('makes distinct 7-character base62 codes, repeatably', () => {
    const codes = randomCodes(20_000);
    assert.equal(new Set(codes).size, 20_000);
    assert.ok(codes.every((c) => /^[0-9A-Za-z]{7}$/.test(c)));
    assert.deepEqual(randomCodes(5), codes.slice(0, 5));
    assert.match(randomApiKey(), /^hop_[0-9A-Za-z]{40}$/);
  });

  it('draws Zipf(1) ranks with frequency proportional to 1/k', () => {
    const n = 1000;
    const draws = 200_000;
    const next = indexSampler(n, 'zipf');
    const counts = new Array<number>(n).fill(0);
    for (let i = 0; i < draws; i++) counts[next()]!++;
    let harmonic = 0;
    for (let k = 1; k <= n; k++) harmonic += 1 / k;
    for (const k of [1, 2, 10]) {
      const expected = draws / k / harmonic;
      const got = counts[k - 1]!;
      assert.ok(Math.abs(got - expected) < expected * 0.1, `rank ${k}: ${got} vs ${expected.toFixed(0)}`);
    }
  });

  it('draws uniform indices across the whole range', () => {
    const next = indexSampler(10, 'uniform');
    const counts = new Array<number>(10).fill(0);
    for (let i = 0; i < 50_000; i++) counts[next()]!++;
    assert.ok(
      counts.every((c) => c > 4500 && c < 5500),
      counts.join(','),
    );
  });
});
