// Throwaway Redis on free 127.0.0.1 ports from the machine's redis-server: one server, a Redis Cluster
// of three masters, or a primary and a replica watched by three Sentinels (which promote the replica
// when the primary dies). No persistence. For integration tests, benchmarks and `npm run cluster -- up
// --redis`. Every process is described once (command, arguments, log, readiness) and run by the
// supervisor (scripts/lib/supervisor.ts), which starts, confines, waits for, stops and kills it.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { RedisTarget } from '../../src/config.ts';
import { removeCgroupDir, removeCgroupDirSync } from '../lib/cgroup-dir.ts';
import { cpuQuotaUnavailable } from '../lib/cpu-cgroup.ts';
import { freePort } from '../lib/free-port.ts';
import { findProgram, isAlive, signal, waitGone } from '../lib/processes.ts';
import { type ServerSpec, startServer, stopServer } from '../lib/supervisor.ts';
import { ClusterError } from './pg-cluster.ts';

/** In the state dir: what `loadRedis` reads. */
export const REDIS_STATE_FILE = 'redis.json';
/** The name the Sentinels know the primary by: the path of a redis-sentinel:// URL. */
export const SENTINEL_MASTER_NAME = 'hop';
const CLUSTER_MASTERS = 3;
const SENTINELS = 3;
/** Sentinels that must agree the primary is down before one of them fails it over. */
const SENTINEL_QUORUM = 2;
/**
 * How long the primary must not answer before a Sentinel deems it down. Short, so a test sees a
 * failover in seconds; not so short that a busy two-core machine fails over for a slow ping.
 */
export const SENTINEL_DOWN_AFTER_MS = 1_500;
/** Bounds one failover attempt (and, doubled, the pause before the same Sentinels try again). */
const SENTINEL_FAILOVER_TIMEOUT_MS = 5_000;
const READY_TIMEOUT_MS = 10_000;
/** How long a cluster may take to agree that it is healthy, after creation or a restart. */
const CLUSTER_OK_TIMEOUT_MS = 30_000;
/** How long Sentinels may take to find the replica and each other (hello messages every 2 s). */
const SENTINEL_OK_TIMEOUT_MS = 30_000;
/**
 * Failure detection. Low enough that a killed node is noticed in a test's time, high enough that a
 * busy two-core machine does not get nodes marked failing for a slow ping.
 */
const CLUSTER_NODE_TIMEOUT_MS = 3_000;
/** How long a stopped server has between SIGTERM and SIGKILL: nothing is persisted, so little. */
const STOP_GRACE_MS = 5_000;

export type RedisMode = 'single' | 'cluster' | 'sentinel';

/**
 * What a server is there for, as `cluster status` reports it beside the PostgreSQL roles: `redis`
 * serves reads and writes on its own (the single server, or a master of a Redis Cluster); under
 * Sentinel, `redis-primary` serves them and `redis-replica` copies it, as the Sentinels say now
 * (after a failover the promoted replica is the primary), and `sentinel` watches them.
 */
export type RedisRole = 'redis' | 'redis-primary' | 'redis-replica' | 'sentinel';

export interface RedisServer {
  /** `redis` for a single server; `redis-0`.. for cluster masters and Sentinel's data servers; `sentinel-0`.. */
  name: string;
  role: RedisRole;
  port: number;
  /** The cluster bus port (cluster mode), else null. */
  busPort: number | null;
  /** Null when not running. */
  pid: number | null;
  /** Its working directory (nodes.conf of a cluster node, sentinel.conf of a Sentinel live here). */
  dir: string;
  logFile: string;
  /** cgroup path when a CPU quota is applied. */
  cgroup: string | null;
}

export interface RedisServers {
  mode: RedisMode;
  dir: string;
  servers: RedisServer[];
  /**
   * HOP_REDIS_URL: redis://127.0.0.1:P, redis-cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3, or
   * redis-sentinel://127.0.0.1:S1,127.0.0.1:S2,127.0.0.1:S3/hop.
   */
  url: string;
  cpuQuota: number | null;
  /** Unique per start: in every server's process title, so their processes can be told from others'. */
  id: string;
  serverBin: string;
  cliBin: string;
  /** redis-sentinel (sentinel mode), else null. */
  sentinelBin?: string | null;
}

export interface StartRedisOptions {
  mode: RedisMode;
  /** State dir; default a new mkdtemp under os.tmpdir(). */
  dir?: string;
  /** Cores per server, as a cgroup v1 CFS quota. */
  cpuQuota?: number | null;
  /**
   * The servers outlive this process (the CLI's `up`). Without it, an exiting process kills the servers
   * it started and did not stop, and removes their directory.
   */
  detached?: boolean;
  /** Progress lines. */
  log?: (line: string) => void;
}

const MODES: readonly RedisMode[] = ['single', 'cluster', 'sentinel'];
const PROGRAMS = ['redis-server', 'redis-sentinel'];

/** Why Redis cannot start here (a program not on PATH), or null: lets a test skip with the reason. */
export function redisUnavailable(mode: RedisMode = 'single'): string | null {
  const wanted = ['redis-server', 'redis-cli', ...(mode === 'sentinel' ? ['redis-sentinel'] : [])];
  const missing = wanted.filter((b) => findProgram(b) === null);
  if (missing.length === 0) return null;
  const packages =
    mode === 'sentinel' ? 'the redis-server and redis-sentinel packages' : 'the redis-server package';
  return `${missing.join(' and ')} not found on PATH: install ${packages} (Redis 7)`;
}

// ---------------------------------------------------------------------------------------------
// Starting

export async function startRedis(opts: StartRedisOptions): Promise<RedisServers> {
  const began = performance.now();
  const userLog = opts.log ?? (() => {});
  const log = (line: string) => userLog(`${((performance.now() - began) / 1000).toFixed(2)} s ${line}`);
  if (!MODES.includes(opts.mode)) {
    throw new ClusterError(`a Redis mode is single, cluster or sentinel, got '${String(opts.mode)}'`);
  }
  const cpuQuota = opts.cpuQuota ?? null;
  if (cpuQuota !== null) {
    if (!Number.isFinite(cpuQuota) || cpuQuota <= 0) {
      throw new ClusterError(`a CPU quota needs cores > 0, got ${cpuQuota}`);
    }
    const why = await cpuQuotaUnavailable();
    if (why !== null) throw new ClusterError(`cannot apply a CPU quota of ${cpuQuota} cores: ${why}`);
  }
  const why = redisUnavailable(opts.mode);
  if (why !== null) throw new ClusterError(why);
  const dir =
    opts.dir === undefined ? await mkdtemp(join(tmpdir(), 'hop-redis-')) : await claimDir(opts.dir, log);
  const r: RedisServers = {
    mode: opts.mode,
    dir,
    servers: [],
    url: '',
    cpuQuota,
    id: randomBytes(4).toString('hex'),
    serverBin: findProgram('redis-server')!,
    cliBin: findProgram('redis-cli')!,
    sentinelBin: opts.mode === 'sentinel' ? findProgram('redis-sentinel')! : null,
  };
  r.servers = await plannedServers(r);
  r.url = urlOf(r);
  if (!opts.detached) stopOnExit(r);
  try {
    // Written before anything starts, so stopRedis (or `down`) can clean up after an interrupted start.
    await saveState(r);
    log(`starting ${shapeText(r)} in ${dir}`);
    if (r.mode === 'sentinel') await startSentinelShape(r, log);
    else {
      await Promise.all(r.servers.map((s) => startFirst(r, s, log)));
      await saveState(r);
    }
    r.url = urlOf(r);
    await saveState(r);
    if (r.mode === 'cluster') {
      await runTool(
        r.cliBin,
        [
          '--cluster',
          'create',
          ...r.servers.map((s) => `127.0.0.1:${s.port}`),
          '--cluster-replicas',
          '0',
          '--cluster-yes',
        ],
        60_000,
      );
      log('cluster created');
      await waitClusterHealthy(r);
      log('cluster_state:ok on every node');
    }
  } catch (err) {
    log(`start failed; stopping what was started in ${dir}`);
    await stopRedis(r).catch((stopErr: unknown) => log(`cleanup failed too: ${errorText(stopErr)}`));
    throw err;
  }
  log(`Redis up: ${r.url}`);
  return r;
}

async function plannedServers(r: RedisServers): Promise<RedisServer[]> {
  const plan: { name: string; role: RedisRole }[] =
    r.mode === 'single'
      ? [{ name: 'redis', role: 'redis' }]
      : r.mode === 'cluster'
        ? Array.from({ length: CLUSTER_MASTERS }, (_, i) => ({ name: `redis-${i}`, role: 'redis' as const }))
        : [
            { name: 'redis-0', role: 'redis-primary' },
            { name: 'redis-1', role: 'redis-replica' },
            ...Array.from({ length: SENTINELS }, (_, i) => ({
              name: `sentinel-${i}`,
              role: 'sentinel' as const,
            })),
          ];
  const cluster = r.mode === 'cluster';
  const ports = await freePorts(plan.length * (cluster ? 2 : 1));
  return plan.map(({ name, role }) => ({
    name,
    role,
    port: ports.pop()!,
    busPort: cluster ? ports.pop()! : null,
    pid: null,
    dir: join(r.dir, name),
    logFile: join(r.dir, name, role === 'sentinel' ? 'sentinel.log' : 'redis.log'),
    cgroup: null,
  }));
}

function shapeText(r: RedisServers): string {
  if (r.mode === 'single') return 'one Redis server';
  if (r.mode === 'cluster') return `a Redis Cluster of ${CLUSTER_MASTERS} masters`;
  return `a Redis primary and replica watched by ${SENTINELS} Sentinels`;
}

async function startFirst(r: RedisServers, s: RedisServer, log: (line: string) => void): Promise<void> {
  await mkdir(s.dir);
  await launch(r, s, true);
  log(`${s.name} up on port ${s.port} (pid ${s.pid})`);
}

/**
 * The primary, then its replica (once it has copied the primary), then the Sentinels, until every
 * Sentinel knows the primary, the replica and the other Sentinels: only then can a failover happen.
 */
async function startSentinelShape(r: RedisServers, log: (line: string) => void): Promise<void> {
  const [primary, replica] = dataServers(r) as [RedisServer, RedisServer];
  await startFirst(r, primary, log);
  await saveState(r);
  await startFirst(r, replica, log);
  await saveState(r);
  await waitReplicaLinked(replica);
  log(`${replica.name} replicates ${primary.name}`);
  await Promise.all(sentinels(r).map((s) => startFirst(r, s, log)));
  await saveState(r);
  await waitSentinelsAgree(r, primary);
  log(`${SENTINELS} Sentinels watch ${primary.name} (quorum ${SENTINEL_QUORUM}) and know its replica`);
}

/** What runs a server: its program and arguments. */
async function commandLine(r: RedisServers, s: RedisServer): Promise<{ command: string; args: string[] }> {
  if (s.role === 'sentinel') {
    // A Sentinel keeps what it learns (replicas, peers, the current primary) in its config file.
    return { command: r.sentinelBin!, args: [join(s.dir, 'sentinel.conf')] };
  }
  const args = [
    ...['--port', String(s.port), '--bind', '127.0.0.1', '--dir', s.dir, '--logfile', s.logFile],
    ...['--save', '', '--appendonly', 'no', '--daemonize', 'no'],
    // The title names this start, so a stale pid or a stranger's redis-server is never mistaken for ours.
    ...['--proc-title-template', `{title} {listen-addr} {server-mode} ${titleTag(r)}`],
  ];
  if (s.busPort !== null) {
    args.push(
      ...['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf'],
      // Set explicitly: the default (port + 10000) overflows for ports above 55535.
      ...['--cluster-port', String(s.busPort), '--cluster-node-timeout', String(CLUSTER_NODE_TIMEOUT_MS)],
      // A dead master takes only its own slots down: callers fall back for those keys alone.
      ...['--cluster-require-full-coverage', 'no'],
    );
  }
  if (r.mode === 'sentinel') {
    // A replica (first or restarted) copies the primary at once, without waiting for more replicas.
    args.push('--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '0');
    const primary = await currentPrimaryPort(r);
    if (primary !== null && primary !== s.port) args.push('--replicaof', '127.0.0.1', String(primary));
  }
  return { command: r.serverBin, args };
}

async function writeSentinelConf(r: RedisServers, s: RedisServer): Promise<void> {
  const primary = dataServers(r).find((x) => x.role === 'redis-primary')!;
  const name = SENTINEL_MASTER_NAME;
  const lines = [
    `port ${s.port}`,
    'bind 127.0.0.1',
    `dir ${quoted(s.dir)}`,
    `logfile ${quoted(s.logFile)}`,
    'daemonize no',
    `proc-title-template ${quoted(`{title} {listen-addr} {server-mode} ${titleTag(r)}`)}`,
    `sentinel monitor ${name} 127.0.0.1 ${primary.port} ${SENTINEL_QUORUM}`,
    `sentinel down-after-milliseconds ${name} ${SENTINEL_DOWN_AFTER_MS}`,
    `sentinel failover-timeout ${name} ${SENTINEL_FAILOVER_TIMEOUT_MS}`,
    `sentinel parallel-syncs ${name} 1`,
  ];
  await writeFile(join(s.dir, 'sentinel.conf'), `${lines.join('\n')}\n`);
}

/**
 * Starts the server through the supervisor and waits until it answers as itself. A port picked free
 * can be taken before the server binds it; on its first start the server gets other ports instead.
 */
async function launch(r: RedisServers, s: RedisServer, firstStart: boolean): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    if (s.role === 'sentinel' && firstStart) await writeSentinelConf(r, s);
    const { command: bin, args } = await commandLine(r, s);
    const logFrom = await fileSize(s.logFile);
    const spec: ServerSpec = {
      name: s.name,
      command: bin,
      args,
      cwd: '/',
      logFile: s.logFile,
      ready: (pid) => answersAs(s.port, pid),
      readyTimeoutMs: READY_TIMEOUT_MS,
      readyPollMs: 20,
      cpuQuota: r.cpuQuota,
    };
    try {
      const running = await startServer(spec, titleTag(r));
      s.pid = running.pid;
      s.cgroup = running.cgroup;
      return;
    } catch (err) {
      const fresh = (await readFile(s.logFile).catch(() => Buffer.alloc(0))).subarray(logFrom).toString();
      if (firstStart && attempt < 3 && /Address already in use/.test(fresh)) {
        const [port, busPort] = await freePorts(2);
        s.port = port!;
        if (s.busPort !== null) s.busPort = busPort!;
        continue;
      }
      throw new ClusterError(`${shownCommand(bin, args)} failed: ${errorText(err)}`);
    }
  }
}

/** INFO server names this process: the server on the port is ours, not a stranger that took it. */
async function answersAs(port: number, pid: number): Promise<boolean> {
  return (await command(port, ['INFO', 'server'], 1_000)).includes(`\nprocess_id:${pid}\r`);
}

/**
 * Until every running node says cluster_state:ok and none marks a running node as failing: after a
 * restart a master turns writable only some seconds later, and its peers take a while to trust it.
 */
async function waitClusterHealthy(r: RedisServers): Promise<void> {
  const deadline = Date.now() + CLUSTER_OK_TIMEOUT_MS;
  const live = r.servers.filter((s) => s.pid !== null);
  let last = '';
  for (;;) {
    const problems: string[] = [];
    for (const s of live) {
      try {
        const state = /cluster_state:(\w+)/.exec(await command(s.port, ['CLUSTER', 'INFO'], 1_000))?.[1];
        if (state !== 'ok') problems.push(`${s.name}: cluster_state:${state ?? '?'}`);
        for (const line of (await command(s.port, ['CLUSTER', 'NODES'], 1_000)).split('\n')) {
          const [, addr = '', flags = ''] = line.split(' ');
          const port = Number(/:(\d+)@/.exec(addr)?.[1]);
          const peer = live.find((p) => p.port === port);
          if (peer !== undefined && /(^|,)fail\??(,|$)/.test(flags)) {
            problems.push(`${s.name} sees ${peer.name} as ${flags}`);
          }
        }
      } catch (err) {
        problems.push(`${s.name}: CLUSTER INFO failed: ${errorText(err)}`);
      }
    }
    if (problems.length === 0) return;
    last = problems.join('; ');
    if (Date.now() > deadline) {
      throw new ClusterError(
        `the Redis Cluster is not healthy after ${CLUSTER_OK_TIMEOUT_MS / 1000} s: ${last}`,
      );
    }
    await sleep(50);
  }
}

/** Until the replica's link to its primary is up (the first copy done). */
async function waitReplicaLinked(s: RedisServer): Promise<void> {
  const deadline = Date.now() + SENTINEL_OK_TIMEOUT_MS;
  let last = '';
  for (;;) {
    try {
      const info = await command(s.port, ['INFO', 'replication'], 1_000);
      if (infoField(info, 'master_link_status') === 'up') return;
      last = `role:${infoField(info, 'role') ?? '?'} master_link_status:${infoField(info, 'master_link_status') ?? '-'}`;
    } catch (err) {
      last = errorText(err);
    }
    if (Date.now() > deadline) {
      throw new ClusterError(
        `${s.name} is not replicating after ${SENTINEL_OK_TIMEOUT_MS / 1000} s (${last})`,
      );
    }
    await sleep(50);
  }
}

/** Until every running Sentinel sees `primary` up, with every other data server as its replica and every other Sentinel. */
async function waitSentinelsAgree(r: RedisServers, primary: RedisServer): Promise<void> {
  const deadline = Date.now() + SENTINEL_OK_TIMEOUT_MS;
  const want = `status=ok,address=127.0.0.1:${primary.port},slaves=${dataServers(r).length - 1},sentinels=${sentinels(r).length}`;
  let last = '';
  for (;;) {
    const views = await Promise.all(
      sentinels(r)
        .filter((s) => s.pid !== null)
        .map(
          async (s) =>
            `${s.name}: ${(await sentinelView(s).catch((err: unknown) => errorText(err))) ?? 'no master'}`,
        ),
    );
    const off = views.filter((v) => !v.endsWith(want));
    if (off.length === 0) return;
    last = off.join('; ');
    if (Date.now() > deadline) {
      throw new ClusterError(
        `the Sentinels do not agree after ${SENTINEL_OK_TIMEOUT_MS / 1000} s (want ${want}): ${last}`,
      );
    }
    await sleep(100);
  }
}

/** A Sentinel's line on the primary: `status=…,address=…,slaves=N,sentinels=N`, or null when it watches none. */
async function sentinelView(s: RedisServer): Promise<string | null> {
  const info = await command(s.port, ['INFO', 'sentinel'], 1_000);
  const line = new RegExp(`^master\\d+:name=${SENTINEL_MASTER_NAME},(.*)$`, 'm').exec(info)?.[1];
  return line?.trim() ?? null;
}

// ---------------------------------------------------------------------------------------------
// Inspecting

/** Reads <dir>/redis.json and refreshes every pid (null for a server not running) and, under Sentinel, every role. */
export async function loadRedis(dir: string): Promise<RedisServers> {
  const file = join(resolve(dir), REDIS_STATE_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new ClusterError(`no Redis in ${dir} (no ${file})`);
    throw err;
  }
  let r: RedisServers;
  try {
    r = JSON.parse(text) as RedisServers;
  } catch (err) {
    throw new ClusterError(`${file} does not describe Redis servers: ${errorText(err)}`);
  }
  // State written before servers had a role: every server then was a `redis` one.
  for (const s of r.servers) s.role ??= 'redis';
  await refreshRedisRoles(r);
  return r;
}

/**
 * Refreshes pids and, under Sentinel, the data servers' roles as the Sentinels see them now (after a
 * failover the promoted replica is `redis-primary`); with no Sentinel answering, as each live server
 * says of itself.
 */
export async function refreshRedisRoles(r: RedisServers): Promise<void> {
  refreshPids(r);
  if (r.mode !== 'sentinel') return;
  const primary = await currentPrimaryPort(r);
  for (const s of dataServers(r)) {
    if (primary !== null) {
      s.role = s.port === primary ? 'redis-primary' : 'redis-replica';
    } else if (s.pid !== null) {
      const role = await command(s.port, ['INFO', 'replication'], 1_000)
        .then((info) => infoField(info, 'role'))
        .catch(() => null);
      if (role === 'master') s.role = 'redis-primary';
      else if (role === 'slave') s.role = 'redis-replica';
    }
  }
}

/**
 * The port of the primary as most running Sentinels name it; without Sentinels (or none answering),
 * the one running data server that says it is a master; null when that cannot be told.
 */
async function currentPrimaryPort(r: RedisServers): Promise<number | null> {
  if (r.mode !== 'sentinel') return null;
  const named = await Promise.all(
    sentinels(r)
      .filter((s) => s.pid !== null)
      .map(async (s) => {
        const view = await sentinelView(s).catch(() => null);
        const port = /address=[^,]*:(\d+)/.exec(view ?? '')?.[1];
        return port === undefined ? null : Number(port);
      }),
  );
  const votes = new Map<number, number>();
  for (const port of named) if (port !== null) votes.set(port, (votes.get(port) ?? 0) + 1);
  const best = [...votes].sort((a, b) => b[1] - a[1])[0];
  if (best !== undefined) return best[0];
  const masters: number[] = [];
  for (const s of dataServers(r).filter((x) => x.pid !== null)) {
    const info = await command(s.port, ['INFO', 'replication'], 1_000).catch(() => '');
    if (infoField(info, 'role') === 'master') masters.push(s.port);
  }
  return masters.length === 1 ? masters[0]! : null;
}

/** The server taking writes now: the single server, or under Sentinel the current primary. */
export async function redisPrimary(r: RedisServers): Promise<RedisServer> {
  if (r.mode === 'cluster') throw new ClusterError('a Redis Cluster has a primary per slot range, not one');
  await refreshRedisRoles(r);
  const s = r.servers.find((x) => x.role === 'redis-primary' || x.role === 'redis');
  if (s === undefined)
    throw new ClusterError(`no Redis primary among ${r.servers.map((x) => x.name).join(', ')}`);
  return s;
}

/**
 * After the primary `from` died: waits until every running Sentinel names another data server as
 * the primary and that server says it is one (the failover done), and returns it. Roles are updated.
 */
export async function waitRedisFailover(
  r: RedisServers,
  from: string,
  timeoutMs = 30_000,
): Promise<RedisServer> {
  if (r.mode !== 'sentinel') throw new ClusterError(`only Sentinel fails Redis over, not ${r.mode} mode`);
  const old = serverNamed(r, from);
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    refreshPids(r);
    const views = await Promise.all(
      sentinels(r)
        .filter((s) => s.pid !== null)
        .map((s) => sentinelView(s).catch(() => null)),
    );
    const ports = new Set(views.map((v) => Number(/address=[^,]*:(\d+)/.exec(v ?? '')?.[1] ?? Number.NaN)));
    const [port] = ports;
    const next = dataServers(r).find((s) => s.port === port && s.pid !== null);
    if (ports.size === 1 && port !== old.port && next !== undefined) {
      const info = await command(next.port, ['INFO', 'replication'], 1_000).catch(() => '');
      if (infoField(info, 'role') === 'master') {
        await refreshRedisRoles(r);
        await saveState(r);
        return next;
      }
      last = `${next.name} is named but says role:${infoField(info, 'role') ?? '?'}`;
    } else {
      last = `the Sentinels name ${[...ports].map((p) => (Number.isNaN(p) ? 'nothing' : `port ${p}`)).join(' and ')}`;
    }
    if (Date.now() > deadline) {
      throw new ClusterError(`no failover from ${from} within ${timeoutMs / 1000} s: ${last}`);
    }
    await sleep(50);
  }
}

/** For src/config's RedisTarget, as HOP_REDIS_URL would give it. */
export function redisTarget(r: RedisServers): RedisTarget {
  if (r.mode === 'single') return { kind: 'single', url: r.url };
  if (r.mode === 'sentinel') {
    return {
      kind: 'sentinel',
      sentinels: sentinels(r).map((s) => ({ host: '127.0.0.1', port: s.port })),
      name: SENTINEL_MASTER_NAME,
      password: null,
    };
  }
  return {
    kind: 'cluster',
    nodes: r.servers.map((s) => ({ host: '127.0.0.1', port: s.port })),
    password: null,
  };
}

/** Lines for a dotenv file: a comment per server and HOP_REDIS_URL. */
export function redisEnvText(r: RedisServers): string {
  const lines = r.servers.map(
    (s) =>
      `# ${s.name.padEnd(18)} ${s.role.padEnd(13)} 127.0.0.1:${s.port} pid ${s.pid ?? '-'} log ${s.logFile}`,
  );
  lines.push(`HOP_REDIS_URL="${r.url}"`);
  return `${lines.join('\n')}\n`;
}

/** Live redis-server and redis-sentinel processes of these servers, found through /proc by the tag in their title. */
export function redisPids(r: RedisServers): number[] {
  const pids: number[] = [];
  const tag = titleTag(r);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    try {
      if (!PROGRAMS.includes(readFileSync(`/proc/${pid}/comm`, 'utf8').trim())) continue;
      // The title, or before it is set the command line (a server's template argument holds the tag
      // too; a Sentinel's config path holds the state dir, under which nothing else runs).
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if ((cmdline.includes(tag) || cmdline.includes(`${r.dir}/`)) && isAlive(pid)) pids.push(pid);
    } catch {
      // Exited while we looked.
    }
  }
  return pids;
}

// ---------------------------------------------------------------------------------------------
// Stopping, killing, restarting

/**
 * Stops every server (SIGTERM, then SIGKILL), removes the cgroups and, unless `keepDir`, the directory.
 * Safe to call twice.
 */
export async function stopRedis(r: RedisServers, opts: { keepDir?: boolean } = {}): Promise<void> {
  refreshPids(r);
  const failures: string[] = [];
  // Sentinels first: none of them fails over a primary that is only being stopped.
  for (const group of [sentinels(r), r.servers.filter((s) => s.role !== 'sentinel')]) {
    await Promise.all(
      group.map((s) =>
        stopOne(s, 'SIGTERM').catch((err: unknown) => failures.push(`${s.name}: ${errorText(err)}`)),
      ),
    );
  }
  const leftovers = redisPids(r);
  for (const pid of leftovers) signal(pid, 'SIGKILL');
  await waitGone(leftovers, 5_000);
  attached.delete(r.dir);
  if (opts.keepDir) await saveState(r);
  else await rm(r.dir, { recursive: true, force: true });
  if (failures.length > 0) throw new ClusterError(failures.join('; '));
}

/** Through the supervisor: the signal, SIGKILL after the grace, the cgroup removed. */
async function stopOne(s: RedisServer, sig: NodeJS.Signals): Promise<void> {
  if (s.pid !== null) {
    await stopServer(
      { name: s.name, pid: s.pid, logFile: s.logFile, cgroup: s.cgroup },
      { signal: sig, graceMs: STOP_GRACE_MS },
    );
    if (isAlive(s.pid)) throw new ClusterError(`${s.name} (pid ${s.pid}) survived SIGKILL`);
  } else if (s.cgroup !== null) {
    await removeCgroupDir(s.cgroup, dirname(s.cgroup));
  }
  s.pid = null;
  s.cgroup = null;
}

/**
 * SIGKILL to one server; returns once it is gone. A cluster node keeps its nodes.conf, to rejoin on
 * restart; a Sentinel its sentinel.conf. Under Sentinel, killing the primary starts a failover:
 * `waitRedisFailover` waits for it.
 */
export async function killRedisServer(r: RedisServers, name: string): Promise<void> {
  const s = serverNamed(r, name);
  refreshPids(r);
  await stopOne(s, 'SIGKILL');
  await saveState(r);
}

/**
 * Starts a stopped or killed server again on its port (empty: nothing is persisted). A cluster node
 * rejoins with its old identity and slots from nodes.conf; once every node runs again, returns when
 * the cluster is healthy (with others still down it cannot be: restarting them one by one, the last
 * restart waits). Under Sentinel a data server comes back as a replica of the current primary and
 * returns once it has copied it; a Sentinel comes back with what it knew. (A primary restarted before
 * the Sentinels failed it over comes back empty, and its replica copies that: without persistence
 * a dead primary must stay down until the failover.)
 */
export async function startRedisServer(r: RedisServers, name: string): Promise<void> {
  const s = serverNamed(r, name);
  refreshPids(r);
  if (s.pid === null) await launch(r, s, false);
  await saveState(r);
  if (r.mode === 'cluster' && r.servers.every((x) => x.pid !== null)) await waitClusterHealthy(r);
  if (r.mode === 'sentinel' && s.role !== 'sentinel') {
    const primary = await currentPrimaryPort(r);
    if (primary !== null && primary !== s.port) await waitReplicaLinked(s);
    await refreshRedisRoles(r);
    await saveState(r);
  }
}

// ---------------------------------------------------------------------------------------------
// Exit hook for servers a process started and did not stop

const attached = new Map<string, RedisServers>();
let exitHookInstalled = false;

function stopOnExit(r: RedisServers): void {
  attached.set(r.dir, r);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const servers of attached.values()) stopRedisSync(servers);
  });
}

/** Best effort where nothing asynchronous runs: SIGKILL (the data is throwaway), a short wait, remove cgroups and the dir. */
function stopRedisSync(r: RedisServers): void {
  const pids = redisPids(r);
  for (const pid of pids) signal(pid, 'SIGKILL');
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + 2_000;
  while (pids.some(isAlive) && Date.now() < deadline) Atomics.wait(pause, 0, 0, 10);
  for (const s of r.servers) if (s.cgroup !== null) removeCgroupDirSync(s.cgroup, dirname(s.cgroup));
  rmSync(r.dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// Files and directories

/** An explicit dir: refused while live servers are in it, cleaned when dead ones are, created when absent. */
async function claimDir(path: string, log: (line: string) => void): Promise<string> {
  const dir = resolve(path);
  const entries = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (entries?.includes(REDIS_STATE_FILE)) {
    const old = await loadRedis(dir);
    const alive = old.servers.filter((s) => s.pid !== null);
    if (alive.length > 0) {
      throw new ClusterError(
        `Redis is already running in ${dir} (${alive.length} of ${old.servers.length} servers alive): stop it first`,
      );
    }
    log(`removing stopped Redis servers left in ${dir}`);
    await stopRedis(old);
  } else if (entries !== null && entries.length > 0) {
    throw new ClusterError(
      `${dir} exists and holds no Hop Redis servers (no ${REDIS_STATE_FILE}): choose another dir`,
    );
  }
  await mkdir(dir, { recursive: true });
  return dir;
}

async function saveState(r: RedisServers): Promise<void> {
  const file = join(r.dir, REDIS_STATE_FILE);
  // Through a rename, so a reader in another process never sees half a file.
  await writeFile(`${file}.tmp`, `${JSON.stringify(r, null, 2)}\n`);
  await rename(`${file}.tmp`, file);
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

// ---------------------------------------------------------------------------------------------
// Talking to the servers

/** Runs redis-cli (or another tool) with a bounded time; a failure names the command and carries its output. */
async function runTool(bin: string, args: string[], timeoutMs: number): Promise<string> {
  const shown = shownCommand(bin, args);
  const result = await new Promise<{ code: string; out: string }>((resolveRun) => {
    // Its own process group, so a timeout kills it whole.
    const child = spawn(bin, args, { cwd: '/', stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const timer = setTimeout(() => {
      out += `\n(killed after ${timeoutMs / 1000} s)`;
      if (child.pid !== undefined) signal(-child.pid, 'SIGKILL');
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolveRun({ code: 'error', out: `${out}${errorText(err)}` });
    });
    child.once('close', (code, sig) => {
      clearTimeout(timer);
      resolveRun({ code: sig ?? String(code), out });
    });
  });
  if (result.code === '0') return result.out;
  const tail = result.out.trim().split('\n').slice(-20).join('\n');
  throw new ClusterError(
    `${shown} failed (${result.code === 'error' ? 'could not run it' : `exit ${result.code}`})` +
      (tail === '' ? '' : `:\n${tail}`),
  );
}

/**
 * One command on a fresh connection, bounded in time; the reply as text (a status, an integer or a bulk
 * string: all this file asks for). An error reply throws, naming the command.
 */
function command(port: number, args: string[], timeoutMs: number): Promise<string> {
  const shown = `${args.join(' ')} on 127.0.0.1:${port}`;
  return new Promise((resolveCommand, reject) => {
    let settled = false;
    let buf = Buffer.alloc(0);
    const socket = connect({ host: '127.0.0.1', port });
    const finish = (err: Error | null, value = '') => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err === null) resolveCommand(value);
      else reject(new Error(`${shown}: ${err.message}`));
    };
    const timer = setTimeout(() => finish(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    socket.once('error', (err) => finish(err));
    socket.once('close', () => finish(new Error('connection closed before the reply')));
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const reply = parseReply(buf);
      if (reply instanceof Error) finish(reply);
      else if (reply !== undefined) finish(null, reply);
    });
    socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
  });
}

/** A complete reply, an Error for an error reply, or undefined while more bytes are due. */
function parseReply(buf: Buffer): string | Error | undefined {
  const eol = buf.indexOf('\r\n');
  if (eol < 0) return undefined;
  const line = buf.subarray(1, eol).toString();
  switch (String.fromCharCode(buf[0]!)) {
    case '+':
    case ':':
      return line;
    case '-':
      return new Error(line);
    case '$': {
      const length = Number(line);
      if (length < 0) return '';
      if (buf.length < eol + 2 + length + 2) return undefined;
      return buf.subarray(eol + 2, eol + 2 + length).toString();
    }
    default:
      return new Error(`unexpected reply ${JSON.stringify(buf.subarray(0, eol).toString())}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Processes

function titleTag(r: RedisServers): string {
  return `hop-redis-${r.id}`;
}

/** Keeps a pid only while it is this server: a live redis-server or redis-sentinel whose title has our tag and its port. */
function refreshPids(r: RedisServers): void {
  for (const s of r.servers) {
    if (s.pid === null) continue;
    try {
      const title = readFileSync(`/proc/${s.pid}/cmdline`, 'utf8');
      const ours =
        PROGRAMS.includes(readFileSync(`/proc/${s.pid}/comm`, 'utf8').trim()) &&
        title.includes(titleTag(r)) &&
        title.includes(`:${s.port} `);
      if (!ours || !isAlive(s.pid)) s.pid = null;
    } catch {
      s.pid = null;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Small helpers

async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  // Each probe closes before the next opens, so the kernel may hand the same port out twice.
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

function urlOf(r: RedisServers): string {
  const list = (servers: RedisServer[]) => servers.map((s) => `127.0.0.1:${s.port}`).join(',');
  if (r.mode === 'single') return `redis://127.0.0.1:${r.servers[0]!.port}`;
  if (r.mode === 'cluster') return `redis-cluster://${list(r.servers)}`;
  return `redis-sentinel://${list(sentinels(r))}/${SENTINEL_MASTER_NAME}`;
}

function dataServers(r: RedisServers): RedisServer[] {
  return r.servers.filter((s) => s.role !== 'sentinel');
}

function sentinels(r: RedisServers): RedisServer[] {
  return r.servers.filter((s) => s.role === 'sentinel');
}

/** One `field:value` line of an INFO reply. */
function infoField(info: string, field: string): string | undefined {
  return new RegExp(`^${field}:(.*)$`, 'm').exec(info)?.[1]?.trim();
}

function serverNamed(r: RedisServers, name: string): RedisServer {
  const s = r.servers.find((x) => x.name === name);
  if (s === undefined) {
    throw new ClusterError(`no Redis server ${name} (${r.servers.map((x) => x.name).join(', ')})`);
  }
  return s;
}

/** A config file value in double quotes (Redis reads \\ and \" escapes in them). */
function quoted(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

function shownCommand(bin: string, args: string[]): string {
  return [bin, ...args].map((a) => (a === '' || /\s/.test(a) ? `'${a}'` : a)).join(' ');
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
