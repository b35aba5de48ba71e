// Placement, the consistency token and the per-shard split of click batches: pure rules the
// PostgreSQL store relies on.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import { BUCKET_COUNT } from '../../src/domain/bucket.ts';
import { ALL_LINKS, estimateVisitors, splitByShard, summarizeClicks } from '../../src/domain/clicks.ts';
import { initialShardMap, ownerOf, shardMapProblem } from '../../src/domain/shard-map.ts';
import {
  currentConsistency,
  decodeToken,
  encodeToken,
  formatLsn,
  openConsistency,
  parseLsn,
  RequestConsistency,
} from '../../src/storage/consistency.ts';
import { mergeStats } from '../../src/storage/postgres/sharded-store.ts';
import { clickEvent } from '../support/fixtures.ts';

describe('the shard map', () => {
  test('version 1 gives every shard an equal, contiguous range of buckets', () => {
    for (const n of [1, 2, 3, 7]) {
      const map = initialShardMap(n);
      assert.equal(map.version, 1);
      assert.equal(shardMapProblem(map), null);
      const counts = Array.from({ length: n }, (_, s) => map.owners.filter((o) => o === s).length);
      assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `${n} shards: ${counts}`);
      for (let b = 1; b < BUCKET_COUNT; b++) assert.ok(ownerOf(map, b) >= ownerOf(map, b - 1));
    }
  });

  test('a map naming a shard outside its count is refused', () => {
    const map = { ...initialShardMap(2), shardCount: 1 };
    assert.match(String(shardMapProblem(map)), /outside/);
    assert.throws(() => initialShardMap(0), /1 to 1024 shards/);
  });
});

describe('consistency tokens', () => {
  test('WAL positions parse, compare and print back', () => {
    assert.equal(parseLsn('16/B374D848'), (0x16n << 32n) | 0xb374d848n);
    assert.equal(formatLsn(parseLsn('0/3000148')), '0/3000148');
    assert.ok(parseLsn('1/0') > parseLsn('0/FFFFFFFF'));
    assert.throws(() => parseLsn('nope'));
  });

  test('a token round-trips; anything else is ignored', () => {
    const t = {
      mapVersion: 3,
      positions: new Map([
        [0, 5n],
        [1, parseLsn('A/1')],
      ]),
    };
    assert.deepEqual(decodeToken(encodeToken(t)), t);
    assert.equal(decodeToken('garbage'), null);
    assert.equal(decodeToken(Buffer.from('1|x|0:1').toString('base64url')), null);
  });

  test('a write raises what later reads need; a token from another map version is not trusted', () => {
    const presented = { mapVersion: 1, positions: new Map([[0, 10n]]) };
    const ctx = new RequestConsistency(presented);
    assert.equal(ctx.required(0, 1), 10n);
    assert.equal(ctx.required(0, 2), null, 'after a bucket move the old positions mean nothing');
    assert.equal(ctx.tokenToReturn(), null, 'no write, no new token');
    ctx.noteWrite(1, 7n, 1);
    ctx.noteWrite(0, 4n, 1);
    assert.equal(ctx.required(0, 1), 10n, 'the larger of presented and written');
    assert.deepEqual(ctx.tokenToReturn(), {
      mapVersion: 1,
      positions: new Map([
        [0, 10n],
        [1, 7n],
      ]),
    });
  });

  test('a request keeps its scope across awaits while others end; none is left once all end', async () => {
    const a = new RequestConsistency(null);
    const b = new RequestConsistency(null);
    const sa = openConsistency(a);
    const sb = openConsistency(b);
    const seen: (RequestConsistency | null)[] = [];
    let later: Promise<void> = Promise.resolve();
    sa.run(() => {
      later = (async () => {
        await tick();
        seen.push(currentConsistency());
        await tick();
        seen.push(currentConsistency());
      })();
    });
    sb.run(() => seen.push(currentConsistency()));
    sb.end();
    sb.end(); // twice is once
    await later;
    assert.deepEqual(seen, [b, a, a], "b's end leaves a's scope in place");
    sa.end();
    assert.equal(currentConsistency(), null);
    const sc = openConsistency(b);
    let again: RequestConsistency | null = null;
    sc.run(() => {
      again = currentConsistency();
    });
    sc.end();
    assert.equal(again, b, 'a scope opened after all ended works as before');
  });
});

describe('click batches across shards', () => {
  const events = [
    clickEvent({ code: 'a', country: 'NL' }),
    clickEvent({ code: 'a', country: 'BE' }),
    clickEvent({ code: 'b', country: 'NL' }),
    clickEvent({ code: 'c', country: 'FR', bot: true }),
  ];
  const shardOf = (code: string) => (code === 'a' ? 0 : 1);

  test('each shard gets its links and all-links rows summed from them alone', () => {
    const { rollups, visitors } = summarizeClicks(events);
    const parts = splitByShard({ rollups, visitors, events }, shardOf);
    assert.deepEqual([...parts.keys()].sort(), [0, 1]);
    const all = (shard: number) =>
      parts
        .get(shard)!
        .rollups.filter((r) => r.code === ALL_LINKS && r.dim === 'country')
        .reduce((n, r) => n + r.clicks, 0);
    assert.equal(all(0), 2);
    assert.equal(all(1), 2);
    assert.deepEqual(
      parts.get(1)!.events.map((e) => e.code),
      ['b', 'c'],
    );
    // Summed over shards, the all-links rows equal those of the unsplit batch.
    const whole = rollups.filter((r) => r.code === ALL_LINKS).reduce((n, r) => n + r.clicks, 0);
    const split = [...parts.values()].flatMap((p) => p.rollups).filter((r) => r.code === ALL_LINKS);
    assert.equal(
      split.reduce((n, r) => n + r.clicks, 0),
      whole,
    );
    // The union of each shard's all-links registers is the unsplit batch's.
    const merged = new Map<string, number>();
    for (const v of [...parts.values()].flatMap((p) => p.visitors).filter((v) => v.code === ALL_LINKS)) {
      const k = `${v.day}:${v.bot}:${v.reg}`;
      merged.set(k, Math.max(merged.get(k) ?? 0, v.rank));
    }
    const direct = visitors.filter((v) => v.code === ALL_LINKS);
    assert.equal(merged.size, direct.length);
    for (const v of direct) assert.equal(merged.get(`${v.day}:${v.bot}:${v.reg}`), v.rank);
  });

  test('merged stats add series and breakdowns, union visitors and keep the top links', () => {
    const part = (t: number, clicks: number, code: string, reg: number, rank: number) => ({
      series: [{ t, clicks }],
      breakdowns: {
        referrer: [{ value: 'x', clicks }],
        country: [],
        browser: [],
        os: [],
        device: [],
        rule: [],
      },
      visitorRegisters: [{ reg, rank }],
      topLinks: [{ code, clicks }],
    });
    const m = mergeStats([part(0, 2, 'a', 1, 3), part(0, 3, 'b', 1, 5), part(1, 1, 'c', 2, 1)], 2);
    assert.deepEqual(m.series, [
      { t: 0, clicks: 5 },
      { t: 1, clicks: 1 },
    ]);
    assert.deepEqual(m.breakdowns.referrer, [{ value: 'x', clicks: 6 }]);
    assert.deepEqual(m.visitorRegisters, [
      { reg: 1, rank: 5 },
      { reg: 2, rank: 1 },
    ]);
    assert.equal(estimateVisitors(m.visitorRegisters.map((r) => r.rank)) > 0, true);
    assert.deepEqual(m.topLinks, [
      { code: 'b', clicks: 3 },
      { code: 'a', clicks: 2 },
    ]);
  });
});
