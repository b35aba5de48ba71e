// Servers under test run as child processes, never inside the generator: one process would make the
// generator's and the server's CPU, GC pauses and event loops indistinguishable.
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

export interface ManagedChild {
  readonly name: string;
  readonly pid: number;
  readonly proc: ChildProcess;
  /** Exit code (or signal name) once the child has gone. */
  readonly exited: Promise<string>;
  /** Last lines of stderr and stdout, for error messages when a server fails to start. */
  outputTail(): string;
  /** Subscribes to stdout lines; returns the unsubscribe function. */
  onStdoutLine(fn: (line: string) => void): () => void;
  /** SIGTERM, then SIGKILL if it has not gone within `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

const live = new Set<ManagedChild>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A crashed or interrupted bench must not leave servers holding ports and data directories.
  process.on('exit', () => {
    for (const c of live) c.proc.kill('SIGKILL');
  });
}

/** Stops every child still running: for SIGINT handlers. */
export async function stopAllChildren(): Promise<void> {
  await Promise.all([...live].map((c) => c.stop(2000)));
}

export interface SpawnOptions {
  cwd?: string;
  env?: Record<string, string>;
  /** Echo the child's stderr as it comes (prefixed with its name). */
  echoStderr?: boolean;
}

export function spawnChild(
  name: string,
  command: string,
  args: string[],
  opts: SpawnOptions = {},
): ManagedChild {
  installExitHook();
  const proc = spawn(command, args, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (proc.pid === undefined) throw new Error(`could not start ${name}: ${command} ${args.join(' ')}`);
  const tail: string[] = [];
  const keep = (line: string) => {
    tail.push(line);
    if (tail.length > 40) tail.shift();
  };
  createInterface({ input: proc.stderr! }).on('line', (line) => {
    keep(line);
    if (opts.echoStderr) process.stderr.write(`[${name}] ${line}\n`);
  });
  const exited = new Promise<string>((resolve) => {
    proc.once('exit', (code, signal) => resolve(signal ?? String(code)));
  });
  const stdoutListeners = new Set<(line: string) => void>();
  const child: ManagedChild = {
    name,
    pid: proc.pid,
    proc,
    exited,
    outputTail: () => tail.join('\n'),
    onStdoutLine(fn) {
      stdoutListeners.add(fn);
      return () => stdoutListeners.delete(fn);
    },
    async stop(graceMs = 10_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
  // One reader for stdout: a second readline on the same stream would pause it when closed.
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    keep(line);
    for (const fn of stdoutListeners) fn(line);
  });
  live.add(child);
  void exited.then(() => live.delete(child));
  return child;
}

/** Waits for the one-line `{"ready":true,"port":N}` that the baseline servers print. */
export function waitForReadyLine(child: ManagedChild, timeoutMs = 60_000): Promise<number> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => fail(`no ready line within ${timeoutMs} ms`), timeoutMs);
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      unsubscribe();
      reject(new Error(`${child.name}: ${why}\n${child.outputTail()}`));
    };
    const unsubscribe = child.onStdoutLine((line) => {
      if (!line.startsWith('{')) return;
      try {
        const msg = JSON.parse(line) as { ready?: boolean; port?: number };
        if (msg.ready === true && typeof msg.port === 'number' && !settled) {
          settled = true;
          clearTimeout(timer);
          unsubscribe();
          resolve(msg.port);
        }
      } catch {
        // Not the ready line: servers may log JSON of their own.
      }
    });
    void child.exited.then((code) => fail(`exited (${code}) before it was ready`));
  });
}

/** Resident set size of a process in KiB, from /proc; null where /proc is not there. */
export function readRssKb(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

// Linux reports process CPU in clock ticks; USER_HZ is 100 on every mainstream kernel build.
const TICKS_PER_SECOND = 100;

/** User + system CPU of a process (or of one of its threads) in ms, from /proc; null where unavailable. */
export function readCpuMs(pid: number, tid?: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}${tid === undefined ? '' : `/task/${tid}`}/stat`, 'utf8');
    // The command name may contain spaces and parentheses, so count fields from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    if (!Number.isFinite(utime) || !Number.isFinite(stime)) return null;
    return ((utime + stime) * 1000) / TICKS_PER_SECOND;
  } catch {
    return null;
  }
}

/** CPU (user + system) of each thread of a process, by thread id, in ms; null where unavailable. */
export function readThreadCpuMs(pid: number): Map<number, number> | null {
  try {
    const out = new Map<number, number>();
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const ms = readCpuMs(pid, Number(tid));
      if (ms !== null) out.set(Number(tid), ms);
    }
    return out;
  } catch {
    return null;
  }
}

/** The machine's idle and total CPU time so far (all cores, in ticks); null where unavailable. */
export function readMachineCpu(): { idle: number; total: number } | null {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    return { idle: (cpu[3] ?? 0) + (cpu[4] ?? 0), total: cpu.reduce((a, b) => a + b, 0) };
  } catch {
    return null;
  }
}

/** The fields of /proc/<pid>/stat a CPU account needs, in ms; null where unavailable. */
function readStatCpu(pid: number): { ppid: number; ownMs: number; reapedMs: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const [utime, stime, cutime, cstime] = [11, 12, 13, 14].map((i) => Number(fields[i]));
    if (![utime, stime, cutime, cstime].every(Number.isFinite)) return null;
    return {
      ppid: Number(fields[1]),
      ownMs: ((utime! + stime!) * 1000) / TICKS_PER_SECOND,
      reapedMs: ((cutime! + cstime!) * 1000) / TICKS_PER_SECOND,
    };
  } catch {
    return null;
  }
}

/**
 * CPU in ms of a process and its direct children: those alive, and those it has already reaped
 * (the kernel adds them to the parent's cutime/cstime). A PostgreSQL postmaster's backends are its
 * direct children, so this is the whole server's CPU; null when the process is gone.
 */
export function readProcessTreeCpuMs(pid: number): number | null {
  const self = readStatCpu(pid);
  if (self === null) return null;
  let ms = self.ownMs + self.reapedMs;
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return ms;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const child = readStatCpu(Number(entry));
    if (child !== null && child.ppid === pid) ms += child.ownMs;
  }
  return ms;
}

/** Busy CPU of the whole machine so far (all cores, ms), from /proc/stat; null where unavailable. */
export function readMachineBusyMs(): number | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const ticks = line.trim().split(/\s+/).slice(1).map(Number);
    if (ticks.length < 5 || !ticks.every(Number.isFinite)) return null;
    // user nice system idle iowait irq softirq steal ...; idle and iowait are not busy. guest time
    // is already inside user and nice, so only the first eight count.
    const busy = ticks.slice(0, 8).reduce((a, b) => a + b, 0) - ticks[3]! - ticks[4]!;
    return (busy * 1000) / TICKS_PER_SECOND;
  } catch {
    return null;
  }
}
