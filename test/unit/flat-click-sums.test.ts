// The embedded writer's flat sums must give exactly the rows the reference summing gives
// (summarizeClicks), whichever question is asked of them.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  ALL_LINKS,
  type ClickEvent,
  COUNTED_BY,
  type RollupIncrement,
  summarizeClicks,
  type VisitorRegister,
} from '../../src/domain/clicks.ts';
import { FlatClickSums } from '../../src/domain/flat-click-sums.ts';
import { clickEvent } from '../support/fixtures.ts';

const rollupKey = (r: RollupIncrement) => `${r.code}|${r.hour}|${r.bot}|${r.dim}|${r.value}|${r.clicks}`;
const visitorKey = (v: VisitorRegister) => `${v.code}|${v.day}|${v.bot}|${v.reg}|${v.rank}`;
const sorted = (xs: string[]) => [...xs].sort();

/** Clicks over 40 links, 3 days, bots and not, a few values of each dimension. */
function randomClicks(n: number, seed: number): ClickEvent[] {
  let s = seed;
  const rnd = (k: number) => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s >>> 8) % k;
  };
  const start = Date.UTC(2031, 0, 1, 20);
  return Array.from({ length: n }, () =>
    clickEvent({
      code: `link${rnd(40)}`,
      at: start + rnd(3 * 24) * 3_600_000 + rnd(3_600_000),
      referrerHost: ['t.co', null, 'news.ycombinator.com'][rnd(3)]!,
      country: ['DE', 'US', null][rnd(3)]!,
      browser: ['Chrome', 'Firefox'][rnd(2)]!,
      os: ['Windows', null][rnd(2)]!,
      device: ['desktop', 'mobile'][rnd(2)]!,
      bot: rnd(5) === 0,
    }),
  );
}

describe('flat click sums', () => {
  const events = randomClicks(5_000, 7);
  const reference = summarizeClicks(events);
  const sums = new FlatClickSums();
  for (const e of events) sums.add(e);

  test('all rows, split into parts, are the reference rows, each once', () => {
    const parts = sums.partition(7);
    assert.deepEqual(
      sorted(parts.flatMap((p) => p.rollups.map(rollupKey))),
      sorted(reference.rollups.map(rollupKey)),
    );
    assert.deepEqual(
      sorted(parts.flatMap((p) => p.visitors.map(visitorKey))),
      sorted(reference.visitors.map(visitorKey)),
    );
    const all = sums.rowsOf(ALL_LINKS);
    assert.equal(
      sums.rows,
      reference.rollups.length + reference.visitors.length - all.rollups.length - all.visitors.length,
    );
    // A link's rows all go to one part, and the all-links rows to part 0.
    for (const [k, p] of parts.entries()) {
      for (const r of p.rollups) if (r.code === ALL_LINKS) assert.equal(k, 0);
    }
    const partsOf = new Map<string, Set<number>>();
    for (const [k, p] of parts.entries())
      for (const r of p.rollups) partsOf.set(r.code, (partsOf.get(r.code) ?? new Set()).add(k));
    for (const [code, ks] of partsOf) if (code !== ALL_LINKS) assert.equal(ks.size, 1, code);
  });

  test("one link's rows, all links' rows and a link's clicks", () => {
    for (const code of ['link0', 'link17', ALL_LINKS, 'never-clicked']) {
      const own = sums.rowsOf(code);
      assert.deepEqual(
        sorted(own.rollups.map(rollupKey)),
        sorted(reference.rollups.filter((r) => r.code === code).map(rollupKey)),
        code,
      );
      assert.deepEqual(
        sorted(own.visitors.map(visitorKey)),
        sorted(reference.visitors.filter((v) => v.code === code).map(visitorKey)),
        code,
      );
    }
    assert.equal(sums.clicksOf('link3'), events.filter((e) => e.code === 'link3').length);
    assert.equal(sums.clicksOf('never-clicked'), 0);
  });

  test('clicks per link, hour and bot flag', () => {
    const expected = reference.rollups
      .filter((r) => r.code !== ALL_LINKS && r.dim === COUNTED_BY)
      .reduce((m, r) => {
        const k = `${r.code}|${r.hour}|${r.bot}`;
        return m.set(k, (m.get(k) ?? 0) + r.clicks);
      }, new Map<string, number>());
    const got = new Map([...sums.linkHours()].map((h) => [`${h.code}|${h.hour}|${h.bot}`, h.clicks]));
    assert.deepEqual(got, expected);
  });

  test('growing past its first arrays keeps every count', () => {
    const many = new FlatClickSums();
    const at = Date.UTC(2031, 0, 1);
    let x0 = 0;
    for (let i = 0; i < 30_000; i++) {
      many.add(clickEvent({ code: `c${i % 3_000}`, at, country: `X${i % 7}` }));
      if (i % 3_000 === 42 && i % 7 === 0) x0++;
    }
    assert.equal(many.clicksOf('c42'), 10);
    const own = many.rowsOf('c42').rollups;
    assert.equal(own.find((r) => r.dim === 'country' && r.value === 'X0')?.clicks ?? 0, x0);
    const countries = new Set(Array.from({ length: 10 }, (_, k) => (42 + k * 3_000) % 7));
    assert.equal(own.filter((r) => r.dim === 'country').length, countries.size);
  });
});
