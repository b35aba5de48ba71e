// Raw click batches as stored: packed and read back unchanged, older JSON batches still read.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encodeRawClicks } from '../../src/domain/clicks.ts';
import { packClicks, regroupPacked, unpackClicks } from '../../src/domain/packed-clicks.ts';
import { OWN_ROW_MIN, tailCode, visitRowsOf } from '../../src/domain/visits.ts';
import { clickEvent } from '../support/fixtures.ts';

describe('packed click batches', () => {
  const at = Date.UTC(2031, 4, 6, 7, 8, 9, 10);
  const events = Array.from({ length: 300 }, (_, i) =>
    clickEvent({
      code: `code${i % 17}`,
      at: at + i * 37,
      referrerHost: i % 3 === 0 ? null : `ref${i % 5}.example`,
      country: i % 4 === 0 ? null : ['DE', 'US', 'JP'][i % 3]!,
      browser: i % 6 === 0 ? null : 'Firefox',
      os: i % 2 === 0 ? 'Linux' : null,
      device: i % 7 === 0 ? 'bot' : 'desktop',
      bot: i % 7 === 0,
    }),
  );

  test('a batch reads back exactly as written, in order, at about half the size of JSON columns', () => {
    const packed = packClicks(events);
    assert.ok(packed.startsWith('p2:'));
    assert.deepEqual(unpackClicks(packed), events);
    const json = encodeRawClicks(events);
    assert.ok(packed.length < json.length * 0.6, `${packed.length} vs ${json.length}`);
  });

  test('older batches (JSON columns) still read, and clicks that do not fit the layout fall back to them', () => {
    assert.deepEqual(unpackClicks(encodeRawClicks(events)), events);
    const odd = [...events.slice(0, 3), clickEvent({ visitor: 'not-a-hex-hash' })];
    const stored = packClicks(odd);
    assert.ok(!stored.startsWith('p1:'));
    assert.deepEqual(unpackClicks(stored), odd);
    assert.deepEqual(unpackClicks(packClicks([])), []);
    const blanks = [clickEvent({ browser: null, os: 'x' }), clickEvent({ browser: '', os: 'x' })];
    assert.deepEqual(unpackClicks(packClicks(blanks)), blanks);
  });

  test('the matched redirect rule reads back, packed and as JSON columns; clicks without one have none', () => {
    const events = [
      clickEvent({ code: 'ab', rule: 2 }),
      clickEvent({ code: 'ab', rule: 0 }),
      clickEvent({ code: 'go.example/ab', rule: 2 }),
      clickEvent({ code: 'plain' }),
    ];
    assert.deepEqual(unpackClicks(packClicks(events)), events);
    assert.deepEqual(unpackClicks(encodeRawClicks(events)), events);
    assert.ok(!('rule' in unpackClicks(packClicks([events[3]!]))[0]!));
  });

  test('user agents and referers read back as sent; batches of the older layout still read', () => {
    const withHeaders = events.map((e, i) => ({
      ...e,
      ...(i % 3 === 0 ? {} : { userAgent: `Agent/${i % 4}` }),
      ...(i % 5 === 0 ? { referer: `https://r${i % 2}.example/p?q=${i}` } : {}),
    }));
    assert.deepEqual(unpackClicks(packClicks(withHeaders)), withHeaders);
  });

  test('regrouped into rows record by record: the same clicks as unpacking, grouping and packing', () => {
    const a = events.slice(0, 150).map((e, i) => ({ ...e, userAgent: `A${i % 3}`, at: e.at + 5_000 }));
    const b = events
      .slice(150)
      .map((e, i) => ({ ...e, ...(i % 2 ? { referer: 'https://x.example/' } : {}) }));
    const rowOf = (code: string, n: number) => (n >= OWN_ROW_MIN ? code : tailCode(code.length));
    const rows = regroupPacked([packClicks(a), '', packClicks(b)], rowOf, 40);
    assert.ok(rows !== null);
    const all = [...a, ...b];
    const expected = visitRowsOf(all, (k) => k.length);
    // Same rows (code and size), same clicks in each, in time order.
    const key = (r: { code?: string; key?: string; visits: number; first: number }) =>
      `${r.code ?? r.key}/${r.first}/${r.visits}`;
    assert.deepEqual(rows.map((r) => key(r)).sort(), expected.map((r) => key(r)).sort());
    for (const r of rows) {
      const back = unpackClicks(r.data);
      assert.equal(back.length, r.visits);
      assert.ok(back.every((e, i) => i === 0 || back[i - 1]!.at <= e.at));
      assert.equal(back.filter((e) => e.bot).length, r.bots);
      for (const e of back)
        assert.deepEqual(
          e,
          all.find((x) => x.id === e.id),
        );
      for (const [code, [n, bots]] of r.perLink) {
        assert.equal(back.filter((e) => e.code === code).length, n);
        assert.equal(back.filter((e) => e.code === code && e.bot).length, bots);
      }
    }
    assert.equal(
      rows.reduce((n, r) => n + r.visits, 0),
      all.length,
    );
    // A batch of the older layout: the caller unpacks instead.
    assert.equal(regroupPacked([encodeRawClicks(a)], rowOf, 40), null);
  });

  test('a regrouped row never spans more than its time offset holds: a later click starts another', () => {
    const first = clickEvent({ code: 'spans', at });
    const later = clickEvent({ code: 'spans', at: at + 60 * 86_400_000 });
    const rows = regroupPacked([packClicks([first]), packClicks([later])], (c) => c, 2_000);
    assert.ok(rows !== null);
    assert.deepEqual(
      rows.map((r) => unpackClicks(r.data)),
      [[first], [later]],
    );
  });
});
