// pgBackRest for the local cluster (Debian package `pgbackrest`): one repository in the cluster
// directory, one stanza per shard (`shard<N>`), WAL archived from every primary with `archive-push`
// (asynchronous, and never dropped: no archive-push-queue-max, so a full queue stops the primary's
// WAL recycling rather than losing WAL), full/diff/incr backups checked by `verify`, and restores
// to a point in time, in place or into a side directory started on a free port.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  appendConf,
  type Cluster,
  ClusterError,
  type ClusterServer,
  freePorts,
  logTail,
  ownDir,
  primaryOf,
  quoteConf,
  runPg,
  saveCluster,
  serverUrl,
  startPostmaster,
  startServer,
  stopServer,
  withClient,
} from './pg-cluster.ts';

export const PGBACKREST = '/usr/bin/pgbackrest';
const BACKUP_TIMEOUT_MS = 30 * 60_000;

export const stanzaOf = (shard: number): string => `shard${shard}`;

/** What running pgBackRest needs of a cluster, of either shape. */
export type WithBackups = Pick<Cluster, 'binDir' | 'backups'>;

export interface BackupOptions {
  /** WAL is switched (and archived) at least this often while there are writes: the archive's RPO bound. */
  archiveTimeoutS?: number;
  log?: (line: string) => void;
}

/** The pgbackrest.conf for a cluster: the repository and a stanza per shard's primary. */
export function pgbackrestConf(c: Cluster, base: string): string {
  const lines = pgbackrestGlobal(base);
  for (let shard = 0; shard < c.shards; shard++) {
    const p = primaryOf(c, shard);
    lines.push(
      `[${stanzaOf(shard)}]`,
      `pg1-path=${p.dataDir}`,
      `pg1-port=${p.port}`,
      `pg1-socket-path=${dirname(p.dataDir)}`,
      'pg1-user=postgres',
      '',
    );
  }
  return lines.join('\n');
}

/** The [global] section, the same for both shapes: one repository under `base`. */
export function pgbackrestGlobal(base: string): string[] {
  return [
    '[global]',
    `repo1-path=${join(base, 'repo')}`,
    // Two full backups, with the WAL between them: enough to restore to any time since the older.
    'repo1-retention-full=2',
    'archive-async=y',
    `spool-path=${join(base, 'spool')}`,
    `lock-path=${join(base, 'lock')}`,
    `log-path=${join(base, 'log')}`,
    'log-level-console=warn',
    'log-level-file=info',
    'start-fast=y',
    'compress-type=lz4',
    'process-max=2',
    '',
  ];
}

/** Runs pgbackrest as postgres with the cluster's configuration; stdout back, or a ClusterError. */
export function pgbackrest(c: WithBackups, args: string[], timeoutMs = BACKUP_TIMEOUT_MS): Promise<string> {
  if (c.backups == null) throw new ClusterError('backups are not configured for this cluster (up --backups)');
  return runPg(c, PGBACKREST, [`--config=${c.backups.configFile}`, ...args], { timeoutMs });
}

/**
 * Configures pgBackRest for a cluster started with `archiving`: the repository, the stanzas, the
 * archive command on every primary (a reload: archive_mode was on from the start), then
 * `pgbackrest check`, which proves a WAL switch reaches the repository.
 */
export async function enableBackups(c: Cluster, opts: BackupOptions = {}): Promise<void> {
  if (!c.archiving) {
    throw new ClusterError('the cluster was started without archive_mode (start it with backups on)');
  }
  const log = opts.log ?? (() => {});
  const base = join(c.dir, 'backups');
  for (const sub of ['', 'repo', 'spool', 'lock', 'log']) {
    await mkdir(join(base, sub), { recursive: true });
    await ownDir(join(base, sub));
  }
  const configFile = join(base, 'pgbackrest.conf');
  await writeFile(configFile, pgbackrestConf(c, base));
  const archiveTimeoutS = opts.archiveTimeoutS ?? 60;
  c.backups = { configFile, repoDir: join(base, 'repo'), archiveTimeoutS };
  await saveCluster(c);
  for (let shard = 0; shard < c.shards; shard++) {
    const stanza = stanzaOf(shard);
    await pgbackrest(c, [`--stanza=${stanza}`, 'stanza-create'], 120_000);
    await setArchiveCommand(c, primaryOf(c, shard));
    await pgbackrest(c, [`--stanza=${stanza}`, 'check'], 120_000);
    log(`${stanza}: stanza created, WAL archiving checked`);
  }
}

/** archive_command and archive_timeout through ALTER SYSTEM and a reload (no restart needed). */
async function setArchiveCommand(c: Cluster, primary: ClusterServer): Promise<void> {
  const command = `${PGBACKREST} --config=${c.backups!.configFile} --stanza=${stanzaOf(primary.shard)} archive-push %p`;
  await withClient(primary.port, 'postgres', async (client) => {
    await client.query(`ALTER SYSTEM SET archive_command = ${quoteConf(command)}`);
    await client.query(`ALTER SYSTEM SET archive_timeout = '${c.backups!.archiveTimeoutS}s'`);
    await client.query('SELECT pg_reload_conf()');
  });
}

/**
 * Switches WAL on a shard's primary and waits until the segment is in the repository (`pgbackrest
 * check`): everything committed before the call can then be restored.
 */
export async function archiveNow(c: WithBackups, shard: number): Promise<void> {
  await pgbackrest(c, [`--stanza=${stanzaOf(shard)}`, 'check'], 120_000);
}

export interface BackupResult {
  shard: number;
  label: string;
  type: string;
  seconds: number;
  /** The backup's size in the repository (compressed), and the database's size it copied. */
  repoBytes: number;
  databaseBytes: number;
  verified: boolean;
}

interface InfoBackup {
  label: string;
  type: string;
  info: { size: number; repository: { delta: number; size: number } };
  timestamp: { start: number; stop: number };
}

/** The stanza's backups, oldest first, from `pgbackrest info --output=json`. */
export async function listBackups(c: WithBackups, shard: number): Promise<InfoBackup[]> {
  const text = await pgbackrest(c, [`--stanza=${stanzaOf(shard)}`, '--output=json', 'info'], 60_000);
  const info = JSON.parse(text) as { backup?: InfoBackup[] }[];
  return info[0]?.backup ?? [];
}

/** One backup of a shard's primary, then `verify` of the repository. */
export async function backupShard(
  c: WithBackups,
  shard: number,
  type: 'full' | 'diff' | 'incr' = 'full',
): Promise<BackupResult> {
  const t0 = performance.now();
  await pgbackrest(c, [`--stanza=${stanzaOf(shard)}`, `--type=${type}`, 'backup']);
  const seconds = (performance.now() - t0) / 1000;
  const newest = (await listBackups(c, shard)).at(-1);
  if (newest === undefined)
    throw new ClusterError(`${stanzaOf(shard)}: the backup finished but info lists none`);
  let verified = true;
  try {
    await pgbackrest(c, [`--stanza=${stanzaOf(shard)}`, 'verify']);
  } catch (err) {
    verified = false;
    throw new ClusterError(`${stanzaOf(shard)}: verify failed after backup ${newest.label}: ${String(err)}`);
  }
  return {
    shard,
    label: newest.label,
    type: newest.type,
    seconds,
    repoBytes: newest.info.repository.delta,
    databaseBytes: newest.info.size,
    verified,
  };
}

export interface RestoreTarget {
  /** Recover to this time (the last commit before it); null: to the end of the archived WAL. */
  time: Date | null;
  /** Restore into this directory and start it on a free port; null: in place (the shard's servers). */
  into: string | null;
}

export interface RestoreResult {
  url: string;
  port: number;
  dataDir: string;
  seconds: number;
}

export function restoreArgs(shard: number, dataDir: string, time: Date | null, delta: boolean): string[] {
  return [
    `--stanza=${stanzaOf(shard)}`,
    `--pg1-path=${dataDir}`,
    ...(delta ? ['--delta'] : []),
    ...(time === null
      ? ['--type=default']
      : ['--type=time', `--target=${pgbackrestTime(time)}`, '--target-action=promote']),
    // The restored server must not archive into the stanza as if it were the shard's primary.
    ...(delta ? [] : ['--archive-mode=off']),
    'restore',
  ];
}

/** pgBackRest's time format: `YYYY-MM-DD HH:MM:SS.mmm+00` (it refuses ISO 8601's T and Z). */
export function pgbackrestTime(t: Date): string {
  return `${t.toISOString().replace('T', ' ').replace('Z', '')}+00`;
}

/** Waits until a restored server has finished recovery and accepts writes. */
export async function waitPromoted(port: number, timeoutMs: number, logFile: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const inRecovery = await withClient(port, 'postgres', async (client) => {
        const { rows } = await client.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
        return rows[0]!.r;
      });
      if (!inRecovery) return;
    } catch {
      // Not accepting connections yet.
    }
    if (Date.now() > deadline) {
      throw new ClusterError(
        `the restored server on port ${port} is still recovering${await logTail(logFile)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Restores a shard to a point in time (or to the end of its archive): into a side directory started
 * on a free port (the shard keeps serving), or in place (the shard's servers stopped, the primary
 * restored with --delta and promoted, each replica copied again from it).
 */
export async function restoreShard(c: Cluster, shard: number, target: RestoreTarget): Promise<RestoreResult> {
  const t0 = performance.now();
  if (target.into !== null) {
    const dataDir = join(target.into, 'data');
    await mkdir(dataDir, { recursive: true });
    await ownDir(target.into);
    await ownDir(dataDir);
    await pgbackrest(c, restoreArgs(shard, dataDir, target.time, false));
    const [port] = await freePorts(1);
    const side: ClusterServer = {
      name: `shard${shard}-restored`,
      role: 'primary',
      shard,
      replica: 0,
      port: port!,
      pid: null,
      dataDir,
      logFile: join(target.into, 'postgres.log'),
      url: serverUrl(port!),
      cgroup: null,
    };
    // The copy carries the primary's settings; these lines win.
    await appendConf(dataDir, {
      port: String(port),
      unix_socket_directories: quoteConf(target.into),
      cluster_name: quoteConf(`hop-${c.id}-${side.name}`),
      archive_mode: 'off',
    });
    await startPostmaster(c, side, true);
    // `down` stops it with the cluster.
    c.restored = [...(c.restored ?? []), dataDir];
    await saveCluster(c);
    await waitPromoted(side.port, 10 * 60_000, side.logFile);
    return { url: side.url, port: side.port, dataDir, seconds: (performance.now() - t0) / 1000 };
  }
  const servers = c.servers.filter((s) => s.shard === shard);
  const primary = primaryOf(c, shard);
  // Archiving is asynchronous: a WAL segment the shutdown hands over may still sit in the spool
  // when the restore reads the repository. While the primary runs, switch and wait for the archive.
  if (primary.pid !== null) await archiveNow(c, shard).catch(() => {});
  for (const s of servers) await stopServer(c, s.name, 'fast');
  await pgbackrest(c, restoreArgs(shard, primary.dataDir, target.time, true));
  await startServer(c, primary.name);
  await waitPromoted(primary.port, 10 * 60_000, primary.logFile);
  // Replicas follow the old timeline: copied again from the restored primary.
  for (const r of servers.filter((s) => s.role === 'replica')) {
    await rm(r.dataDir, { recursive: true, force: true });
    await runPg(c, 'pg_basebackup', [
      ...['-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres'],
      ...['-D', r.dataDir, '-R', '-X', 'stream', '-c', 'fast', '-N'],
    ]);
    await appendConf(r.dataDir, {
      port: String(r.port),
      unix_socket_directories: quoteConf(dirname(r.dataDir)),
      cluster_name: quoteConf(`hop-${c.id}-${r.name}`),
    });
    await startServer(c, r.name);
  }
  await saveCluster(c);
  return {
    url: primary.url,
    port: primary.port,
    dataDir: primary.dataDir,
    seconds: (performance.now() - t0) / 1000,
  };
}

/** Stops a server restore --into started (fast, then immediate). */
export async function stopRestored(c: Cluster, dataDir: string): Promise<void> {
  for (const mode of ['fast', 'immediate']) {
    try {
      await runPg(c, 'pg_ctl', ['-D', dataDir, '-m', mode, '-w', '-t', '30', 'stop'], { timeoutMs: 40_000 });
      break;
    } catch {
      // Not running, or it did not stop in time: try the harsher way, then give up.
    }
  }
  c.restored = (c.restored ?? []).filter((d) => d !== dataDir);
  await saveCluster(c);
}
