// One way to run a server for the operations scripts: a description (command, arguments,
// environment, log file, readiness probe, CPU budget) and one supervisor that starts it in a process
// group of its own, confines it, waits until it is ready, and later signals, stops and reports it.
// Servers outlive the command that started them (`npm run fleet -- up`), so everything needed to
// find them again is in the returned record, which callers keep in their state file.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { removeCgroupDir } from './cgroup-dir.ts';
import { CpuCgroup, cpuQuotaUnavailable } from './cpu-cgroup.ts';
import { isAlive, signal, waitGone } from './processes.ts';

export interface ServerSpec {
  /** Unique within its group; names the cgroup and the server in messages. */
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  /** Added to this process's environment. */
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
  /** Run as this user and group (PostgreSQL and Patroni refuse root); absent: as this process. */
  readonly uid?: number;
  readonly gid?: number;
  /** stdout and stderr are appended here. */
  readonly logFile: string;
  /**
   * Answers true once the server serves; polled until it does or `readyTimeoutMs` passes. Given the
   * server's pid, so a probe can tell the server from a stranger that holds its port.
   */
  readonly ready: (pid: number) => Promise<boolean>;
  readonly readyTimeoutMs?: number;
  /** Between two probes (100 ms). */
  readonly readyPollMs?: number;
  /** Cores, as a cgroup v1 CFS quota; null or absent: unconfined. */
  readonly cpuQuota?: number | null;
}

export interface RunningServer {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** The cgroup holding it, when confined. */
  readonly cgroup: string | null;
}

export class SupervisorError extends Error {}

/**
 * Starts the server and resolves once `ready` says so. A server that exits or is not ready in time
 * is killed, and the error carries the end of its log.
 */
export async function startServer(spec: ServerSpec, tag = 'hop'): Promise<RunningServer> {
  const out = openSync(spec.logFile, 'a');
  let pid: number | undefined;
  let exited: string | null = null;
  try {
    const child = spawn(spec.command, [...spec.args], {
      cwd: spec.cwd,
      env: { ...process.env, ...spec.env },
      ...(spec.uid === undefined ? {} : { uid: spec.uid }),
      ...(spec.gid === undefined ? {} : { gid: spec.gid }),
      stdio: ['ignore', out, out],
      // A process group of its own: Ctrl-C on the starting command does not reach it, and it
      // outlives that command.
      detached: true,
    });
    child.once('exit', (code, signal) => {
      exited = signal ?? `exit code ${code}`;
    });
    child.once('error', (err) => {
      exited = err.message;
    });
    child.unref();
    pid = child.pid;
  } finally {
    closeSync(out);
  }
  if (pid === undefined) {
    throw new SupervisorError(`${spec.name}: could not start ${spec.command}${tailOf(spec.logFile)}`);
  }
  let cgroup: string | null = null;
  try {
    cgroup = await confine(spec, pid, tag);
    const deadline = Date.now() + (spec.readyTimeoutMs ?? 60_000);
    for (;;) {
      if (exited !== null) throw new SupervisorError(`${spec.name} exited (${exited}) before it was ready`);
      if (await spec.ready(pid).catch(() => false)) break;
      if (Date.now() > deadline) throw new SupervisorError(`${spec.name} was not ready in time`);
      await sleep(spec.readyPollMs ?? 100);
    }
  } catch (err) {
    signal(pid, 'SIGKILL');
    await waitGone([pid], 5_000);
    if (cgroup !== null) await removeGroup(cgroup);
    const why = err instanceof Error ? err.message : String(err);
    throw new SupervisorError(`${why}${tailOf(spec.logFile)}`);
  }
  return { name: spec.name, pid, logFile: spec.logFile, cgroup };
}

/**
 * Stops a server: `sig` (SIGTERM by default), then SIGKILL if it has not gone within `graceMs`.
 * Removes its cgroup. Resolves with how it ended; a server already gone is 'gone'.
 */
export async function stopServer(
  s: RunningServer,
  opts: { signal?: NodeJS.Signals; graceMs?: number } = {},
): Promise<'exited' | 'killed' | 'gone'> {
  let how: 'exited' | 'killed' | 'gone' = 'gone';
  if (isAlive(s.pid)) {
    // A stopped process cannot act on SIGTERM until it runs again.
    signal(s.pid, 'SIGCONT');
    signal(s.pid, opts.signal ?? 'SIGTERM');
    how = 'exited';
    if (!(await waitGone([s.pid], opts.graceMs ?? 15_000))) {
      signal(s.pid, 'SIGKILL');
      await waitGone([s.pid], 5_000);
      how = 'killed';
    }
  }
  if (s.cgroup !== null) await removeGroup(s.cgroup);
  return how;
}

/** A readiness probe: an HTTP GET that answers `status`. */
export function httpReady(url: string, status = 200): () => Promise<boolean> {
  return async () => {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    await res.arrayBuffer();
    return res.status === status;
  };
}

/** A readiness probe: something accepts TCP connections on 127.0.0.1:port. */
export function tcpReady(port: number, host = '127.0.0.1'): () => Promise<boolean> {
  return () =>
    new Promise((resolve) => {
      const socket = connect({ port, host });
      const done = (ok: boolean) => {
        socket.destroy();
        resolve(ok);
      };
      socket.once('connect', () => done(true));
      socket.once('error', () => done(false));
      socket.setTimeout(2_000, () => done(false));
    });
}

async function confine(spec: ServerSpec, pid: number, tag: string): Promise<string | null> {
  if (spec.cpuQuota === undefined || spec.cpuQuota === null) return null;
  const unavailable = await cpuQuotaUnavailable();
  if (unavailable !== null) throw new SupervisorError(`${spec.name}: --cpu-quota: ${unavailable}`);
  const name = `${tag}-${pid}-${spec.name.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  const group = await CpuCgroup.create(name, spec.cpuQuota);
  // The group outlives this command, with the server; stopServer removes it.
  group.persist();
  await group.addProcess(pid);
  return group.path;
}

async function removeGroup(path: string): Promise<void> {
  await removeCgroupDir(path, dirname(path)).catch(() => {});
}

function tailOf(logFile: string): string {
  try {
    const lines = readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-15);
    return lines.length === 0 || lines[0] === '' ? '' : `\n--- ${logFile} (end) ---\n${lines.join('\n')}`;
  } catch {
    return '';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
