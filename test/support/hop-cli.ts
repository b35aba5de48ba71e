// The `hop` command run from its TypeScript sources (node --import tsx src/cli/main.ts), the way
// bin/hop.js runs it when there is no bundle: tests of a command under construction need no build.
import { type HopProcess, runNode, startHop } from './hop-process.ts';

const SOURCES = ['--import', 'tsx', 'src/cli/main.ts'];

export function runHopSources(
  args: string[],
  env: Record<string, string>,
  input?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return runNode([...SOURCES, ...args], env, input, 300_000);
}

/** `hop serve` from the sources, healthy. */
export function startHopSources(env: Record<string, string>): Promise<HopProcess> {
  return startHop(env, 60_000, { wrap: ([node, , ...rest]) => [node!, ...SOURCES, ...rest] });
}
