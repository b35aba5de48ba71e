// Runs Hop as the thing under test: `hop import` to seed a fresh data directory, then `hop serve` as a
// child process on a port picked here, ready once /healthz answers 200. Hop runs as installed
// (bin/hop.js, its bundle) or, for comparisons with before the bundle, from its sources through tsx.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../scripts/lib/free-port.ts';
import { type ManagedChild, readCpuMs, readRssKb, spawnChild } from './child.ts';
import { requestOnce, type Target } from './http-client.ts';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const HOP_BIN = join(REPO_ROOT, 'bin', 'hop.js');
const HOP_SOURCES = join(REPO_ROOT, 'src', 'cli', 'main.ts');

/** Binds 127.0.0.1:0 and gives the port back: Hop is told its port rather than asked for it. */

const tempDirs = new Set<string>();
// An interrupted run must not leave a million-link data directory behind in /tmp.
process.on('exit', () => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

export async function makeTempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `${prefix}-`));
  tempDirs.add(dir);
  return dir;
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

export interface HopSetup {
  dataDir: string;
  apiKey: string;
  /** Scenario settings on top of the bench defaults, e.g. { HOP_CACHE_SIZE: '0' }. */
  env?: Record<string, string>;
  /** Echo Hop's stderr as it comes. */
  verbose?: boolean;
  /** bin/hop.js (its bundle, the default) or src/cli/main.ts through tsx, as Hop ran before the bundle. */
  entry?: 'bin' | 'sources';
  /** Rewrites the command line, e.g. to start Hop inside a memory-limited cgroup (MemoryCgroup.wrap). */
  wrap?: (argv: string[]) => string[];
  /** What answers 200 once Hop is ready: /healthz (default) or /readyz (the store answers too). */
  readyPath?: '/healthz' | '/readyz';
  /** Called as soon as the process exists, e.g. to sample its memory from its first moments. */
  onSpawn?: (child: ManagedChild) => void;
}

function hopCommand(setup: HopSetup, command: string, nodeArgs: string[]): { file: string; args: string[] } {
  const entry = setup.entry === 'sources' ? ['--import', 'tsx', HOP_SOURCES] : [HOP_BIN];
  const [file, ...args] = (setup.wrap ?? ((a) => a))([process.execPath, ...nodeArgs, ...entry, command]);
  return { file: file!, args };
}

/**
 * Brings bin/hop.js's bundle up to date before anything is measured: the launcher rebuilds a stale
 * one itself, in a child, and that build would otherwise count in the first Hop's start-up. Returns
 * a problem to report, or null.
 */
export function ensureHopBundle(): string | null {
  const run = spawnSync(process.execPath, [HOP_BIN, '--help'], { cwd: REPO_ROOT, encoding: 'utf8' });
  if (run.status !== 0) return `bin/hop.js --help failed (exit ${run.status}): ${run.stderr.slice(-500)}`;
  if (run.stderr.includes('could not bundle')) return `bin/hop.js runs the sources: ${run.stderr.trim()}`;
  return null;
}

function hopEnv(setup: HopSetup, port: number): Record<string, string> {
  return {
    PORT: String(port),
    HOST: '127.0.0.1',
    HOP_DATA_DIR: setup.dataDir,
    HOP_INITIAL_API_KEY: setup.apiKey,
    // The bench measures capacity; Hop's own limiter would otherwise turn load into 429s.
    HOP_RATE_LIMITS: 'off',
    HOP_LOG_LEVEL: 'warn',
    ...setup.env,
  };
}

async function runToCompletion(child: ManagedChild, timeoutMs: number): Promise<void> {
  const timer = setTimeout(() => void child.stop(2000), timeoutMs);
  const code = await child.exited;
  clearTimeout(timer);
  if (code !== '0') throw new Error(`${child.name} failed (exit ${code}):\n${child.outputTail()}`);
}

export interface ImportResult {
  links: number;
  ms: number;
  linksPerS: number;
  /** Hop's own summary line ("Imported: N created, ..."), when it printed one. */
  summary: string | null;
}

/**
 * Seeds links with `hop import` before the server starts: the embedded database takes one process
 * per data directory, and importing beats creating a million links over HTTP by orders of magnitude.
 */
export async function importLinks(
  setup: HopSetup,
  file: string,
  links: number,
  timeoutMs = 600_000,
): Promise<ImportResult> {
  const t0 = performance.now();
  const { file: cmd, args } = hopCommand(setup, 'import', []);
  const child = spawnChild('hop import', cmd, [...args, file], {
    cwd: REPO_ROOT,
    env: hopEnv(setup, 0),
    echoStderr: setup.verbose ?? false,
  });
  setup.onSpawn?.(child);
  let summary: string | null = null;
  child.onStdoutLine((line) => {
    if (line.startsWith('Imported')) summary = line;
  });
  await runToCompletion(child, timeoutMs);
  const ms = performance.now() - t0;
  return { links, ms, linksPerS: links / (ms / 1000), summary };
}

export interface HopProcess {
  readonly target: Target;
  readonly pid: number;
  readonly child: ManagedChild;
  rssKb(): number | null;
  cpuMs(): number | null;
  stop(): Promise<void>;
}

/**
 * Extra Node options for every Hop server and worker a bench starts, from HOP_BENCH_NODE_ARGS
 * (space-separated), for flags NODE_OPTIONS refuses, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`.
 */
function hopNodeArgs(): string[] {
  return (process.env.HOP_BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
}

export async function startHop(
  setup: HopSetup,
  readyTimeoutMs = 60_000,
  command: 'serve' | 'worker' = 'serve',
): Promise<HopProcess> {
  const port = await freePort();
  // A worker serves only /metrics and /healthz, on its own port setting.
  const env =
    command === 'worker' ? { ...hopEnv(setup, 0), HOP_WORKER_PORT: String(port) } : hopEnv(setup, port);
  const { file, args } = hopCommand(setup, command, hopNodeArgs());
  const child = spawnChild(`hop ${command}`, file, args, {
    cwd: REPO_ROOT,
    env,
    echoStderr: setup.verbose ?? false,
  });
  setup.onSpawn?.(child);
  const target: Target = { host: '127.0.0.1', port };
  try {
    await waitForHealthy(child, target, readyTimeoutMs, setup.readyPath ?? '/healthz');
  } catch (err) {
    await child.stop(2000);
    throw err;
  }
  return {
    target,
    pid: child.pid,
    child,
    rssKb: () => readRssKb(child.pid),
    cpuMs: () => readCpuMs(child.pid),
    stop: () => child.stop(),
  };
}

async function waitForHealthy(
  child: ManagedChild,
  target: Target,
  timeoutMs: number,
  path: string,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let gone: string | null = null;
  void child.exited.then((code) => {
    gone = code;
  });
  let last = 'no answer yet';
  while (performance.now() < deadline) {
    if (gone !== null)
      throw new Error(`${child.name} exited (${gone}) before it was healthy:\n${child.outputTail()}`);
    try {
      const res = await requestOnce(target, { method: 'GET', path }, 2000);
      if (res.status === 200) return;
      last = `GET ${path} answered ${res.status}`;
    } catch (err) {
      last = String(err);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await child.stop(2000);
  throw new Error(`${child.name} not healthy within ${timeoutMs} ms (${last}):\n${child.outputTail()}`);
}
