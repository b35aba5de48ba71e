// Boot-time placement checks for a sharded store: each database says which shard of which
// cluster it is, and every shard holds the versioned shard map. A new cluster is claimed here
// (identity and map version 1); an existing one must match HOP_DATABASE_URLS exactly.
import { randomUUID } from 'node:crypto';
import { initialShardMap, type ShardMap, shardMapProblem } from '../../domain/shard-map.ts';
import type { SqlClient } from '../sql/sql-client.ts';

// Serializes Hop processes that claim a new cluster at the same moment.
const CLAIM_LOCK = 7_243_002;

interface Identity {
  cluster_id: string;
  shard: number;
}

async function identityOf(db: SqlClient): Promise<Identity | null> {
  const res = await db.query<Identity>('SELECT cluster_id::text AS cluster_id, shard FROM shard_identity');
  return res.rows[0] ?? null;
}

/** Claims unclaimed shards for the cluster, then checks every shard is the one its position says. */
export async function verifyShardIdentities(primaries: readonly SqlClient[]): Promise<string> {
  const first = primaries[0];
  if (first === undefined) throw new Error('no shards configured');
  const clusterId = await first.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [CLAIM_LOCK]);
    const have = await identityOf(tx);
    if (have !== null) return have.cluster_id;
    const id = randomUUID();
    await tx.query('INSERT INTO shard_identity (cluster_id, shard) VALUES ($1, 0)', [id]);
    return id;
  });
  const problems: string[] = [];
  await Promise.all(
    primaries.map(async (db, i) => {
      await db.query(
        'INSERT INTO shard_identity (cluster_id, shard) VALUES ($1, $2) ON CONFLICT (only_row) DO NOTHING',
        [clusterId, i],
      );
      const id = await identityOf(db);
      if (id === null) problems.push(`shard ${i}: no identity after claiming it`);
      else if (id.cluster_id !== clusterId)
        problems.push(
          `position ${i} is a database of another cluster (${id.cluster_id}, its shard ${id.shard})`,
        );
      else if (id.shard !== i) problems.push(`position ${i} is shard ${id.shard} of this cluster`);
    }),
  );
  if (problems.length > 0) {
    throw new Error(
      `HOP_DATABASE_URLS does not match the databases it names: ${problems.join('; ')}. ` +
        'List the shards in their original order (moving buckets between shards is a resharding, not a reorder).',
    );
  }
  return clusterId;
}

interface MapRow {
  version: number;
  shard_count: number;
  owners: number[];
}

/** The newest shard map; a new cluster gets version 1 on every shard. */
export async function loadShardMap(primaries: readonly SqlClient[]): Promise<ShardMap> {
  const initial = initialShardMap(primaries.length);
  await Promise.all(
    primaries.map((db) =>
      db.query(
        // ON CONFLICT: processes starting together on a new cluster both see no map; one writes it.
        'INSERT INTO shard_map (version, shard_count, owners) SELECT $1, $2, $3::smallint[] WHERE NOT EXISTS (SELECT 1 FROM shard_map) ON CONFLICT DO NOTHING',
        [initial.version, initial.shardCount, initial.owners],
      ),
    ),
  );
  const map = await newestShardMap(primaries);
  if (map === null) throw new Error('no shard map was found or written');
  if (map.shardCount !== primaries.length) {
    const nodes = await primaries[0]!
      .query<{ shard: number; urls: string }>('SELECT shard, urls FROM shard_nodes ORDER BY shard')
      .catch(() => ({ rows: [] as { shard: number; urls: string }[] }));
    const listed = nodes.rows.map((n) => `  shard ${n.shard}: ${redactUrls(n.urls)}`).join('\n');
    throw new Error(
      `shard map version ${map.version} has ${map.shardCount} shards but HOP_DATABASE_URLS names ${primaries.length}: ` +
        'the cluster was resharded (hop shards add/remove). Name every shard of the map, in order' +
        (listed === '' ? '.' : `; the cluster records them as:\n${listed}`),
    );
  }
  return map;
}

/** URLs without their passwords, for messages. */
export function redactUrls(urls: string): string {
  return urls.replace(/(\/\/[^:/@]+):[^@]*@/g, '$1:***@');
}

/**
 * The newest map any of the shards holds (a move records it first on the shard it fenced), or
 * null when none holds one. A shard that cannot answer is passed over when `skipDown` is set.
 */
export async function newestShardMap(
  primaries: readonly SqlClient[],
  skipDown = false,
): Promise<ShardMap | null> {
  const rows = await Promise.all(
    primaries.map((db) =>
      db
        .query<MapRow>('SELECT version, shard_count, owners FROM shard_map ORDER BY version DESC LIMIT 1')
        .then((r) => r.rows[0])
        .catch((err: unknown) => {
          if (skipDown) return undefined;
          throw err;
        }),
    ),
  );
  const row = rows.reduce<MapRow | undefined>(
    (a, b) => (b !== undefined && (a === undefined || b.version > a.version) ? b : a),
    undefined,
  );
  if (row === undefined) return null;
  const map: ShardMap = { version: row.version, shardCount: row.shard_count, owners: row.owners.map(Number) };
  const problem = shardMapProblem(map);
  if (problem !== null) throw new Error(`shard map version ${map.version} is not usable: ${problem}`);
  return map;
}
