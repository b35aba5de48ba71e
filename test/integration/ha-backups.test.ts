// pgBackRest on the HA shape (scripts/cluster/ha-backups.ts): WAL archived by whichever member
// leads, so archiving goes on across a switchover (a new timeline); restores into a side directory to
// the end of the archive or to a time; a replica rebuilt from the repository, not from the primary.
import assert from 'node:assert/strict';
import { chmod, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { archiveNow, backupShard } from '../../scripts/cluster/backups.ts';
import { restoreHaShardInto } from '../../scripts/cluster/ha-backups.ts';
import {
  type HaCluster,
  haStatus,
  restartMember,
  startHaCluster,
  stopHaCluster,
  switchover,
  waitHealthy,
} from '../../scripts/cluster/ha-cluster.ts';
import { withClient } from '../../scripts/cluster/pg-cluster.ts';
import { descendants, signal, waitGone } from '../../scripts/lib/processes.ts';
import { tempDir } from '../support/hop-process.ts';

let c: HaCluster;
let dir: ReturnType<typeof tempDir>;

before(
  async () => {
    dir = tempDir('hop-ha-backups-');
    await chmod(dir.path, 0o755);
    c = await startHaCluster({
      dir: join(dir.path, 'pg'),
      shards: 1,
      replicas: 2,
      backups: { archiveTimeoutS: 1 },
    });
  },
  { timeout: 180_000 },
);

after(
  async () => {
    if (c !== undefined) await stopHaCluster(c);
    dir?.remove();
  },
  { timeout: 120_000 },
);

const primary = (sql: string, params: unknown[] = []) =>
  withClient(c.balancer.primaryPorts[0]!, 'hop', (client) => client.query(sql, params));

const insert = (from: number, to: number, phase: string) =>
  primary('INSERT INTO drill SELECT g, $1 FROM generate_series($2::int, $3::int) g', [phase, from, to]);

async function phasesAt(port: number): Promise<Record<string, number>> {
  return withClient(port, 'hop', async (client) => {
    const { rows } = await client.query<{ phase: string; n: string }>(
      'SELECT phase, count(*)::text AS n FROM drill GROUP BY phase ORDER BY phase',
    );
    return Object.fromEntries(rows.map((r) => [r.phase, Number(r.n)]));
  });
}

describe('pgBackRest on the HA shape', { concurrency: 1 }, () => {
  test('archiving goes on across a switchover; restores into a side directory to the end of the archive and to a time', async () => {
    await primary('CREATE TABLE drill (id int PRIMARY KEY, phase text NOT NULL)');
    await insert(1, 50, 'a-before-backup');
    const b = await backupShard(c, 0, 'full');
    assert.ok(b.verified);
    await insert(51, 100, 'b-after-backup');
    // A moment between the two phases: the point-in-time restore's target.
    await new Promise((r) => setTimeout(r, 1_100));
    const between = new Date();
    await new Promise((r) => setTimeout(r, 1_100));
    const { from, to } = await switchover(c, 0);
    assert.notEqual(from, to);
    await insert(101, 150, 'c-after-switchover');
    // The new primary archives its timeline: a WAL switch there reaches the repository.
    await archiveNow(c, 0);

    const latest = await restoreHaShardInto(c, 0, null, join(dir.path, 'latest'));
    assert.deepEqual(await phasesAt(latest.port), {
      'a-before-backup': 50,
      'b-after-backup': 50,
      'c-after-switchover': 50,
    });
    const atTime = await restoreHaShardInto(c, 0, between, join(dir.path, 'at-time'));
    assert.deepEqual(await phasesAt(atTime.port), { 'a-before-backup': 50, 'b-after-backup': 50 });
  });

  test('a replica whose data is gone is created again from the repository, and streams', async () => {
    // Not the first member: its restore must go to its own data directory, not the stanza's pg1.
    // After the first test's switchover the first member may well be the asynchronous replica;
    // then another switchover (to the synchronous standby: Patroni allows no other in synchronous
    // mode) reshuffles the roles.
    const asyncReplica = async (waitMs: number) => {
      const deadline = Date.now() + waitMs;
      for (;;) {
        const found = (await haStatus(c)).find(
          (s) =>
            s.shard === 0 &&
            s.role === 'replica' &&
            !s.sync &&
            s.name !== 'shard0-node0' &&
            s.pid != null &&
            s.patroniPid != null,
        );
        if (found !== undefined || Date.now() > deadline) return found;
        await new Promise((r) => setTimeout(r, 500));
      }
    };
    let victim = await asyncReplica(15_000);
    for (let i = 0; victim === undefined && i < 3; i++) {
      await switchover(c, 0);
      victim = await asyncReplica(30_000);
    }
    assert.ok(victim?.pid != null && victim.patroniPid != null, 'an asynchronous replica runs');
    const family = [
      victim.patroniPid,
      victim.pid,
      ...descendants(victim.patroniPid),
      ...descendants(victim.pid),
    ];
    for (const pid of family) signal(pid, 'SIGKILL');
    await waitGone(family, 10_000);
    await rm(victim.dataDir!, { recursive: true, force: true });
    await restartMember(c, victim.name);
    await waitHealthy(c, 0, 120_000);
    const log = await readFile(c.members.find((m) => m.name === victim.name)!.logFile, 'utf8');
    assert.match(log, /replica has been created using pgbackrest/);
    await insert(151, 160, 'd-after-rebuild');
    const port = c.members.find((m) => m.name === victim.name)!.pgPort;
    // It streams: the new rows reach it.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const phases = await phasesAt(port).catch(() => ({}) as Record<string, number>);
      if (phases['d-after-rebuild'] === 10) break;
      assert.ok(Date.now() < deadline, `the rebuilt replica has ${JSON.stringify(phases)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  });
});
