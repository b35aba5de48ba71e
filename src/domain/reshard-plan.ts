// Which buckets move where (DESIGN §13): pure planning over a shard map, no I/O. Moves go from the
// shards owning more than their share to those owning less, taking a donor's highest buckets first
// so each shard keeps few, long ranges.
import { BUCKET_COUNT } from './bucket.ts';
import type { ShardMap } from './shard-map.ts';

export interface PlannedMove {
  readonly bucket: number;
  readonly from: number;
  readonly to: number;
}

/** The share of each of `shards` (in order) so that they differ by at most one bucket. */
export function evenShares(shards: readonly number[]): Map<number, number> {
  const base = Math.floor(BUCKET_COUNT / shards.length);
  const extra = BUCKET_COUNT % shards.length;
  return new Map(shards.map((s, i) => [s, base + (i < extra ? 1 : 0)]));
}

/** Moves that leave every shard of `among` (default: all) with an even share, and `drain` with none. */
export function planRebalance(map: ShardMap, among?: readonly number[]): PlannedMove[] {
  const shards = among ?? Array.from({ length: map.shardCount }, (_, i) => i);
  if (shards.length === 0) throw new Error('no shard left to own the buckets');
  const target = evenShares(shards);
  const owned = new Map<number, number[]>();
  map.owners.forEach((o, b) => {
    owned.set(o, [...(owned.get(o) ?? []), b]);
  });
  // Donors give their highest buckets first; every bucket of a shard outside `shards` goes.
  const spare: { bucket: number; from: number }[] = [];
  for (const [shard, buckets] of owned) {
    const keep = target.get(shard) ?? 0;
    for (const b of buckets.slice(keep)) spare.push({ bucket: b, from: shard });
  }
  spare.sort((a, b) => a.bucket - b.bucket);
  const moves: PlannedMove[] = [];
  for (const shard of shards) {
    let need = (target.get(shard) ?? 0) - (owned.get(shard)?.length ?? 0);
    while (need > 0) {
      const s = spare.shift();
      if (s === undefined) break;
      moves.push({ bucket: s.bucket, from: s.from, to: shard });
      need--;
    }
  }
  return moves.sort((a, b) => a.bucket - b.bucket);
}

/** Every bucket of `range` not already on `to`. */
export function planMove(map: ShardMap, range: { first: number; last: number }, to: number): PlannedMove[] {
  if (!Number.isInteger(to) || to < 0 || to >= map.shardCount) {
    throw new Error(`shard ${to} is not in the map (shards 0..${map.shardCount - 1})`);
  }
  const moves: PlannedMove[] = [];
  for (let b = range.first; b <= range.last; b++) {
    const from = map.owners[b]!;
    if (from !== to) moves.push({ bucket: b, from, to });
  }
  return moves;
}

/** "A-B" or "A" within 0..1023. */
export function parseBucketRange(text: string): { first: number; last: number } | null {
  const m = /^(\d{1,4})(?:-(\d{1,4}))?$/.exec(text.trim());
  if (m === null) return null;
  const first = Number(m[1]);
  const last = m[2] === undefined ? first : Number(m[2]);
  if (first > last || last >= BUCKET_COUNT) return null;
  return { first, last };
}

/** The map after `moves`, one version on. */
export function applyMoves(
  map: ShardMap,
  moves: readonly PlannedMove[],
  shardCount = map.shardCount,
): ShardMap {
  const owners = [...map.owners];
  for (const m of moves) owners[m.bucket] = m.to;
  return { version: map.version + 1, shardCount, owners };
}
