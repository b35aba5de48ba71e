// The scaled-out store: a bounded pool per PostgreSQL server, migrations on every shard, the
// shard identities and map checked, replica health checks started.
import type { Config } from '../../config.ts';
import { SqlStore } from '../sql/sql-store.ts';
import { PgPool, type PoolObserver, type PoolOptions } from './pg-pool.ts';
import { loadShardMap, verifyShardIdentities } from './shard-catalog.ts';
import { Replica, ShardNode } from './shard-node.ts';
import { type FallbackObserver, ShardedStore } from './sharded-store.ts';

export type PostgresSettings = Pick<
  Config,
  | 'codeLength'
  | 'pgPoolSize'
  | 'pgPoolQueue'
  | 'pgAcquireTimeoutMs'
  | 'pgStatementTimeoutMs'
  | 'replicaMaxLagMs'
  | 'replicaMaxLagBytes'
  | 'replicaCheckMs'
  | 'shardMapPollMs'
  | 'primaryFallbackLimit'
  | 'primaryReads'
> & { databaseUrls: NonNullable<Config['databaseUrls']> };

/** A server's name in metrics and logs: its place, never its password. */
const serverName = (shard: number, replica: number) =>
  replica === 0 ? `shard${shard}-primary` : `shard${shard}-replica${replica}`;

export async function openPostgresStore(
  cfg: PostgresSettings,
  observer: (PoolObserver & FallbackObserver) | null = null,
): Promise<ShardedStore> {
  const poolOpts: PoolOptions = {
    size: cfg.pgPoolSize,
    maxWaiting: cfg.pgPoolQueue,
    acquireTimeoutMs: cfg.pgAcquireTimeoutMs,
    statementTimeoutMs: cfg.pgStatementTimeoutMs,
    // Below the statement timeout, so a process paused inside a transaction (holding the outbox's
    // commit-order lock, say) is cut off before the statements queued behind it time out.
    idleInTransactionTimeoutMs: Math.max(1_000, Math.floor(cfg.pgStatementTimeoutMs / 2)),
  };
  // Filled in once the shard map is known; codes are drawn only after that.
  let store: ShardedStore | null = null;
  const pools: PgPool[] = [];
  const nodeOf = (shard: number, urls: { primary: string; replicas: string[] }) => {
    const primary = new PgPool(serverName(shard, 0), urls.primary, poolOpts, observer);
    pools.push(primary);
    const sqlStore = (db: PgPool) =>
      new SqlStore(db, {
        kind: 'postgres',
        codeLength: cfg.codeLength,
        drawCode: (length) => store!.drawCodeFor(shard, length ?? cfg.codeLength),
      });
    const replicas = urls.replicas.map((url, i) => {
      const pool = new PgPool(serverName(shard, i + 1), url, poolOpts, observer);
      pools.push(pool);
      return new Replica(pool, sqlStore(pool));
    });
    return new ShardNode(shard, primary, sqlStore(primary), replicas, {
      maxLagMs: cfg.replicaMaxLagMs,
      maxLagBytes: cfg.replicaMaxLagBytes,
      checkMs: cfg.replicaCheckMs,
      primaryReads: cfg.primaryReads,
    });
  };
  const nodes = cfg.databaseUrls.map((urls, shard) => nodeOf(shard, urls));
  // A shard added while this process runs (hop shards add): checked to be that shard, then started.
  const openShard = async (shard: number, urls: { primary: string; replicas: string[] }) => {
    const node = nodeOf(shard, urls);
    const id = await node.primary.query<{ shard: number }>('SELECT shard FROM shard_identity');
    if (id.rows[0]?.shard !== shard) {
      await node.stop();
      throw new Error(`the database registered as shard ${shard} is not that shard`);
    }
    await node.check();
    node.start();
    return node;
  };
  try {
    // Migrations first: the identity and map tables are part of the schema.
    for (const n of nodes) await n.primaryStore.migrate();
    const primaries = nodes.map((n) => n.primary);
    await verifyShardIdentities(primaries);
    const map = await loadShardMap(primaries);
    store = new ShardedStore(nodes, map, cfg.primaryFallbackLimit, observer, openShard);
    // Replicas join the rotation once a first check has seen them healthy.
    await Promise.all(nodes.map((n) => n.check()));
    for (const n of nodes) n.start();
    store.watchMap(cfg.databaseUrls[0]!.primary, cfg.shardMapPollMs);
    return store;
  } catch (err) {
    await Promise.all(pools.map((p) => p.close().catch(() => {})));
    throw err;
  }
}
