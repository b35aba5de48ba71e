// Runs the real `hop` command as a child process, the way users and CI run it.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../scripts/lib/free-port.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'bin/hop.js');

export function tempDir(prefix = 'hop-test-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export { freePort };

export interface HopProcess {
  url: string;
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Sends the signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface StartOptions {
  /** Rewrites the command line, e.g. to run it inside a memory-limited cgroup. */
  wrap?: (argv: string[]) => string[];
}

export async function startHop(
  env: Record<string, string>,
  timeoutMs = 60_000,
  opts: StartOptions = {},
): Promise<HopProcess> {
  const port = await freePort();
  return startHopCommand(
    'serve',
    { PORT: String(port), ...env },
    `http://127.0.0.1:${port}`,
    timeoutMs,
    opts,
  );
}

/** `hop worker`, healthy once its /healthz answers; url is its metrics server. */
export async function startWorker(env: Record<string, string>, timeoutMs = 60_000): Promise<HopProcess> {
  const port = await freePort();
  return startHopCommand(
    'worker',
    { HOP_WORKER_PORT: String(port), ...env },
    `http://127.0.0.1:${port}`,
    timeoutMs,
  );
}

async function startHopCommand(
  command: string,
  env: Record<string, string>,
  url: string,
  timeoutMs: number,
  opts: StartOptions = {},
): Promise<HopProcess> {
  let out = '';
  let err = '';
  const [file, ...args] = (opts.wrap ?? ((a) => a))([process.execPath, BIN, command]);
  const child = spawn(file!, args, {
    cwd: ROOT,
    env: { ...process.env, HOST: '127.0.0.1', HOP_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => {
    out += d;
  });
  child.stderr!.on('data', (d) => {
    err += d;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`hop ${command} exited early (${child.exitCode}): ${err}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`hop ${command} did not become healthy: ${err}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    child,
    stdout: () => out,
    stderr: () => err,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

export function runHop(
  args: string[],
  env: Record<string, string>,
  input?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return runNode([BIN, ...args], env, input, 120_000);
}

/** `node <argv>` in the repository, to its end: exit code and output (stdin given, or closed). */
export function runNode(
  argv: string[],
  env: Record<string, string>,
  input: string | undefined,
  timeoutMs: number,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      argv,
      {
        cwd: ROOT,
        env: { ...process.env, HOP_LOG_LEVEL: 'warn', ...env },
        timeout: timeoutMs,
        maxBuffer: 64 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    child.stdin!.end(input);
  });
}
