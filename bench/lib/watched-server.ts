// A server watched from its spawn, for the memory scenario's phases: its RSS sampled throughout and,
// when given one, a memory cgroup that holds it from its first instruction.
import { limitMemory, type MemoryCgroup } from '../../scripts/lib/memory-cgroup.ts';
import type { ServerFigures } from './memory-figures.ts';
import { type RssSampler, sampleFromSpawn } from './rss-sampler.ts';

/** What a starter (startHop, startBaseline) takes to be watched: the spawn hook, and the cgroup's wrap. */
export interface SpawnHooks {
  onSpawn: (child: { pid: number }) => void;
  wrap?: (argv: string[]) => string[];
}

export interface Watched<S> {
  server: S;
  rss: RssSampler;
  group: MemoryCgroup | null;
  /** From just before the spawn until the starter said the server was ready. */
  readyMs: number;
  /** Stops the server and the sampling, and removes the cgroup. */
  stop(): Promise<void>;
}

/** A memory limit to start the server in: MiB, a label for its cgroup, and where to say it failed. */
export interface LimitRequest {
  mib: number;
  label: string;
  /** Gets, once, why no limit could be applied (the server then runs unconfined). */
  notes: string[];
}

/**
 * Starts a server through `start`, sampled from its spawn and, with `limit`, inside a memory cgroup of
 * its own from its first instruction. `stop()` stops the server and the sampling and removes the group.
 */
export async function startWatched<S extends { stop(): Promise<void> }>(
  limit: LimitRequest | null,
  start: (hooks: SpawnHooks) => Promise<S>,
): Promise<Watched<S>> {
  let group: MemoryCgroup | null = null;
  if (limit !== null) {
    const made = await limitMemory(limit.label, limit.mib * 2 ** 20);
    if ('group' in made) group = made.group;
    else {
      const note = `memory limit NOT applied, servers ran unconfined: ${made.notApplied}`;
      if (!limit.notes.includes(note)) limit.notes.push(note);
    }
  }
  const sampled = sampleFromSpawn();
  const t0 = performance.now();
  let server: S;
  try {
    server = await start({
      onSpawn: sampled.onSpawn,
      ...(group === null ? {} : { wrap: (argv: string[]) => group.wrap(argv) }),
    });
  } catch (err) {
    sampled.rss?.stop();
    await group?.remove();
    throw err;
  }
  const rss = sampled.rss;
  if (rss === null) throw new Error('the starter never reported its spawn');
  const stop = async () => {
    await server.stop();
    rss.stop();
    await group?.remove();
  };
  return { server, rss, group, readyMs: performance.now() - t0, stop };
}

/** The current RSS window and what the cgroup saw, for a table row. */
export async function watchedFigures(
  name: string,
  w: Watched<unknown>,
  survived: boolean | null,
): Promise<ServerFigures> {
  return { name, rss: w.rss.read(), limit: (await w.group?.report()) ?? null, survived };
}
