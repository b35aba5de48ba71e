// Test access to a real PostgreSQL cluster started by the project's cluster script: one cluster
// per test file, and a fresh set of databases (one per shard) for each suite, which is far cheaper
// than a cluster each. Replicas receive a new database through replication like any other change.
import pg from 'pg';
import {
  type Cluster,
  type ClusterServer,
  startCluster,
  stopCluster,
} from '../../scripts/cluster/pg-cluster.ts';

export type { Cluster, ClusterServer };

let serial = 0;

export async function withClient<R>(url: string, fn: (c: pg.Client) => Promise<R>): Promise<R> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

const onDatabase = (url: string, db: string) => {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.href;
};

export function primaryOf(c: Cluster, shard: number): ClusterServer {
  const s = c.servers.find((x) => x.shard === shard && x.role === 'primary');
  if (s === undefined) throw new Error(`no primary for shard ${shard}`);
  return s;
}

export function replicasOf(c: Cluster, shard: number): ClusterServer[] {
  return c.servers.filter((x) => x.shard === shard && x.role === 'replica');
}

export interface TestDatabases {
  /** HOP_DATABASE_URLS for the new databases (replicas included unless asked otherwise). */
  readonly urls: string;
  /** A server's URL on the new database. */
  url(server: ClusterServer): string;
}

/** New empty databases of one name on every primary, visible on every replica before it returns. */
export async function freshDatabases(c: Cluster, opts: { replicas?: boolean } = {}): Promise<TestDatabases> {
  const name = `hop_t${process.pid}_${++serial}`;
  for (let s = 0; s < c.shards; s++) {
    await withClient(onDatabase(primaryOf(c, s).url, 'postgres'), (db) =>
      db.query(`CREATE DATABASE ${name}`),
    );
  }
  const deadline = Date.now() + 15_000;
  for (const r of c.servers.filter((x) => x.role === 'replica')) {
    for (;;) {
      const seen = await withClient(onDatabase(r.url, 'postgres'), (db) =>
        db.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]),
      );
      if (seen.rows.length > 0) break;
      if (Date.now() > deadline) throw new Error(`database ${name} did not reach ${r.name}`);
      await new Promise((res) => setTimeout(res, 50));
    }
  }
  const withReplicas = opts.replicas ?? true;
  const shards = Array.from({ length: c.shards }, (_, s) =>
    [primaryOf(c, s), ...(withReplicas ? replicasOf(c, s) : [])]
      .map((x) => onDatabase(x.url, name))
      .join(','),
  );
  return { urls: shards.join(';'), url: (server) => onDatabase(server.url, name) };
}

/** A cluster for one test file; the returned stop() tears it down (call it in after()). */
export async function testCluster(shards: number, replicas: number): Promise<Cluster> {
  return startCluster({ shards, replicas, maxConnections: 300 });
}

export { stopCluster };
