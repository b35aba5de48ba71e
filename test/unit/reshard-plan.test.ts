// Which buckets a reshard moves: pure planning over a shard map (src/domain/reshard-plan.ts).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BUCKET_COUNT } from '../../src/domain/bucket.ts';
import {
  applyMoves,
  evenShares,
  parseBucketRange,
  planMove,
  planRebalance,
} from '../../src/domain/reshard-plan.ts';
import { initialShardMap, type ShardMap, shardMapProblem } from '../../src/domain/shard-map.ts';

const counts = (m: ShardMap) =>
  Array.from({ length: m.shardCount }, (_, s) => m.owners.filter((o) => o === s).length);

describe('reshard planning', () => {
  test('even shares differ by at most one bucket and add up to every bucket', () => {
    for (const n of [1, 2, 3, 7, 1024]) {
      const shares = [...evenShares(Array.from({ length: n }, (_, i) => i)).values()];
      assert.equal(
        shares.reduce((a, b) => a + b, 0),
        BUCKET_COUNT,
      );
      assert.ok(Math.max(...shares) - Math.min(...shares) <= 1);
    }
  });

  test('2 → 3 shards: a third of the buckets move to the new shard, only from the others', () => {
    const two = initialShardMap(2);
    const three = { ...two, shardCount: 3 };
    const moves = planRebalance(three);
    assert.equal(moves.length, 341);
    assert.ok(moves.every((m) => m.to === 2 && m.from !== 2));
    const after = applyMoves(three, moves);
    assert.equal(after.version, two.version + 1);
    assert.equal(shardMapProblem(after), null);
    assert.deepEqual(counts(after), [342, 341, 341]);
    // Balanced already: nothing to move.
    assert.deepEqual(planRebalance(after), []);
  });

  test('draining a shard gives all its buckets to the others, evenly', () => {
    const three = applyMoves(
      { ...initialShardMap(2), shardCount: 3 },
      planRebalance({ ...initialShardMap(2), shardCount: 3 }),
    );
    const moves = planRebalance(three, [0, 1]);
    assert.ok(moves.every((m) => m.to !== 2));
    const after = applyMoves(three, moves);
    assert.deepEqual(counts(after), [512, 512, 0]);
    assert.throws(() => planRebalance(three, []), /no shard left/);
  });

  test('move: a range of buckets to one shard, skipping those already there', () => {
    const map = initialShardMap(2);
    const moves = planMove(map, { first: 510, last: 515 }, 1);
    assert.deepEqual(
      moves.map((m) => m.bucket),
      [510, 511],
    );
    assert.throws(() => planMove(map, { first: 0, last: 1 }, 5), /not in the map/);
  });

  test('bucket ranges parse within 0..1023 only', () => {
    assert.deepEqual(parseBucketRange('3-9'), { first: 3, last: 9 });
    assert.deepEqual(parseBucketRange('12'), { first: 12, last: 12 });
    for (const bad of ['9-3', '1024', '-1', 'a-b', '', '0-1024'])
      assert.equal(parseBucketRange(bad), null, bad);
  });
});
