// `hop shards` beyond moving buckets: what the placement is, adding a shard, detaching a drained
// one. Adding and removing publish a new map version like a move does, so running Hops follow.
import { type ShardMap, shardMapProblem } from '../domain/shard-map.ts';
import { PgPool } from '../storage/postgres/pg-pool.ts';
import { redactUrls } from '../storage/postgres/shard-catalog.ts';
import { migrate } from '../storage/sql/migrate.ts';
import { publishMap } from './mover.ts';
import { INSERT_MAP, mapArgs, newestMap, POOL, type ReshardCluster } from './reshard-cluster.ts';

export interface ShardsStatus {
  readonly mapVersion: number;
  readonly shards: { shard: number; buckets: number; links: number; urls: string }[];
  readonly movesInProgress: { bucket: number; from: number; to: number; state: string }[];
  readonly movesDone: number;
  readonly movesAborted: number;
  readonly fenceMs: { p50: number; p99: number; max: number } | null;
}

export async function shardsStatus(c: ReshardCluster): Promise<ShardsStatus> {
  const map = await newestMap(c.primaries);
  const catalog = c.primaries[0]!;
  const open = await catalog.query<{ bucket: number; from_shard: number; to_shard: number; state: string }>(
    `SELECT bucket, from_shard, to_shard, state FROM bucket_moves WHERE state IN ('planned', 'copied') ORDER BY id`,
  );
  const counts = await catalog.query<{ state: string; n: number }>(
    'SELECT state, count(*)::int AS n FROM bucket_moves GROUP BY state',
  );
  const fences = await catalog.query<{ p50: number | null; p99: number | null; max: number | null }>(
    `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY fence_ms) AS p50,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY fence_ms) AS p99, max(fence_ms) AS max
     FROM bucket_moves WHERE fence_ms IS NOT NULL`,
  );
  const f = fences.rows[0];
  const shards = [];
  for (let i = 0; i < map.shardCount; i++) {
    const links = await c.primaries[i]!.query<{ n: number }>('SELECT count(*)::int AS n FROM links');
    shards.push({
      shard: i,
      buckets: map.owners.filter((o) => o === i).length,
      links: links.rows[0]?.n ?? 0,
      urls: redactUrls(c.urls[i] ?? ''),
    });
  }
  const n = (state: string) => counts.rows.find((r) => r.state === state)?.n ?? 0;
  return {
    mapVersion: map.version,
    shards,
    movesInProgress: open.rows.map((r) => ({
      bucket: r.bucket,
      from: r.from_shard,
      to: r.to_shard,
      state: r.state,
    })),
    movesDone: n('moved'),
    movesAborted: n('aborted'),
    fenceMs: f?.max == null ? null : { p50: f.p50 ?? 0, p99: f.p99 ?? 0, max: f.max },
  };
}

/** Every shard's record of where every shard is (a Hop opens a shard it meets in a map from it). */
async function recordNodes(all: readonly PgPool[], urls: readonly string[]): Promise<void> {
  for (const p of all) {
    for (const [shard, u] of urls.entries()) {
      await p.query(
        `INSERT INTO shard_nodes (shard, urls) VALUES ($1, $2) ON CONFLICT (shard) DO UPDATE SET urls = excluded.urls`,
        [shard, u],
      );
    }
    await p.query('DELETE FROM shard_nodes WHERE shard >= $1', [urls.length]);
  }
}

/**
 * Claims an empty database as the next shard: migrated, given this cluster's identity, the map
 * history's newest version, and a map version naming it (with no buckets yet: `rebalance` moves
 * them). Re-running it for the same database finishes a claim a crash interrupted.
 */
export async function addShard(
  c: ReshardCluster,
  urlsArg: string,
): Promise<{ shard: number; map: ShardMap }> {
  const urls = urlsArg.split(',').map((u) => u.trim());
  if (urls.some((u) => !/^postgres(ql)?:\/\//.test(u))) {
    throw new Error('hop shards add takes primaryURL[,replicaURL…], each postgres://…');
  }
  const map = await newestMap(c.primaries);
  const already = c.urls.findIndex((u) => u.split(',')[0] === urls[0]);
  const index = already >= 0 ? already : map.shardCount;
  const pool = already >= 0 ? c.primaries[already]! : new PgPool(`shard${index}-primary`, urls[0]!, POOL);
  await migrate(pool);
  const id = await pool.query<{ cluster_id: string; shard: number }>(
    'SELECT cluster_id::text AS cluster_id, shard FROM shard_identity',
  );
  const have = id.rows[0];
  if (have !== undefined && (have.cluster_id !== c.clusterId || have.shard !== index)) {
    throw new Error(
      have.cluster_id === c.clusterId
        ? `that database is already shard ${have.shard} of this cluster`
        : `that database belongs to another cluster (${have.cluster_id})`,
    );
  }
  if (have === undefined) {
    const links = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM links');
    if ((links.rows[0]?.n ?? 0) > 0)
      throw new Error('that database already holds links: a new shard must be empty');
    await pool.query('INSERT INTO shard_identity (cluster_id, shard) VALUES ($1, $2)', [c.clusterId, index]);
  }
  if (already < 0) {
    c.primaries.push(pool);
    c.urls.push(urls.join(','));
  }
  await recordNodes(c.primaries, c.urls);
  if (map.shardCount > index) return { shard: index, map };
  // The new shard learns the current map first, so a Hop that reads it never finds no map there.
  await pool.query(INSERT_MAP, mapArgs(map));
  const next: ShardMap = { version: map.version + 1, shardCount: index + 1, owners: map.owners };
  const problem = shardMapProblem(next);
  if (problem !== null) throw new Error(problem);
  await publishMap(c, next);
  return { shard: index, map: next };
}

/** After `remove N` drained it: the last shard leaves the map; another stays in it, empty. */
export async function detachIfLast(c: ReshardCluster, shard: number): Promise<'detached' | 'kept'> {
  const map = await newestMap(c.primaries);
  if (map.owners.includes(shard)) throw new Error(`shard ${shard} still owns buckets`);
  if (shard !== map.shardCount - 1) return 'kept';
  const next: ShardMap = { version: map.version + 1, shardCount: map.shardCount - 1, owners: map.owners };
  await publishMap(c, next);
  const remaining = c.primaries.slice(0, next.shardCount);
  await recordNodes(remaining, c.urls.slice(0, next.shardCount));
  return 'detached';
}
