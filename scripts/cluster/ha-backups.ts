// pgBackRest for the HA shape: one repository in the cluster directory, one stanza per shard that
// names every member (pgBackRest backs up whichever is the primary now), WAL archived by whichever
// member leads (archive_mode on every member through Patroni, so a promoted standby archives its new
// timeline from its first segment), replicas that Patroni creates from the repository when it holds
// a backup (create_replica_methods: pgbackrest, then basebackup), and restores into a side directory.
// A restore in place of a Patroni cluster is a new bootstrap from the backup: the runbook's steps,
// not a command.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PGBACKREST, pgbackrest, pgbackrestGlobal, restoreArgs, stanzaOf, waitPromoted } from './backups.ts';
import type { HaCluster } from './ha-cluster.ts';
import { appendConf, ClusterError, freePorts, ownDir, quoteConf, runPg, serverUrl } from './pg-cluster.ts';

/** Where the repository and pgBackRest's spool, locks and logs live. */
export const haBackupBase = (c: HaCluster): string => join(c.dir, 'backups');

/**
 * The archive command a member runs (Patroni sets it on every member). Asynchronous archiving keeps a
 * spool and takes a lock per stanza: each member has its own, as each host would, or the old
 * primary's archiver would hold the lock the new primary's needs.
 */
export function haArchiveCommand(
  configFile: string,
  shard: number,
  member: { dir: string; dataDir: string },
): string {
  return `${PGBACKREST} ${memberOptions(configFile, shard, member)} archive-push %p`;
}

/**
 * The stanza names every member as pg1..pgN for backups; a command a member runs for itself names its
 * own data directory as pg1 (archive-push reads its pg_wal; a restore writes into it).
 */
function memberOptions(configFile: string, shard: number, member: { dir: string; dataDir: string }): string {
  return (
    `--config=${configFile} --stanza=${stanzaOf(shard)} --pg1-path=${member.dataDir} ` +
    `--spool-path=${join(member.dir, 'pgbackrest-spool')} --lock-path=${join(member.dir, 'pgbackrest-lock')}`
  );
}

/** What Patroni runs to create a replica from the repository instead of from the primary. */
export function haReplicaFromRepository(
  configFile: string,
  shard: number,
  member: { dir: string; dataDir: string },
): Record<string, unknown> {
  return {
    command: `${PGBACKREST} ${memberOptions(configFile, shard, member)} --delta restore`,
    keep_data: true,
    no_params: true,
  };
}

export function haPgbackrestConf(c: HaCluster, base: string): string {
  const lines = pgbackrestGlobal(base);
  for (let shard = 0; shard < c.shards; shard++) {
    lines.push(`[${stanzaOf(shard)}]`);
    c.members
      .filter((m) => m.shard === shard)
      .forEach((m, i) => {
        lines.push(
          `pg${i + 1}-path=${m.dataDir}`,
          `pg${i + 1}-port=${m.pgPort}`,
          `pg${i + 1}-socket-path=${m.dir}`,
          `pg${i + 1}-user=postgres`,
        );
      });
    lines.push('');
  }
  return lines.join('\n');
}

/** Writes the configuration before the members start (their archive command names it). */
export async function prepareHaBackups(c: HaCluster, archiveTimeoutS: number): Promise<void> {
  const base = haBackupBase(c);
  for (const sub of ['', 'repo', 'spool', 'lock', 'log']) {
    await mkdir(join(base, sub), { recursive: true });
    await ownDir(join(base, sub));
  }
  const configFile = join(base, 'pgbackrest.conf');
  await writeFile(configFile, haPgbackrestConf(c, base));
  c.backups = { configFile, repoDir: join(base, 'repo'), archiveTimeoutS };
}

/** Once every shard has a primary: the stanzas, and a check that a WAL switch reaches the repository. */
export async function createHaStanzas(c: HaCluster, log: (line: string) => void): Promise<void> {
  for (let shard = 0; shard < c.shards; shard++) {
    await pgbackrest(c, [`--stanza=${stanzaOf(shard)}`, 'stanza-create'], 120_000);
    await pgbackrest(c, [`--stanza=${stanzaOf(shard)}`, 'check'], 120_000);
    log(`${stanzaOf(shard)}: stanza created, WAL archiving checked`);
  }
}

/**
 * Restores a shard into a side directory, to a time or to the end of its archive, and starts it on a
 * free port with archiving off; `down` stops it with the cluster.
 */
export async function restoreHaShardInto(
  c: HaCluster,
  shard: number,
  time: Date | null,
  into: string,
): Promise<{ url: string; port: number; dataDir: string; seconds: number }> {
  if (c.backups == null)
    throw new ClusterError('backups are not configured for this cluster (up --ha --backups)');
  const t0 = performance.now();
  const dataDir = join(into, 'data');
  await mkdir(dataDir, { recursive: true });
  await ownDir(into);
  await ownDir(dataDir);
  // Only pg1 is restored; the stanza's other members are not touched.
  await pgbackrest(c, restoreArgs(shard, dataDir, time, false));
  const [port] = await freePorts(1);
  await appendConf(dataDir, {
    port: String(port),
    listen_addresses: "'127.0.0.1'",
    unix_socket_directories: quoteConf(into),
    cluster_name: quoteConf(`hop-${c.id}-shard${shard}-restored`),
    archive_mode: 'off',
    // The copy's primary_conninfo and slot point at the cluster's members: not for a side copy.
    primary_conninfo: "''",
    primary_slot_name: "''",
  });
  const logFile = join(into, 'postgres.log');
  await runPg(c, 'pg_ctl', ['-D', dataDir, '-l', logFile, '-w', '-t', '60', 'start'], {
    timeoutMs: 70_000,
    logFile,
  });
  c.restored = [...(c.restored ?? []), dataDir];
  await waitPromoted(port!, 10 * 60_000, logFile);
  return { url: serverUrl(port!), port: port!, dataDir, seconds: (performance.now() - t0) / 1000 };
}

/** Stops the side copies `restore --into` started. */
export async function stopHaRestored(c: HaCluster): Promise<void> {
  for (const dataDir of c.restored ?? []) {
    for (const mode of ['fast', 'immediate']) {
      try {
        await runPg(c, 'pg_ctl', ['-D', dataDir, '-m', mode, '-w', '-t', '30', 'stop'], {
          timeoutMs: 40_000,
        });
        break;
      } catch {
        // Not running, or not stopped in time: the harsher way, then give up.
      }
    }
  }
  c.restored = [];
}
