// The whole HTTP contract again, on two PostgreSQL shards started for this file. Replica reads
// have their own tests (postgres-replicas.test.ts): this suite reads where it wrote.
import { after, before } from 'node:test';
import { startHarness } from '../support/harness.ts';
import { type Cluster, freshDatabases, stopCluster, testCluster } from '../support/pg-cluster.ts';
import { runHttpApiSuite } from './http-api-suite.ts';

let cluster: Cluster;
before(async () => {
  cluster = await testCluster(2, 0);
});
after(async () => {
  await stopCluster(cluster);
});

runHttpApiSuite('two PostgreSQL shards', async () => {
  const dbs = await freshDatabases(cluster);
  return startHarness({ HOP_DATABASE_URLS: dbs.urls });
});
