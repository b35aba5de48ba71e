// The `hop` command run from its TypeScript sources (node --import tsx src/cli/main.ts), the way
// bin/hop.js runs it when there is no bundle: tests of a command under construction need no build.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type HopProcess, startHop } from './hop-process.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SOURCES = ['--import', 'tsx', 'src/cli/main.ts'];

export function runHopSources(
  args: string[],
  env: Record<string, string>,
  input?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [...SOURCES, ...args],
      {
        cwd: ROOT,
        env: { ...process.env, HOP_LOG_LEVEL: 'warn', ...env },
        timeout: 300_000,
        maxBuffer: 64 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin!.end(input);
    else child.stdin!.end();
  });
}

/** `hop serve` from the sources, healthy. */
export function startHopSources(env: Record<string, string>): Promise<HopProcess> {
  return startHop(env, 60_000, { wrap: ([node, , ...rest]) => [node!, ...SOURCES, ...rest] });
}
