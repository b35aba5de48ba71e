// The local PostgreSQL cluster (scripts/cluster/pg-cluster.ts): real primaries take writes, replicas
// stream them read-only, `cluster status` names every server's role, a killed replica comes back, and
// stopping leaves no process, cgroup or file.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import {
  type Cluster,
  type ClusterServer,
  clusterPids,
  databaseUrls,
  killServer,
  loadCluster,
  postgresUnavailable,
  startCluster,
  startServer,
  stopCluster,
} from '../../scripts/cluster/pg-cluster.ts';
import { redisUnavailable, startRedis, stopRedis } from '../../scripts/cluster/redis-servers.ts';
import { cpuQuotaUnavailable } from '../../scripts/lib/cpu-cgroup.ts';

const skip = (await postgresUnavailable()) ?? false;
// Where cgroups are writable the quota path is exercised too; it costs nothing at one core per server.
const cpuQuota = (await cpuQuotaUnavailable()) === null ? 1 : null;

async function query<R extends pg.QueryResultRow>(s: ClusterServer, sql: string, params: unknown[] = []) {
  const client = new pg.Client({ connectionString: s.url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return (await client.query<R>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/** Polls until the row is visible on `s`, or fails after `timeoutMs`. */
async function waitForRow(s: ClusterServer, id: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await query(s, 'SELECT 1 FROM notes WHERE id = $1', [id]).catch(() => []);
    if (rows.length === 1) return;
    if (Date.now() > deadline) assert.fail(`row ${id} did not reach ${s.name} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** `npm run cluster -- <args>`, as a script would run it; its stdout. */
async function clusterCli(...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', 'scripts/cluster.ts', '--', ...args],
    { cwd: ROOT, timeout: 30_000 },
  );
  return stdout;
}

interface StatusEntry {
  name: string;
  role?: unknown;
}

function server(c: Cluster, name: string): ClusterServer {
  const s = c.servers.find((x) => x.name === name);
  assert.ok(s, `no server ${name}`);
  return s;
}

describe('a local PostgreSQL cluster', { skip, timeout: 60_000 }, () => {
  let cluster: Cluster;

  before(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hop-pg-cluster-test-'));
    cluster = await startCluster({ dir, shards: 2, replicas: 1, cpuQuota });
  });
  after(async () => {
    // Safe after the last test has stopped it already.
    if (cluster !== undefined) await stopCluster(cluster);
  });

  test('every primary accepts writes', async () => {
    const primaries = cluster.servers.filter((s) => s.role === 'primary');
    assert.equal(primaries.length, 2);
    for (const p of primaries) {
      await query(p, 'CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)');
      const rows = await query<{ id: number }>(p, 'INSERT INTO notes VALUES ($1, $2) RETURNING id', [
        p.shard,
        p.name,
      ]);
      assert.deepEqual(rows, [{ id: p.shard }]);
    }
  });

  test('a row written on a primary shows up on its replica, which refuses writes', async () => {
    for (const shard of [0, 1]) {
      const primary = server(cluster, `shard${shard}-primary`);
      const replica = server(cluster, `shard${shard}-replica1`);
      await query(primary, 'INSERT INTO notes VALUES ($1, $2)', [100 + shard, 'replicated']);
      await waitForRow(replica, 100 + shard);
      const [recovery] = await query<{ r: boolean }>(replica, 'SELECT pg_is_in_recovery() AS r');
      assert.equal(recovery?.r, true);
      await assert.rejects(query(replica, 'INSERT INTO notes VALUES (999, $1)', ['nope']), { code: '25006' });
    }
  });

  test('status reports every server with a live pid, and the URLs in shard order', async () => {
    const loaded = await loadCluster(cluster.dir);
    assert.deepEqual(
      loaded.servers.map((s) => s.name),
      ['shard0-primary', 'shard0-replica1', 'shard1-primary', 'shard1-replica1'],
    );
    for (const s of loaded.servers) {
      assert.ok(s.pid !== null, `${s.name} has no pid`);
      assert.doesNotThrow(() => process.kill(s.pid!, 0), `${s.name} pid ${s.pid} is not running`);
    }
    const shards = databaseUrls(loaded).split(';');
    assert.deepEqual(
      shards.map((urls) => urls.split(',').length),
      [2, 2],
    );
    assert.ok(shards[1]?.startsWith(server(loaded, 'shard1-primary').url));
  });

  for (const mode of ['single', 'cluster'] as const) {
    test(`status --json gives every server a role, \`redis\` for each Redis server (${mode}), as the table does`, {
      skip: redisUnavailable() ?? false,
    }, async (t) => {
      // Where `cluster up --redis` puts it, so status finds it.
      const redis = await startRedis({ mode, dir: join(cluster.dir, 'redis') });
      t.after(() => stopRedis(redis));
      const status = JSON.parse(await clusterCli('status', '--json', '--dir', cluster.dir)) as {
        servers: StatusEntry[];
        redis: { servers: StatusEntry[] } | null;
      };
      const redisEntries = status.redis?.servers ?? [];
      assert.equal(redisEntries.length, mode === 'single' ? 1 : 3);
      for (const e of [...status.servers, ...redisEntries]) {
        assert.ok(typeof e.role === 'string' && e.role !== '', `${e.name} has no role`);
      }
      assert.deepEqual(
        status.servers.map((e) => e.role),
        ['primary', 'replica', 'primary', 'replica'],
      );
      assert.deepEqual(
        redisEntries.map((e) => e.role),
        redisEntries.map(() => 'redis'),
      );
      // The table's ROLE column says the same of every server.
      const rows = (await clusterCli('status', '--dir', cluster.dir)).split('\n').map((l) => l.split(/\s+/));
      for (const e of [...status.servers, ...redisEntries]) {
        assert.equal(rows.find((r) => r[0] === e.name)?.[1], e.role, `table row of ${e.name}`);
      }
    });
  }

  test('with a CPU quota, each server runs confined in a cgroup of its own', {
    skip: cpuQuota === null,
  }, () => {
    for (const s of cluster.servers) {
      assert.ok(s.cgroup !== null, `${s.name} has no cgroup`);
      assert.equal(readFileSync(join(s.cgroup, 'cpu.cfs_quota_us'), 'utf8').trim(), '100000');
      const procs = readFileSync(join(s.cgroup, 'cgroup.procs'), 'utf8').split('\n');
      assert.ok(procs.includes(String(s.pid)), `${s.name} (pid ${s.pid}) is not in ${s.cgroup}`);
    }
  });

  test('a SIGKILLed replica comes back streaming after startServer', async () => {
    const replica = server(cluster, 'shard0-replica1');
    const oldPid = replica.pid;
    await killServer(cluster, replica.name);
    assert.equal(server(await loadCluster(cluster.dir), replica.name).pid, null);

    await startServer(cluster, replica.name);
    assert.ok(replica.pid !== null && replica.pid !== oldPid);
    const [streaming] = await query<{ state: string }>(
      server(cluster, 'shard0-primary'),
      'SELECT state FROM pg_stat_replication',
    );
    assert.equal(streaming?.state, 'streaming');
    await query(server(cluster, 'shard0-primary'), 'INSERT INTO notes VALUES (200, $1)', ['after restart']);
    await waitForRow(replica, 200);
  });

  test('stopCluster leaves no postgres process or cgroup and removes the directory', async () => {
    const pids = clusterPids(cluster);
    assert.ok(pids.length >= 4, `expected the cluster's processes, found ${pids.length}`);
    const groups = cluster.servers.map((s) => s.cgroup).filter((g) => g !== null);
    await stopCluster(cluster);
    assert.deepEqual(clusterPids(cluster), []);
    for (const pid of pids) {
      // Stopped postmasters may linger as zombies where PID 1 does not reap them; nothing may still run.
      const state = existsSync(`/proc/${pid}/stat`) ? readFileSync(`/proc/${pid}/stat`, 'utf8') : '';
      assert.ok(state === '' || /\) [ZX] /.test(state), `pid ${pid} still runs: ${state}`);
    }
    for (const g of groups) assert.equal(existsSync(g), false, `cgroup ${g} is still there`);
    assert.equal(existsSync(cluster.dir), false);
  });
});
