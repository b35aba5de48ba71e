// A local cluster of real PostgreSQL 15 servers (N shards, each a primary and R streaming replicas)
// on free 127.0.0.1 ports, in a throwaway directory: for integration tests, benchmarks and `npm run cluster`.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import {
  access,
  appendFile,
  chown,
  constants,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  rmdir,
  stat,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import pg from 'pg';
import { CpuCgroup, cpuQuotaUnavailable } from '../lib/cpu-cgroup.ts';
import { freePort } from '../lib/free-port.ts';
import { descendants, isAlive, signal, waitGone } from '../lib/processes.ts';

export const DEFAULT_PG_BIN = '/usr/lib/postgresql/15/bin';
const CLUSTER_FILE = 'cluster.json';
const DATABASE = 'hop';
const SERVER_USER = 'postgres';
/** sun_path holds 108 bytes with its NUL; PostgreSQL refuses a socket path that does not fit. */
const MAX_SOCKET_PATH = 107;
const STREAMING_TIMEOUT_MS = 30_000;

export interface ClusterServer {
  name: string;
  role: 'primary' | 'replica';
  /** 0-based. */
  shard: number;
  /** 0 for the primary, 1.. for replicas. */
  replica: number;
  port: number;
  /** Postmaster pid (from postmaster.pid), null when not running. */
  pid: number | null;
  dataDir: string;
  logFile: string;
  /** postgres://postgres@127.0.0.1:PORT/hop */
  url: string;
  /** cgroup path when a CPU quota is applied. */
  cgroup: string | null;
}

export interface Cluster {
  dir: string;
  shards: number;
  replicas: number;
  servers: ClusterServer[];
  cpuQuota: number | null;
  /** Unique per cluster: names its cgroups and its servers' cluster_name (seen in `ps`). */
  id: string;
  /** Where the PostgreSQL binaries were found, so a later process restarts servers with the same ones. */
  binDir: string;
  /** What every server was started with, so `add-shard` starts the next shard's alike (absent before it existed). */
  settings?: ServerSettings;
  /** Primaries start with archive_mode on (the archive command is set once backups are configured). */
  archiving?: boolean;
  /** pgBackRest, once configured (backups.ts). */
  backups?: { configFile: string; repoDir: string; archiveTimeoutS: number } | null;
  /** Data dirs of servers `restore --into` started beside the cluster; `down` stops them too. */
  restored?: string[];
}

export interface StartOptions {
  shards?: number;
  replicas?: number;
  /** State dir; default a new mkdtemp under os.tmpdir(). */
  dir?: string;
  /** Cores per server, as a cgroup v1 CFS quota. */
  cpuQuota?: number | null;
  /** Default false: the data is throwaway, so fsync and full_page_writes are off. */
  fsync?: boolean;
  /** Default 200. */
  maxConnections?: number;
  /**
   * Primaries start with archive_mode on and an empty archive_command (WAL is kept until one is
   * set), so pgBackRest can be configured without a restart (backups.ts: enableBackups).
   */
  archiving?: boolean;
  /** Progress lines. */
  log?: (line: string) => void;
  /**
   * The servers outlive this process (the CLI's `up`): their cgroups are kept when it exits. Without
   * it, an exiting process shuts down (immediate mode) the servers of every cluster it started and
   * did not stop, so a crashed test leaves no servers behind.
   */
  detached?: boolean;
}

/** A failure with a message meant for a person: the CLI prints it without a stack trace. */
export class ClusterError extends Error {
  override name = 'ClusterError';
}

/** HOP_PG_BIN, or the Debian/Ubuntu location of PostgreSQL 15. */
export function pgBinDir(): string {
  return process.env.HOP_PG_BIN || DEFAULT_PG_BIN;
}

// ---------------------------------------------------------------------------------------------
// Starting

export async function startCluster(opts: StartOptions = {}): Promise<Cluster> {
  const began = performance.now();
  const userLog = opts.log ?? (() => {});
  // Startup time matters (suites start clusters repeatedly), so every step says when it finished.
  const log = (line: string) => userLog(`${((performance.now() - began) / 1000).toFixed(2)} s ${line}`);
  const shards = opts.shards ?? 2;
  const replicas = opts.replicas ?? 1;
  const cpuQuota = opts.cpuQuota ?? null;
  const maxConnections = opts.maxConnections ?? 200;
  if (!Number.isInteger(shards) || shards < 1) {
    throw new ClusterError(`shards must be an integer ≥ 1, got ${shards}`);
  }
  if (!Number.isInteger(replicas) || replicas < 0) {
    throw new ClusterError(`replicas must be an integer ≥ 0, got ${replicas}`);
  }
  if (!Number.isInteger(maxConnections) || maxConnections < 10) {
    throw new ClusterError(`maxConnections must be an integer ≥ 10, got ${maxConnections}`);
  }
  if (cpuQuota !== null) {
    if (!Number.isFinite(cpuQuota) || cpuQuota <= 0) {
      throw new ClusterError(`a CPU quota needs cores > 0, got ${cpuQuota}`);
    }
    const why = await cpuQuotaUnavailable();
    if (why !== null) throw new ClusterError(`cannot apply a CPU quota of ${cpuQuota} cores: ${why}`);
  }
  const binDir = await checkBinaries(pgBinDir());
  const dir =
    opts.dir === undefined ? await mkdtemp(join(tmpdir(), 'hop-cluster-')) : await claimDir(opts.dir, log);

  const id = randomBytes(4).toString('hex');
  const settings: ServerSettings = { maxConnections, fsync: opts.fsync ?? false };
  const cluster: Cluster = {
    dir,
    shards,
    replicas,
    servers: [],
    cpuQuota,
    id,
    binDir,
    settings,
    archiving: opts.archiving ?? false,
    backups: null,
  };
  const ports = await freePorts(shards * (1 + replicas));
  try {
    for (let shard = 0; shard < shards; shard++) {
      cluster.servers.push(...shardServers(cluster, shard, replicas, ports));
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  if (!opts.detached) stopOnExit(cluster);
  try {
    await ownDir(dir);
    await checkReachable(cluster);
    // Written before anything starts, so `down` (or stopCluster) can clean up after an interrupted start.
    await saveCluster(cluster);
    log(`starting ${shards} shard(s) × (1 primary + ${replicas} replica(s)) in ${dir}`);
    await Promise.all(
      Array.from({ length: shards }, (_, shard) => startShard(cluster, shard, settings, log)),
    );
    if (opts.detached) keepCgroups(cluster.servers);
    await saveCluster(cluster);
  } catch (err) {
    log(`start failed; stopping what was started in ${dir}`);
    await stopCluster(cluster).catch((stopErr: unknown) => log(`cleanup failed too: ${errorText(stopErr)}`));
    throw err;
  }
  log(`cluster up: ${shards} shard(s) × ${replicas} replica(s)`);
  return cluster;
}

export interface ServerSettings {
  maxConnections: number;
  fsync: boolean;
}

/**
 * The servers of shard `shard` (a primary and `replicas` replicas), not yet started, on ports taken
 * from `ports`; throws when a server's socket path would be too long for PostgreSQL.
 */
function shardServers(c: Cluster, shard: number, replicas: number, ports: number[]): ClusterServer[] {
  const servers: ClusterServer[] = [];
  for (let replica = 0; replica <= replicas; replica++) {
    const name = replica === 0 ? `shard${shard}-primary` : `shard${shard}-replica${replica}`;
    const port = ports.pop()!;
    const serverDir = join(c.dir, name);
    const socket = join(serverDir, `.s.PGSQL.${port}`);
    if (socket.length > MAX_SOCKET_PATH) {
      throw new ClusterError(
        `the socket path ${socket} is longer than ${MAX_SOCKET_PATH} bytes: use a shorter cluster directory`,
      );
    }
    servers.push({
      name,
      role: replica === 0 ? 'primary' : 'replica',
      shard,
      replica,
      port,
      pid: null,
      dataDir: join(serverDir, 'data'),
      logFile: join(serverDir, 'postgres.log'),
      url: serverUrl(port),
      cgroup: null,
    });
  }
  return servers;
}

/** Servers that outlive this process keep their cgroups when it exits (CpuCgroup removes its own then). */
function keepCgroups(servers: ClusterServer[]): void {
  for (const s of servers) if (s.cgroup !== null) groups.get(s.cgroup)?.persist();
}

/**
 * Starts shard `shard`'s servers, as recorded in `c.servers`: initdb for the primary, then each
 * replica copied from it with pg_basebackup and streaming. `up` starts every shard through it, and
 * `add-shard` the next one, so a shard added later is initialised exactly like the first ones.
 * Shards share nothing, so each one starts on its own; replicas of a shard copy its primary in parallel.
 */
async function startShard(c: Cluster, shard: number, settings: ServerSettings, log: (line: string) => void) {
  const primary = c.servers.find((s) => s.shard === shard && s.role === 'primary')!;
  const serverDir = dirname(primary.dataDir);
  await mkdir(serverDir);
  await ownDir(serverDir);
  const noSync = settings.fsync ? [] : ['-N'];
  await runPg(c, 'initdb', [
    '-D',
    primary.dataDir,
    '-U',
    SERVER_USER,
    '--auth=trust',
    '-E',
    'UTF8',
    '--locale=C',
    ...noSync,
  ]);
  log(`${primary.name} initialised`);
  // initdb's pg_hba.conf with --auth=trust already lets replication in from 127.0.0.1.
  await appendConf(primary.dataDir, {
    listen_addresses: "'127.0.0.1'",
    port: String(primary.port),
    unix_socket_directories: quoteConf(serverDir),
    cluster_name: quoteConf(clusterName(c, primary)),
    wal_level: 'replica',
    max_wal_senders: '10',
    wal_keep_size: "'512MB'",
    hot_standby: 'on',
    hot_standby_feedback: 'on',
    max_connections: String(settings.maxConnections),
    shared_buffers: "'128MB'",
    fsync: settings.fsync ? 'on' : 'off',
    full_page_writes: settings.fsync ? 'on' : 'off',
    log_min_messages: 'warning',
    // A replica copies this file; on a standby archive_mode=on archives nothing.
    ...(c.archiving ? { archive_mode: 'on', archive_command: "''" } : {}),
  });
  await startPostmaster(c, primary, true);
  log(`${primary.name} up on port ${primary.port} (pid ${primary.pid})`);
  await withClient(primary.port, 'postgres', (client) => client.query(`CREATE DATABASE ${DATABASE}`));

  const replicas = c.servers.filter((s) => s.shard === shard && s.role === 'replica');
  await Promise.all(
    replicas.map(async (replica) => {
      const replicaDir = dirname(replica.dataDir);
      await mkdir(replicaDir);
      await ownDir(replicaDir);
      await runPg(
        c,
        'pg_basebackup',
        [
          ...['-h', '127.0.0.1', '-p', String(primary.port), '-U', SERVER_USER],
          ...['-D', replica.dataDir, '-R', '-X', 'stream', '-c', 'fast', ...noSync],
        ],
        { timeoutMs: 120_000 },
      );
      log(`${replica.name} copied from ${primary.name}`);
      // The copy carries the primary's settings; the later lines win.
      await appendConf(replica.dataDir, {
        port: String(replica.port),
        unix_socket_directories: quoteConf(replicaDir),
        cluster_name: quoteConf(clusterName(c, replica)),
      });
      await startPostmaster(c, replica, true);
      await waitStreaming(c, replica);
      log(`${replica.name} streaming from ${primary.name} on port ${replica.port} (pid ${replica.pid})`);
    }),
  );
}

export interface AddShardOptions {
  /** Streaming replicas of the new shard; default the cluster's replicas per shard. */
  replicas?: number | undefined;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** The new shard's server URLs: what `hop shards add` takes, as 'primary[,replica…]'. */
export interface ShardUrls {
  primary: string;
  replicas: string[];
}

/**
 * Starts one more shard (numbered `c.shards`) beside the running cluster: a primary and `replicas`
 * streaming replicas on free ports, initialised and configured as `up` started the others (same
 * settings, CPU quota, ownership), then records it (cluster.json, `c.shards`), so `status`, `down`
 * and databaseUrls() include it. The shard holds an empty `hop` database: Hop claims it with
 * `hop shards add`. Servers of an earlier, interrupted add-shard are removed first; on a failure,
 * what was started is stopped and removed again, and the cluster is as it was.
 */
export async function addShardServers(c: Cluster, opts: AddShardOptions = {}): Promise<ShardUrls> {
  const began = performance.now();
  const userLog = opts.log ?? (() => {});
  const log = (line: string) => userLog(`${((performance.now() - began) / 1000).toFixed(2)} s ${line}`);
  const replicas = opts.replicas ?? c.replicas;
  if (!Number.isInteger(replicas) || replicas < 0) {
    throw new ClusterError(`replicas must be an integer ≥ 0, got ${replicas}`);
  }
  if (c.backups != null) {
    // Its primary would keep every WAL segment (archive_mode on, no archive command) for want of a stanza.
    throw new ClusterError(
      'adding a shard to a cluster with pgBackRest backups (up --backups) is not supported yet: ' +
        'the new shard would need its own stanza',
    );
  }
  await checkBinaries(c.binDir);
  if (c.cpuQuota !== null) {
    const why = await cpuQuotaUnavailable();
    if (why !== null)
      throw new ClusterError(`cannot apply the cluster's CPU quota of ${c.cpuQuota} cores: ${why}`);
  }
  const settings = c.settings ?? (await liveSettings(c));
  const shard = c.shards;
  if (c.servers.some((s) => s.shard === shard)) {
    log(`removing the servers of an interrupted add-shard of shard ${shard}`);
    await discardShard(c, shard);
  }
  await checkReachable(c);
  const ports = await freePorts(1 + replicas, new Set(c.servers.map((s) => s.port)));
  const servers = shardServers(c, shard, replicas, ports);
  // A process that started the cluster stops it (and removes the cgroups) when it exits; anywhere
  // else the servers outlive this process, as the cluster's others do.
  const owner = attached.get(c.dir);
  if (owner !== undefined && owner !== c) attached.set(c.dir, c);
  c.servers.push(...servers);
  // Recorded before anything starts, so `down` stops it after an interruption; but only part of the
  // cluster (c.shards, databaseUrls) once every server of it runs.
  await saveCluster(c);
  log(`starting shard ${shard}: 1 primary + ${replicas} replica(s) in ${c.dir}`);
  try {
    await startShard(c, shard, settings, log);
    if (owner === undefined) keepCgroups(servers);
  } catch (err) {
    log(`shard ${shard} did not start; stopping and removing its servers`);
    await discardShard(c, shard).catch((stopErr: unknown) =>
      log(`cleanup failed too: ${errorText(stopErr)}`),
    );
    await saveCluster(c);
    throw err;
  }
  c.shards = shard + 1;
  await saveCluster(c);
  log(`shard ${shard} up`);
  const [primary, ...rest] = servers.sort((a, b) => a.replica - b.replica);
  return { primary: primary!.url, replicas: rest.map((s) => s.url) };
}

/** max_connections and fsync as shard 0's primary runs them: for a cluster.json written before `settings`. */
async function liveSettings(c: Cluster): Promise<ServerSettings> {
  const primary = primaryOf(c, 0);
  try {
    return await withClient(primary.port, 'postgres', async (client) => {
      const { rows } = await client.query<{ max: string; fsync: string }>(
        "SELECT current_setting('max_connections') AS max, current_setting('fsync') AS fsync",
      );
      return { maxConnections: Number(rows[0]!.max), fsync: rows[0]!.fsync === 'on' };
    });
  } catch (err) {
    throw new ClusterError(
      `cannot tell how the cluster's servers were started (its ${CLUSTER_FILE} predates add-shard and ` +
        `${primary.name} does not answer: ${errorText(err)})`,
    );
  }
}

/** Stops a shard's servers, removes their cgroups, directories and records. */
async function discardShard(c: Cluster, shard: number): Promise<void> {
  const servers = c.servers.filter((s) => s.shard === shard);
  await Promise.all(servers.map((s) => stopServer(c, s.name, 'immediate')));
  for (const s of servers) {
    if (s.cgroup !== null) await removeCgroup(s.cgroup);
    await rm(dirname(s.dataDir), { recursive: true, force: true });
  }
  c.servers = c.servers.filter((s) => s.shard !== shard);
}

/**
 * pg_ctl start, then the postmaster into its cgroup. A port picked free can be taken before the server
 * binds it; with `retryPort` the server gets another one instead of failing.
 */
export async function startPostmaster(c: Cluster, s: ClusterServer, retryPort: boolean): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await runPg(c, 'pg_ctl', ['-D', s.dataDir, '-l', s.logFile, '-w', '-t', '60', 'start'], {
        timeoutMs: 70_000,
        logFile: s.logFile,
      });
      break;
    } catch (err) {
      const tail = await logTail(s.logFile);
      if (!retryPort || attempt >= 3 || !/could not bind|Address already in use/.test(tail)) throw err;
      s.port = (await freePorts(1))[0]!;
      s.url = serverUrl(s.port);
      await appendConf(s.dataDir, { port: String(s.port) });
    }
  }
  s.pid = postmasterPid(s);
  if (s.pid === null) {
    throw new ClusterError(
      `${s.name}: pg_ctl said started but postmaster.pid names no live server${await tailText(s)}`,
    );
  }
  if (c.cpuQuota !== null) await confine(c, s, s.pid);
}

/** Polls the primary's pg_stat_replication until the replica's walreceiver is streaming. */
export async function waitStreaming(c: Cluster, replica: ClusterServer): Promise<void> {
  const primary = primaryOf(c, replica.shard);
  const deadline = Date.now() + STREAMING_TIMEOUT_MS;
  let last = 'no walsender for it';
  await withClient(primary.port, 'postgres', async (client) => {
    for (;;) {
      const { rows } = await client.query<{ state: string }>(
        'SELECT state FROM pg_stat_replication WHERE application_name = $1',
        [clusterName(c, replica)],
      );
      const state = rows[0]?.state;
      if (state === 'streaming') return;
      if (state !== undefined) last = `state ${state}`;
      if (Date.now() > deadline) {
        throw new ClusterError(
          `${replica.name} is not streaming from ${primary.name} after ${STREAMING_TIMEOUT_MS / 1000} s (${last})` +
            (await tailText(replica)),
        );
      }
      await sleep(50);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Inspecting

/** Reads <dir>/cluster.json and refreshes every pid from postmaster.pid (null for a server not running). */
export async function loadCluster(dir: string): Promise<Cluster> {
  const file = join(resolve(dir), CLUSTER_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ClusterError(`no cluster in ${dir} (no ${file})`);
    }
    throw err;
  }
  let c: Cluster;
  try {
    c = JSON.parse(text) as Cluster;
  } catch (err) {
    throw new ClusterError(`${file} is not a cluster description: ${errorText(err)}`);
  }
  for (const s of c.servers) s.pid = postmasterPid(s);
  return c;
}

/** HOP_DATABASE_URLS: shards separated by ';', each 'primaryURL,replicaURL,...', in shard order. */
export function databaseUrls(c: Cluster): string {
  const shards: string[] = [];
  for (let shard = 0; shard < c.shards; shard++) {
    const servers = c.servers.filter((s) => s.shard === shard).sort((a, b) => a.replica - b.replica);
    shards.push(servers.map((s) => s.url).join(','));
  }
  return shards.join(';');
}

/** A dotenv file for Hop: HOP_DATABASE_URLS, with a comment line per server. */
export function envFileText(c: Cluster): string {
  const lines = [
    `# Hop local PostgreSQL cluster in ${c.dir} (stop it: npm run cluster -- down --dir ${c.dir})`,
  ];
  for (const s of c.servers) {
    lines.push(
      `# ${s.name.padEnd(18)} ${s.role.padEnd(7)} 127.0.0.1:${s.port} pid ${s.pid ?? '-'} log ${s.logFile}`,
    );
  }
  // Quoted: the ";" between shards would end the assignment where a shell sources the file.
  lines.push(`HOP_DATABASE_URLS="${databaseUrls(c)}"`);
  return `${lines.join('\n')}\n`;
}

/** Live postgres processes of the cluster (postmasters and their children), found through /proc. */
export function clusterPids(c: Cluster): number[] {
  const pids: number[] = [];
  const title = clusterName(c, null);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'postgres') continue;
      // Children carry cluster_name in their title; the postmaster names its data directory.
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if ((cmdline.includes(title) || cmdline.includes(`${c.dir}/`)) && isAlive(pid)) pids.push(pid);
    } catch {
      // Exited while we looked.
    }
  }
  return pids;
}

// ---------------------------------------------------------------------------------------------
// Stopping, killing, restarting

/**
 * Stops every server (fast shutdown, then immediate, then SIGKILL), removes the cgroups and, unless
 * `keepDir`, the directory. Safe to call twice, from any process.
 */
export async function stopCluster(
  dirOrCluster: string | Cluster,
  opts: { keepDir?: boolean } = {},
): Promise<void> {
  let c: Cluster;
  if (typeof dirOrCluster === 'string') {
    const dir = resolve(dirOrCluster);
    const entries = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null;
      throw err;
    });
    if (entries === null) return;
    if (!entries.includes(CLUSTER_FILE)) {
      if (entries.length > 0) {
        throw new ClusterError(`${dir} has no ${CLUSTER_FILE}: not a Hop cluster, left alone`);
      }
      if (!opts.keepDir) await rmdir(dir);
      return;
    }
    c = await loadCluster(dir);
  } else {
    c = dirOrCluster;
    for (const s of c.servers) s.pid = postmasterPid(s);
  }
  // A server killed and never restarted still holds shared memory (a SysV segment, files in /dev/shm)
  // that only PostgreSQL finds again from its data directory: started once, the stop below releases it.
  await Promise.all(
    c.servers
      .filter((s) => s.pid === null && lockFilePid(s) !== null)
      .map(async (s) => {
        await clearStaleLock(s);
        await startPostmaster(c, s, false).catch(() => {});
      }),
  );
  await Promise.all(c.servers.map((s) => stopServer(c, s.name, 'fast')));
  await Promise.all(
    (c.restored ?? []).map((d) =>
      runPg(c, 'pg_ctl', ['-D', d, '-m', 'immediate', '-w', '-t', '20', 'stop'], { timeoutMs: 30_000 }).catch(
        () => {},
      ),
    ),
  );
  // Anything a fallback left (an orphaned backend of a killed postmaster) goes now.
  const leftovers = clusterPids(c);
  for (const pid of leftovers) signal(pid, 'SIGKILL');
  await waitGone(leftovers, 10_000);
  const failures: string[] = [];
  for (const s of c.servers) {
    if (s.cgroup === null) continue;
    try {
      await removeCgroup(s.cgroup);
      s.cgroup = null;
    } catch (err) {
      failures.push(`could not remove cgroup ${s.cgroup}: ${errorText(err)}`);
    }
  }
  attached.delete(c.dir);
  if (!opts.keepDir) await rm(c.dir, { recursive: true, force: true });
  else await saveCluster(c);
  if (failures.length > 0) throw new ClusterError(failures.join('; '));
}

/** Stops one server: pg_ctl fast (or immediate) shutdown, falling back to immediate, then SIGKILL. */
export async function stopServer(
  c: Cluster,
  name: string,
  mode: 'fast' | 'immediate' = 'fast',
): Promise<void> {
  const s = serverNamed(c, name);
  const pid = postmasterPid(s);
  if (pid === null) {
    await clearStaleLock(s);
    s.pid = null;
    return;
  }
  const modes: ('fast' | 'immediate')[] = mode === 'fast' ? ['fast', 'immediate'] : ['immediate'];
  for (const m of modes) {
    const waitS = m === 'fast' ? 30 : 10;
    try {
      await runPg(c, 'pg_ctl', ['-D', s.dataDir, '-m', m, '-w', '-t', String(waitS), 'stop'], {
        timeoutMs: (waitS + 10) * 1000,
        logFile: s.logFile,
      });
      if (await waitGone([pid], 5000)) break;
    } catch {
      // Try the next, harsher way.
    }
  }
  if (isAlive(pid)) await killServer(c, name, 'SIGKILL');
  await clearStaleLock(s);
  s.pid = null;
}

/** Sends `sig` (SIGKILL by default) to the postmaster; after SIGKILL, waits until it and its children are gone. */
export async function killServer(c: Cluster, name: string, sig: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  const s = serverNamed(c, name);
  const pid = postmasterPid(s);
  if (pid === null) return;
  const family = [pid, ...descendants(pid)];
  signal(pid, sig);
  if (sig !== 'SIGKILL') return;
  // Children notice their postmaster's death by themselves; a restart fails while any of them lives.
  if (!(await waitGone(family, 10_000))) {
    for (const p of family) signal(p, 'SIGKILL');
    await waitGone(family, 5000);
  }
  s.pid = null;
}

/**
 * Starts a stopped or killed server again on its port; returns once it accepts connections, and for a
 * replica once it streams from its primary again (which must be running).
 */
export async function startServer(c: Cluster, name: string): Promise<void> {
  const s = serverNamed(c, name);
  s.pid = postmasterPid(s);
  if (s.pid === null) {
    await clearStaleLock(s);
    await startPostmaster(c, s, false);
  }
  if (s.role === 'replica') await waitStreaming(c, s);
  await saveCluster(c);
}

/**
 * recovery_min_apply_delay on a replica (0 turns it off), through ALTER SYSTEM and a reload; returns
 * once the server has reread its configuration.
 */
export async function setApplyDelay(c: Cluster, replicaName: string, ms: number): Promise<void> {
  const s = serverNamed(c, replicaName);
  if (s.role !== 'replica') {
    throw new ClusterError(`${replicaName} is a primary: only replicas delay applying WAL`);
  }
  if (!Number.isInteger(ms) || ms < 0) {
    throw new ClusterError(`an apply delay is a whole number of ms ≥ 0, got ${ms}`);
  }
  await withClient(s.port, 'postgres', async (client) => {
    // ALTER SYSTEM takes no bind parameters; ms is a checked integer.
    await client.query(
      ms === 0
        ? 'ALTER SYSTEM RESET recovery_min_apply_delay'
        : `ALTER SYSTEM SET recovery_min_apply_delay = '${ms}ms'`,
    );
    await client.query('SELECT pg_reload_conf()');
    // The reload is a signal, handled asynchronously; this backend rereads the file as the startup process does.
    const deadline = Date.now() + 5000;
    for (;;) {
      const { rows } = await client.query<{ ms: string }>(
        "SELECT setting AS ms FROM pg_settings WHERE name = 'recovery_min_apply_delay'",
      );
      if (Number(rows[0]?.ms) === ms) return;
      if (Date.now() > deadline) {
        throw new ClusterError(`${replicaName} did not take recovery_min_apply_delay=${ms}ms`);
      }
      await sleep(20);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Processes

/** A pid that exists and is not a zombie (here PID 1 may never reap the postmasters it inherits). */
/** The live postmaster named by the server's postmaster.pid, or null. */
function postmasterPid(s: ClusterServer): number | null {
  const pid = lockFilePid(s);
  if (pid === null || !isAlive(pid)) return null;
  try {
    // A stale lock file can name a pid since reused by something else.
    if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'postgres') return null;
  } catch {
    // No /proc: trust kill(pid, 0).
  }
  return pid;
}

function lockFilePid(s: ClusterServer): number | null {
  try {
    const pid = Number(readFileSync(join(s.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/**
 * A postmaster that died without cleaning up leaves postmaster.pid and its socket's lock file behind;
 * PostgreSQL refuses to start while the pid in them "exists", and a zombie does (where PID 1 does not
 * reap). With the server known dead, both locks go.
 */
async function clearStaleLock(s: ClusterServer): Promise<void> {
  if (lockFilePid(s) === null || postmasterPid(s) !== null) return;
  await rm(join(s.dataDir, 'postmaster.pid'), { force: true });
  await rm(join(dirname(s.dataDir), `.s.PGSQL.${s.port}.lock`), { force: true });
}

// ---------------------------------------------------------------------------------------------
// Exit hook for clusters a process started and did not stop

const attached = new Map<string, Cluster>();
let exitHookInstalled = false;

function stopOnExit(c: Cluster): void {
  attached.set(c.dir, c);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Installed before any CpuCgroup, so it runs before their hook moves the servers out and removes the groups.
  process.on('exit', () => {
    for (const cluster of attached.values()) stopClusterSync(cluster);
  });
}

/** Best effort where nothing asynchronous runs: immediate shutdown, a short wait, SIGKILL, remove the dir. */
function stopClusterSync(c: Cluster): void {
  const pids = c.servers.map(lockFilePid).filter((p): p is number => p !== null && isAlive(p));
  for (const pid of pids) signal(pid, 'SIGQUIT');
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + 5000;
  while (pids.some(isAlive) && Date.now() < deadline) Atomics.wait(pause, 0, 0, 20);
  for (const pid of clusterPids(c)) signal(pid, 'SIGKILL');
  rmSync(c.dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// cgroups

/** Groups this process created, by path: removed through them, so their own exit hook forgets them. */
const groups = new Map<string, CpuCgroup>();

/**
 * Puts the postmaster, then its children, into the server's group. The postmaster goes first: what it
 * forks from then on inherits the group, and what it forked before is found through /proc.
 */
async function confine(c: Cluster, s: ClusterServer, pid: number): Promise<void> {
  if (c.cpuQuota === null) return;
  if (s.cgroup === null || !(await exists(s.cgroup))) {
    const group = await CpuCgroup.create(`hop-cluster-${c.id}-${s.name}`, c.cpuQuota);
    groups.set(group.path, group);
    s.cgroup = group.path;
  }
  const group = groups.get(s.cgroup);
  for (const p of [pid, ...descendants(pid)]) {
    try {
      // A group another process created (the CLI's `up`) is reached by its path.
      if (group !== undefined) await group.addProcess(p);
      else await writeFile(join(s.cgroup, 'cgroup.procs'), String(p));
    } catch (err) {
      // A child may exit between the listing and the move; the postmaster may not.
      if (p === pid) {
        throw new ClusterError(`could not move ${s.name} (pid ${pid}) into ${s.cgroup}: ${errorText(err)}`);
      }
    }
  }
}

/** Moves what is left back to the parent (a non-empty group cannot go) and removes the group. */
async function removeCgroup(path: string): Promise<void> {
  const group = groups.get(path);
  groups.delete(path);
  if (group !== undefined) return group.remove();
  // A group another process created (the CLI's `up`): same steps, by path.
  const procs = await readFile(join(path, 'cgroup.procs'), 'utf8').catch(() => '');
  for (const pid of procs.split('\n').filter(Boolean)) {
    await writeFile(join(dirname(path), 'cgroup.procs'), pid).catch(() => {});
  }
  await rmdir(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}

// ---------------------------------------------------------------------------------------------
// Files and directories

/** An explicit dir: refused while a live cluster is in it, cleaned when a dead one is, created when absent. */
async function claimDir(path: string, log: (line: string) => void): Promise<string> {
  const dir = resolve(path);
  const entries = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (entries?.includes(CLUSTER_FILE)) {
    const old = await loadCluster(dir);
    const alive = old.servers.filter((s) => s.pid !== null);
    if (alive.length > 0) {
      throw new ClusterError(
        `a cluster is already running in ${dir} (${alive.length} of ${old.servers.length} servers alive): ` +
          `stop it first (npm run cluster -- down --dir ${dir})`,
      );
    }
    log(`removing a stopped cluster left in ${dir}`);
    await stopCluster(old);
  } else if (entries !== null && entries.length > 0) {
    throw new ClusterError(
      `${dir} exists and is not a Hop cluster directory (no ${CLUSTER_FILE}): choose another dir`,
    );
  }
  await mkdir(dir, { recursive: true });
  return dir;
}

export async function saveCluster(c: Cluster): Promise<void> {
  const file = join(c.dir, CLUSTER_FILE);
  // Through a rename, so a reader in another process never sees half a file.
  await writeFile(`${file}.tmp`, `${JSON.stringify(c, null, 2)}\n`);
  await rename(`${file}.tmp`, file);
}

export async function appendConf(dataDir: string, settings: Record<string, string>): Promise<void> {
  const lines = Object.entries(settings).map(([k, v]) => `${k} = ${v}`);
  await appendFile(join(dataDir, 'postgresql.conf'), `\n# Hop local cluster\n${lines.join('\n')}\n`);
}

export function quoteConf(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Root runs the servers as postgres, which must own their directories (initdb refuses otherwise). */
export async function ownDir(path: string): Promise<void> {
  if (!asRoot()) return;
  const { uid, gid } = await serverUser();
  await chown(path, uid, gid);
}

/** Owning the cluster dir is not enough: every directory above it must let postgres through. */
async function checkReachable(c: Cluster): Promise<void> {
  if (!asRoot()) return;
  try {
    await runPg(c, '/usr/bin/test', ['-w', c.dir, '-a', '-x', c.dir], { timeoutMs: 10_000 });
  } catch {
    throw new ClusterError(
      `the ${SERVER_USER} user cannot reach ${c.dir}: a directory above it is closed to other users ` +
        `(pick a cluster dir under ${tmpdir()})`,
    );
  }
}

let serverUserIds: { uid: number; gid: number } | undefined;

export async function serverUser(): Promise<{ uid: number; gid: number }> {
  if (serverUserIds !== undefined) return serverUserIds;
  const passwd = await readFile('/etc/passwd', 'utf8');
  const fields = passwd
    .split('\n')
    .map((line) => line.split(':'))
    .find((f) => f[0] === SERVER_USER);
  if (fields === undefined) {
    throw new ClusterError(
      `PostgreSQL refuses to run as root and there is no '${SERVER_USER}' user to run it as`,
    );
  }
  serverUserIds = { uid: Number(fields[2]), gid: Number(fields[3]) };
  return serverUserIds;
}

export async function logTail(file: string, lines = 20): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

async function tailText(s: ClusterServer): Promise<string> {
  const tail = await logTail(s.logFile);
  return tail === '' ? '' : `\n--- last lines of ${s.logFile}\n${tail}`;
}

// ---------------------------------------------------------------------------------------------
// Running PostgreSQL's programs

const BINARIES = ['initdb', 'pg_ctl', 'pg_basebackup', 'postgres'];

/** Why clusters cannot start here (PostgreSQL's programs missing), or null: lets a test skip with the reason. */
export async function postgresUnavailable(binDir = pgBinDir()): Promise<string | null> {
  const missing: string[] = [];
  for (const bin of BINARIES) {
    try {
      await access(join(binDir, bin), constants.X_OK);
    } catch {
      missing.push(bin);
    }
  }
  if (missing.length === 0) return null;
  return (
    `PostgreSQL binaries not found in ${binDir} (missing: ${missing.join(', ')}): install the PostgreSQL 15 ` +
    `server package, or set HOP_PG_BIN to the directory that holds initdb, pg_ctl and pg_basebackup`
  );
}

async function checkBinaries(binDir: string): Promise<string> {
  const why = await postgresUnavailable(binDir);
  if (why !== null) throw new ClusterError(why);
  return binDir;
}

function asRoot(): boolean {
  return process.getuid?.() === 0;
}

interface RunOptions {
  timeoutMs?: number;
  /** Its tail goes into the error message. */
  logFile?: string;
}

/**
 * Runs one of PostgreSQL's programs, as postgres when we are root (they refuse to run as root), with a
 * bounded time; a failure names the command and carries its stderr and the server log's tail.
 */
export async function runPg(
  c: Pick<Cluster, 'binDir'>,
  bin: string,
  args: string[],
  opts: RunOptions = {},
): Promise<string> {
  const path = bin.includes('/') ? bin : join(c.binDir, bin);
  const [command, argv] = asRoot() ? ['runuser', ['-u', SERVER_USER, '--', path, ...args]] : [path, args];
  const shown = `${bin} ${args.join(' ')}`;
  const timeoutMs = opts.timeoutMs ?? 60_000;
  // PGHOST, PGPORT and friends from the caller's shell would redirect the tools to another server.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PG')));
  const result = await new Promise<{ code: string; stdout: string; stderr: string }>((resolveRun) => {
    // Its own process group, so a timeout kills runuser and the tool together.
    // cwd '/': the caller's may be closed to postgres, and the tools complain when they cannot read it.
    const child = spawn(command, argv, { cwd: '/', env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => {
      stderr += `\n(killed after ${timeoutMs / 1000} s)`;
      if (child.pid !== undefined) signal(-child.pid, 'SIGKILL');
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolveRun({ code: 'error', stdout, stderr: `${stderr}${errorText(err)}` });
    });
    child.once('close', (code, sig) => {
      clearTimeout(timer);
      resolveRun({ code: sig ?? String(code), stdout, stderr });
    });
  });
  if (result.code === '0') return result.stdout;
  const tail = opts.logFile === undefined ? '' : await logTail(opts.logFile);
  throw new ClusterError(
    `${shown} failed (${result.code === 'error' ? 'could not run it' : `exit ${result.code}`})` +
      (result.stderr.trim() === '' ? '' : `:\n${result.stderr.trim()}`) +
      (tail === '' ? '' : `\n--- last lines of ${opts.logFile}\n${tail}`),
  );
}

export async function withClient<T>(
  port: number,
  database: string,
  fn: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port,
    user: SERVER_USER,
    database,
    connectionTimeoutMillis: 10_000,
  });
  // A server that dies (or a balancer that cuts the session) between queries reports it as an event;
  // unheard, that event would end the process. The next query fails and says so.
  client.on('error', () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

// ---------------------------------------------------------------------------------------------
// Small helpers

/** `n` distinct ports free now, none of them in `exclude` (say, the ports of servers stopped for a while). */
export async function freePorts(n: number, exclude: ReadonlySet<number> = new Set()): Promise<number[]> {
  const ports = new Set<number>();
  // Each probe closes before the next opens, so the kernel may hand the same port out twice.
  while (ports.size < n) {
    const port = await freePort();
    if (!exclude.has(port)) ports.add(port);
  }
  return [...ports];
}

export function serverUrl(port: number): string {
  return `postgres://${SERVER_USER}@127.0.0.1:${port}/${DATABASE}`;
}

/** cluster_name: the replica's application_name on its primary, and the servers' title in `ps`. */
function clusterName(c: Cluster, s: ClusterServer | null): string {
  return s === null ? `hop-${c.id}-` : `hop-${c.id}-${s.name}`;
}

export function serverNamed(c: Cluster, name: string): ClusterServer {
  const s = c.servers.find((x) => x.name === name);
  if (s === undefined) {
    throw new ClusterError(`no server ${name} in the cluster (${c.servers.map((x) => x.name).join(', ')})`);
  }
  return s;
}

export function primaryOf(c: Cluster, shard: number): ClusterServer {
  return c.servers.find((s) => s.shard === shard && s.role === 'primary')!;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
