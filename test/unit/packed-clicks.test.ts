// Raw click batches as stored: packed and read back unchanged, older JSON batches still read.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encodeRawClicks } from '../../src/domain/clicks.ts';
import { packClicks, unpackClicks } from '../../src/domain/packed-clicks.ts';
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
    assert.ok(packed.startsWith('p1:'));
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
});
