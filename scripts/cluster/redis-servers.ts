// Throwaway Redis on free 127.0.0.1 ports from the machine's redis-server: one server, or a Redis Cluster
// of three masters. No persistence. For integration tests, benchmarks and `npm run cluster -- up --redis`.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, closeSync, constants, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { RedisTarget } from '../../src/config.ts';
import { CpuCgroup, cpuQuotaUnavailable } from '../lib/cpu-cgroup.ts';
import { freePort } from '../lib/free-port.ts';
import { isAlive, signal, waitGone } from '../lib/processes.ts';
import { ClusterError } from './pg-cluster.ts';

/** In the state dir: what `loadRedis` reads. */
export const REDIS_STATE_FILE = 'redis.json';
const CLUSTER_MASTERS = 3;
const READY_TIMEOUT_MS = 10_000;
/** How long a cluster may take to agree that it is healthy, after creation or a restart. */
const CLUSTER_OK_TIMEOUT_MS = 30_000;
/**
 * Failure detection. Low enough that a killed node is noticed in a test's time, high enough that a
 * busy two-core machine does not get nodes marked failing for a slow ping.
 */
const CLUSTER_NODE_TIMEOUT_MS = 3_000;

export type RedisMode = 'single' | 'cluster';

/**
 * What a server is there for, as `cluster status` reports it beside the PostgreSQL roles: `redis`
 * serves reads and writes (the single server, or a master of a Redis Cluster). Replicas and sentinels
 * will add `redis-replica` and `sentinel`.
 */
export type RedisRole = 'redis';

export interface RedisServer {
  /** `redis` for a single server, `redis-0`.. for cluster masters. */
  name: string;
  role: RedisRole;
  port: number;
  /** The cluster bus port (cluster mode), else null. */
  busPort: number | null;
  /** Null when not running. */
  pid: number | null;
  /** Its working directory (nodes.conf of a cluster node lives here). */
  dir: string;
  logFile: string;
  /** cgroup path when a CPU quota is applied. */
  cgroup: string | null;
}

export interface RedisServers {
  mode: RedisMode;
  dir: string;
  servers: RedisServer[];
  /** HOP_REDIS_URL: redis://127.0.0.1:P, or redis-cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3. */
  url: string;
  cpuQuota: number | null;
  /** Unique per start: in every server's process title, so their processes can be told from others'. */
  id: string;
  serverBin: string;
  cliBin: string;
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

/** Why Redis cannot start here (redis-server or redis-cli not on PATH), or null: lets a test skip with the reason. */
export function redisUnavailable(): string | null {
  const missing = ['redis-server', 'redis-cli'].filter((b) => findBinary(b) === null);
  if (missing.length === 0) return null;
  return `${missing.join(' and ')} not found on PATH: install the redis-server package (Redis 7)`;
}

// ---------------------------------------------------------------------------------------------
// Starting

export async function startRedis(opts: StartRedisOptions): Promise<RedisServers> {
  const began = performance.now();
  const userLog = opts.log ?? (() => {});
  const log = (line: string) => userLog(`${((performance.now() - began) / 1000).toFixed(2)} s ${line}`);
  if (opts.mode !== 'single' && opts.mode !== 'cluster') {
    throw new ClusterError(`a Redis mode is single or cluster, got '${String(opts.mode)}'`);
  }
  const cpuQuota = opts.cpuQuota ?? null;
  if (cpuQuota !== null) {
    if (!Number.isFinite(cpuQuota) || cpuQuota <= 0) {
      throw new ClusterError(`a CPU quota needs cores > 0, got ${cpuQuota}`);
    }
    const why = await cpuQuotaUnavailable();
    if (why !== null) throw new ClusterError(`cannot apply a CPU quota of ${cpuQuota} cores: ${why}`);
  }
  const why = redisUnavailable();
  if (why !== null) throw new ClusterError(why);
  const dir =
    opts.dir === undefined ? await mkdtemp(join(tmpdir(), 'hop-redis-')) : await claimDir(opts.dir, log);
  const cluster = opts.mode === 'cluster';
  const names = cluster ? Array.from({ length: CLUSTER_MASTERS }, (_, i) => `redis-${i}`) : ['redis'];
  const ports = await freePorts(names.length * (cluster ? 2 : 1));
  const r: RedisServers = {
    mode: opts.mode,
    dir,
    servers: names.map((name) => ({
      name,
      role: 'redis' as const,
      port: ports.pop()!,
      busPort: cluster ? ports.pop()! : null,
      pid: null,
      dir: join(dir, name),
      logFile: join(dir, name, 'redis.log'),
      cgroup: null,
    })),
    url: '',
    cpuQuota,
    id: randomBytes(4).toString('hex'),
    serverBin: findBinary('redis-server')!,
    cliBin: findBinary('redis-cli')!,
  };
  r.url = urlOf(r);
  if (!opts.detached) stopOnExit(r);
  try {
    // Written before anything starts, so stopRedis (or `down`) can clean up after an interrupted start.
    await saveState(r);
    log(`starting ${cluster ? `a Redis Cluster of ${names.length} masters` : 'one Redis server'} in ${dir}`);
    await Promise.all(
      r.servers.map(async (s) => {
        await mkdir(s.dir);
        await launch(r, s, true);
        log(`${s.name} up on port ${s.port} (pid ${s.pid})`);
      }),
    );
    r.url = urlOf(r);
    await saveState(r);
    if (cluster) {
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
    if (opts.detached) {
      for (const s of r.servers) if (s.cgroup !== null) groups.get(s.cgroup)?.persist();
    }
  } catch (err) {
    log(`start failed; stopping what was started in ${dir}`);
    await stopRedis(r).catch((stopErr: unknown) => log(`cleanup failed too: ${errorText(stopErr)}`));
    throw err;
  }
  log(`Redis up: ${r.url}`);
  return r;
}

function serverArgs(r: RedisServers, s: RedisServer): string[] {
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
  return args;
}

/**
 * Spawns redis-server and waits until it answers as itself. A port picked free can be taken before the
 * server binds it; with `retryPort` the server gets other ports instead of failing.
 */
async function launch(r: RedisServers, s: RedisServer, retryPort: boolean): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const args = serverArgs(r, s);
    const logFrom = await fileSize(s.logFile);
    const child = await spawnServer(r.serverBin, args, s.logFile);
    const pid = child.pid;
    try {
      if (pid === undefined) throw new Error(child.exited() ?? 'no pid');
      await waitAnswering(s, pid, child.exited);
      s.pid = pid;
      break;
    } catch (err) {
      if (pid !== undefined) {
        signal(pid, 'SIGKILL');
        await waitGone([pid], 2_000);
      }
      const fresh = (await readFile(s.logFile).catch(() => Buffer.alloc(0))).subarray(logFrom).toString();
      if (retryPort && attempt < 3 && /Address already in use/.test(fresh)) {
        const [port, busPort] = await freePorts(2);
        s.port = port!;
        if (s.busPort !== null) s.busPort = busPort!;
        continue;
      }
      const tail = fresh.trimEnd().split('\n').slice(-15).join('\n');
      throw new ClusterError(
        `${shownCommand(r.serverBin, args)} failed: ${errorText(err)}` +
          (tail === '' ? '' : `\n--- last lines of ${s.logFile}\n${tail}`),
      );
    }
  }
  await confine(r, s, s.pid);
}

interface SpawnedServer {
  pid: number | undefined;
  /** Why it has exited, or null while it runs. */
  exited: () => string | null;
}

async function spawnServer(bin: string, args: string[], logFile: string): Promise<SpawnedServer> {
  // Its early complaints (before it opens its log file) land in the log file too.
  const fd = openSync(logFile, 'a');
  let exited: string | null = null;
  try {
    // Its own process group, detached and unreferenced: it may outlive this process (the CLI's `up`).
    const child = spawn(bin, args, { cwd: '/', stdio: ['ignore', fd, fd], detached: true });
    child.once('exit', (code, sig) => {
      exited = sig === null ? `exited with code ${code}` : `killed by ${sig}`;
    });
    child.once('error', (err) => {
      exited = `could not run it: ${errorText(err)}`;
    });
    child.unref();
    // A spawn failure ('error') is reported on the next tick.
    await new Promise((r) => setImmediate(r));
    return { pid: exited === null ? child.pid : undefined, exited: () => exited };
  } finally {
    closeSync(fd);
  }
}

/** Polls INFO server until the server on the port is this process (not a stranger that took the port). */
async function waitAnswering(s: RedisServer, pid: number, exited: () => string | null): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = 'no answer yet';
  for (;;) {
    const why = exited();
    if (why !== null) throw new Error(`it ${why} before answering`);
    try {
      const info = await command(s.port, ['INFO', 'server'], 1_000);
      if (info.includes(`\nprocess_id:${pid}\r`)) return;
      last = `port ${s.port} is answered by another server`;
    } catch (err) {
      last = errorText(err);
    }
    if (Date.now() > deadline) throw new Error(`not answering after ${READY_TIMEOUT_MS / 1000} s (${last})`);
    await sleep(20);
  }
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

// ---------------------------------------------------------------------------------------------
// Inspecting

/** Reads <dir>/redis.json and refreshes every pid (null for a server not running). */
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
  refreshPids(r);
  return r;
}

/** For src/config's RedisTarget, as HOP_REDIS_URL would give it. */
export function redisTarget(r: RedisServers): RedisTarget {
  if (r.mode === 'single') return { kind: 'single', url: r.url };
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
      `# ${s.name.padEnd(18)} ${s.role.padEnd(7)} 127.0.0.1:${s.port} pid ${s.pid ?? '-'} log ${s.logFile}`,
  );
  lines.push(`HOP_REDIS_URL="${r.url}"`);
  return `${lines.join('\n')}\n`;
}

/** Live redis-server processes of these servers, found through /proc by the tag in their title. */
export function redisPids(r: RedisServers): number[] {
  const pids: number[] = [];
  const tag = titleTag(r);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'redis-server') continue;
      // The title, or before it is set the command line, whose template argument holds the tag too.
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(tag) && isAlive(pid)) pids.push(pid);
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
  await Promise.all(r.servers.map((s) => stopServer(s)));
  const leftovers = redisPids(r);
  for (const pid of leftovers) signal(pid, 'SIGKILL');
  await waitGone(leftovers, 5_000);
  const failures: string[] = [];
  for (const s of r.servers) {
    if (s.cgroup === null) continue;
    try {
      await removeCgroup(s.cgroup);
      s.cgroup = null;
    } catch (err) {
      failures.push(`could not remove cgroup ${s.cgroup}: ${errorText(err)}`);
    }
  }
  attached.delete(r.dir);
  if (opts.keepDir) await saveState(r);
  else await rm(r.dir, { recursive: true, force: true });
  if (failures.length > 0) throw new ClusterError(failures.join('; '));
}

async function stopServer(s: RedisServer): Promise<void> {
  const pid = s.pid;
  if (pid === null) return;
  // Nothing is persisted, so SIGTERM costs only the shutdown itself; a server that hangs gets SIGKILL.
  signal(pid, 'SIGTERM');
  if (!(await waitGone([pid], 5_000))) {
    signal(pid, 'SIGKILL');
    if (!(await waitGone([pid], 5_000))) {
      throw new ClusterError(`${s.name} (pid ${pid}) survived SIGKILL for 5 s`);
    }
  }
  s.pid = null;
}

/** SIGKILL to one server; returns once it is gone. A cluster node keeps its nodes.conf, to rejoin on restart. */
export async function killRedisServer(r: RedisServers, name: string): Promise<void> {
  const s = serverNamed(r, name);
  refreshPids(r);
  if (s.pid === null) return;
  signal(s.pid, 'SIGKILL');
  if (!(await waitGone([s.pid], 5_000))) {
    throw new ClusterError(`${name} (pid ${s.pid}) survived SIGKILL for 5 s`);
  }
  s.pid = null;
  await saveState(r);
}

/**
 * Starts a stopped or killed server again on its port (empty: nothing is persisted). A cluster node
 * rejoins with its old identity and slots from nodes.conf; once every node runs again, returns when
 * the cluster is healthy (with others still down it cannot be: restarting them one by one, the last
 * restart waits).
 */
export async function startRedisServer(r: RedisServers, name: string): Promise<void> {
  const s = serverNamed(r, name);
  refreshPids(r);
  if (s.pid === null) await launch(r, s, false);
  await saveState(r);
  if (r.mode === 'cluster' && r.servers.every((x) => x.pid !== null)) await waitClusterHealthy(r);
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

/** Best effort where nothing asynchronous runs: SIGKILL (the data is throwaway), a short wait, remove the dir. */
function stopRedisSync(r: RedisServers): void {
  const pids = redisPids(r);
  for (const pid of pids) signal(pid, 'SIGKILL');
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + 2_000;
  while (pids.some(isAlive) && Date.now() < deadline) Atomics.wait(pause, 0, 0, 10);
  rmSync(r.dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// cgroups

/** Groups this process created, by path: removed through them, so their own exit hook forgets them. */
const groups = new Map<string, CpuCgroup>();

async function confine(r: RedisServers, s: RedisServer, pid: number | null): Promise<void> {
  if (r.cpuQuota === null || pid === null) return;
  if (s.cgroup === null || !(await exists(s.cgroup))) {
    const group = await CpuCgroup.create(`hop-redis-${r.id}-${s.name}`, r.cpuQuota);
    groups.set(group.path, group);
    s.cgroup = group.path;
  }
  const group = groups.get(s.cgroup);
  try {
    // cgroup.procs moves every thread of the server; a group another process created is reached by path.
    if (group !== undefined) await group.addProcess(pid);
    else await writeFile(join(s.cgroup, 'cgroup.procs'), String(pid));
  } catch (err) {
    throw new ClusterError(`could not move ${s.name} (pid ${pid}) into ${s.cgroup}: ${errorText(err)}`);
  }
}

/** Moves what is left back to the parent (a non-empty group cannot go) and removes the group. */
async function removeCgroup(path: string): Promise<void> {
  const group = groups.get(path);
  groups.delete(path);
  if (group !== undefined) return group.remove();
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

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

function findBinary(name: string): string | null {
  for (const dir of [...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/bin']) {
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      // Not here.
    }
  }
  return null;
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

/** Keeps a pid only while it is this server: a live redis-server whose title has our tag and its port. */
function refreshPids(r: RedisServers): void {
  for (const s of r.servers) {
    if (s.pid === null) continue;
    try {
      const title = readFileSync(`/proc/${s.pid}/cmdline`, 'utf8');
      const ours =
        readFileSync(`/proc/${s.pid}/comm`, 'utf8').trim() === 'redis-server' &&
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
  return r.mode === 'single'
    ? `redis://127.0.0.1:${r.servers[0]!.port}`
    : `redis-cluster://${r.servers.map((s) => `127.0.0.1:${s.port}`).join(',')}`;
}

function serverNamed(r: RedisServers, name: string): RedisServer {
  const s = r.servers.find((x) => x.name === name);
  if (s === undefined) {
    throw new ClusterError(`no Redis server ${name} (${r.servers.map((x) => x.name).join(', ')})`);
  }
  return s;
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
