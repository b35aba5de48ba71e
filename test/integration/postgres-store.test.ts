// The store conformance suite on two PostgreSQL shards, each with a streaming replica, seen by one
// client session (its consistency token), the way the API serves a client that keeps its cookie.
import { after, before } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { openPostgresStore } from '../../src/storage/postgres/open-postgres-store.ts';
import { runStoreConformance } from '../conformance/store-conformance.ts';
import { type Cluster, freshDatabases, stopCluster, testCluster } from '../support/pg-cluster.ts';
import { asSession } from '../support/session-store.ts';

let cluster: Cluster;
before(async () => {
  cluster = await testCluster(2, 1);
});
after(async () => {
  await stopCluster(cluster);
});

runStoreConformance('PostgreSQL, two shards with a replica each', async () => {
  const dbs = await freshDatabases(cluster);
  const config = loadConfig({}, { HOP_DATABASE_URLS: dbs.urls });
  return asSession(await openPostgresStore({ ...config, databaseUrls: config.databaseUrls! }));
});
