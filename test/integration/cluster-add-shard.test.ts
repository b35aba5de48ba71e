// `npm run cluster -- add-shard` and addShardServers (scripts/cluster/pg-cluster.ts): one more shard's
// servers beside a running cluster, started like the others, streaming, recorded in cluster.json, named
// last in HOP_DATABASE_URLS and the env file, and stopped with the rest of the cluster.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { HA_FILE } from '../../scripts/cluster/ha-cluster.ts';
import {
  addShardServers,
  type Cluster,
  clusterPids,
  databaseUrls,
  loadCluster,
  postgresUnavailable,
  type ShardUrls,
  startCluster,
  stopCluster,
} from '../../scripts/cluster/pg-cluster.ts';
import { cpuQuotaUnavailable } from '../../scripts/lib/cpu-cgroup.ts';

const skip = (await postgresUnavailable()) ?? false;
// Where cgroups are writable the new shard must get the cluster's quota too.
const cpuQuota = (await cpuQuotaUnavailable()) === null ? 1 : null;
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

async function query<R extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []) {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return (await client.query<R>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/** `npm run cluster -- <args>` as a person runs it: exit code, stdout, stderr. */
function clusterCli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolveRun) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'scripts/cluster.ts', '--', ...args],
      { cwd: ROOT, timeout: 40_000 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
        resolveRun({ code, stdout, stderr });
      },
    );
  });
}

describe('adding a shard to a local PostgreSQL cluster', { skip, timeout: 60_000 }, () => {
  let cluster: Cluster;
  let added: ShardUrls;

  before(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hop-add-shard-test-'));
    cluster = await startCluster({ dir, shards: 1, replicas: 1, cpuQuota, maxConnections: 50 });
  });
  after(async () => {
    // Safe after the last test has stopped it already.
    if (cluster !== undefined) await stopCluster(await loadCluster(cluster.dir).catch(() => cluster));
  });

  test('addShardServers starts a primary that takes writes and a replica streaming from it', async () => {
    added = await addShardServers(cluster);
    // The default: as many replicas as the cluster's shards have.
    assert.equal(added.replicas.length, 1);
    assert.equal(cluster.shards, 2);
    const primary = cluster.servers.find((s) => s.shard === 1 && s.role === 'primary');
    const replica = cluster.servers.find((s) => s.shard === 1 && s.role === 'replica');
    assert.ok(primary !== undefined && replica !== undefined);
    assert.equal(primary.url, added.primary);
    assert.deepEqual(added.replicas, [replica.url]);
    const oldPorts = cluster.servers.filter((s) => s.shard === 0).map((s) => s.port);
    assert.ok(!oldPorts.includes(primary.port) && !oldPorts.includes(replica.port));

    await query(added.primary, 'CREATE TABLE notes (id int PRIMARY KEY)');
    assert.deepEqual(await query(added.primary, 'INSERT INTO notes VALUES (1) RETURNING id'), [{ id: 1 }]);
    const streaming = await query<{ application_name: string; state: string }>(
      added.primary,
      'SELECT application_name, state FROM pg_stat_replication',
    );
    assert.deepEqual(streaming, [
      { application_name: `hop-${cluster.id}-${replica.name}`, state: 'streaming' },
    ]);
    const [recovery] = await query<{ r: boolean }>(replica.url, 'SELECT pg_is_in_recovery() AS r');
    assert.equal(recovery?.r, true);

    // Set up as `up` set up the first shard's servers.
    const settingsOf = (url: string) =>
      query(url, "SELECT current_setting('max_connections') AS max, current_setting('fsync') AS fsync");
    const first = cluster.servers.find((s) => s.shard === 0 && s.role === 'primary')!;
    assert.deepEqual(await settingsOf(added.primary), await settingsOf(first.url));
    assert.deepEqual(await settingsOf(added.primary), [{ max: '50', fsync: 'off' }]);
    if (cpuQuota !== null) {
      for (const s of [primary, replica]) {
        assert.ok(s.cgroup !== null, `${s.name} has no cgroup`);
        assert.equal(readFileSync(join(s.cgroup, 'cpu.cfs_quota_us'), 'utf8').trim(), '100000');
        const procs = readFileSync(join(s.cgroup, 'cgroup.procs'), 'utf8').split('\n');
        assert.ok(procs.includes(String(s.pid)), `${s.name} (pid ${s.pid}) is not in ${s.cgroup}`);
      }
    }
  });

  test('the saved state has both shards, and HOP_DATABASE_URLS names the new one last', async () => {
    const loaded = await loadCluster(cluster.dir);
    assert.equal(loaded.shards, 2);
    assert.deepEqual(
      loaded.servers.map((s) => `${s.name}:${s.pid === null ? 'down' : 'up'}`),
      ['shard0-primary:up', 'shard0-replica1:up', 'shard1-primary:up', 'shard1-replica1:up'],
    );
    const shards = databaseUrls(loaded).split(';');
    assert.equal(shards.length, 2);
    assert.ok(shards[0]?.startsWith(loaded.servers[0]!.url));
    assert.equal(shards[1], [added.primary, ...added.replicas].join(','));
  });

  test('`cluster add-shard` starts the next shard, rewrites the env file and prints `hop shards add`', async () => {
    const envFile = join(cluster.dir, 'hop.env');
    const r = await clusterCli('add-shard', '--replicas', '0', '--env-file', envFile, '--dir', cluster.dir);
    assert.equal(r.code, 0, r.stderr);
    const loaded = await loadCluster(cluster.dir);
    assert.equal(loaded.shards, 3);
    const primary = loaded.servers.find((s) => s.shard === 2 && s.role === 'primary');
    assert.ok(primary !== undefined && primary.pid !== null, 'shard 2 has no running primary');
    assert.equal(loaded.servers.filter((s) => s.shard === 2).length, 1);
    assert.match(r.stdout, new RegExp(`hop shards add '${primary.url}'\n`));
    const env = readFileSync(envFile, 'utf8');
    assert.ok(env.includes(`HOP_DATABASE_URLS="${databaseUrls(loaded)}"\n`), env);
    assert.ok(databaseUrls(loaded).endsWith(`;${primary.url}`));
    assert.deepEqual(await query(primary.url, 'SELECT 1 AS one'), [{ one: 1 }]);
    // The servers outlive the command: their cgroups must too.
    if (cpuQuota !== null) assert.ok(primary.cgroup !== null && existsSync(primary.cgroup));
  });

  test('`cluster add-shard` refuses an HA cluster with exit 2', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hop-add-shard-ha-'));
    try {
      await writeFile(join(dir, HA_FILE), '{}');
      const r = await clusterCli('add-shard', '--env-file', join(dir, 'hop.env'), '--dir', dir);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /not supported for --ha yet/);
      assert.equal(existsSync(join(dir, 'hop.env')), false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('stopping the cluster stops the added shards too, and leaves no process or cgroup', async () => {
    // What `down` does: the saved state, so the shard the CLI added is in it.
    const loaded = await loadCluster(cluster.dir);
    const pids = clusterPids(loaded);
    assert.ok(pids.length >= 5, `expected the cluster's processes, found ${pids.length}`);
    const postmasters = loaded.servers.map((s) => s.pid);
    assert.equal(postmasters.length, 5);
    const groups = loaded.servers.map((s) => s.cgroup).filter((g) => g !== null);
    await stopCluster(loaded);
    assert.deepEqual(clusterPids(loaded), []);
    for (const pid of [...pids, ...postmasters]) {
      // Stopped postmasters may linger as zombies where PID 1 does not reap them; nothing may still run.
      const state = existsSync(`/proc/${pid}/stat`) ? readFileSync(`/proc/${pid}/stat`, 'utf8') : '';
      assert.ok(state === '' || /\) [ZX] /.test(state), `pid ${pid} still runs: ${state}`);
    }
    for (const g of groups) assert.equal(existsSync(g), false, `cgroup ${g} is still there`);
    assert.equal(existsSync(cluster.dir), false);
  });
});
