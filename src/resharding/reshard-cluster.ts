// The shards as the resharding commands see them: one pool per shard primary, the shards that
// HOP_DATABASE_URLS names plus those a reshard registered since (shard_nodes), migrated, and the
// newest shard map any of them holds.
import type { Config } from '../config.ts';
import type { ShardMap } from '../domain/shard-map.ts';
import { PgPool } from '../storage/postgres/pg-pool.ts';
import { loadShardMap, newestShardMap, verifyShardIdentities } from '../storage/postgres/shard-catalog.ts';
import { migrate } from '../storage/sql/migrate.ts';

export const POOL = { size: 4, maxWaiting: 64, acquireTimeoutMs: 10_000, statementTimeoutMs: 120_000 };

export interface ReshardCluster {
  readonly clusterId: string;
  /** By shard index. */
  readonly primaries: PgPool[];
  /** primaryURL[,replicaURL…] by shard index. */
  readonly urls: string[];
}

export type DatabaseUrls = NonNullable<Config['databaseUrls']>;

export const urlsText = (u: { primary: string; replicas: string[] }) => [u.primary, ...u.replicas].join(',');

export async function openReshardCluster(databaseUrls: DatabaseUrls): Promise<ReshardCluster> {
  const primaries = databaseUrls.map((u, i) => new PgPool(`shard${i}-primary`, u.primary, POOL));
  const urls = databaseUrls.map(urlsText);
  try {
    for (const p of primaries) await migrate(p);
    const clusterId = await verifyShardIdentities(primaries);
    // A new cluster gets its first map here, as a starting Hop would give it.
    await loadShardMap(primaries).catch(() => {});
    const map = await newestMap(primaries);
    if (map.shardCount > primaries.length) {
      const known = await primaries[0]!.query<{ shard: number; urls: string }>(
        'SELECT shard, urls FROM shard_nodes WHERE shard >= $1 ORDER BY shard',
        [primaries.length],
      );
      for (const n of known.rows) {
        if (n.shard !== primaries.length) break;
        primaries.push(new PgPool(`shard${n.shard}-primary`, n.urls.split(',')[0]!, POOL));
        urls.push(n.urls);
      }
      if (map.shardCount > primaries.length) {
        throw new Error(
          `the shard map names ${map.shardCount} shards; HOP_DATABASE_URLS and the cluster's records name ${primaries.length}`,
        );
      }
    }
    return { clusterId, primaries, urls };
  } catch (err) {
    await Promise.all(primaries.map((p) => p.close().catch(() => {})));
    throw err;
  }
}

/** The newest map any of the shards holds (a move publishes on the shard it fenced first). */
export async function newestMap(primaries: readonly PgPool[]): Promise<ShardMap> {
  const map = await newestShardMap(primaries);
  if (map === null) throw new Error('no shard holds a shard map');
  return map;
}

export const INSERT_MAP =
  'INSERT INTO shard_map (version, shard_count, owners) VALUES ($1, $2, $3::smallint[]) ON CONFLICT (version) DO NOTHING';

export const mapArgs = (m: ShardMap) => [m.version, m.shardCount, m.owners];

export async function closeReshardCluster(c: ReshardCluster): Promise<void> {
  await Promise.all(c.primaries.map((p) => p.close().catch(() => {})));
}
