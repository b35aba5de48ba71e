// Which shard owns each bucket (DESIGN §2). H and the bucket count never change; the owners do,
// one version at a time, which is what lets a bucket move between shards online.
import { BUCKET_COUNT } from './bucket.ts';

export interface ShardMap {
  readonly version: number;
  readonly shardCount: number;
  /** owners[bucket] is the index of the shard that owns it. */
  readonly owners: readonly number[];
}

/** Version 1 for a new cluster: contiguous, equal ranges of buckets per shard. */
export function initialShardMap(shardCount: number): ShardMap {
  if (!Number.isInteger(shardCount) || shardCount < 1 || shardCount > BUCKET_COUNT) {
    throw new Error(`a shard map needs 1 to ${BUCKET_COUNT} shards, got ${shardCount}`);
  }
  const owners = Array.from({ length: BUCKET_COUNT }, (_, b) => Math.floor((b * shardCount) / BUCKET_COUNT));
  return { version: 1, shardCount, owners };
}

/** Why a stored map cannot be used, or null. */
export function shardMapProblem(map: ShardMap): string | null {
  if (map.owners.length !== BUCKET_COUNT) return `it has ${map.owners.length} buckets, not ${BUCKET_COUNT}`;
  const bad = map.owners.find((o) => !Number.isInteger(o) || o < 0 || o >= map.shardCount);
  if (bad !== undefined) return `a bucket is owned by shard ${bad}, outside 0..${map.shardCount - 1}`;
  return null;
}

export function ownerOf(map: ShardMap, bucket: number): number {
  const owner = map.owners[bucket];
  if (owner === undefined) throw new Error(`bucket ${bucket} is outside 0..${BUCKET_COUNT - 1}`);
  return owner;
}
