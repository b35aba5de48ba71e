// What the scenarios share: the run context from the command line, servers under test behind one
// interface (Hop or a baseline), and runs wrapped with the server's CPU and memory.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type CpuCgroup, confineToCpuQuota } from '../../scripts/lib/cpu-cgroup.ts';
import { type BenchCluster, startBenchCluster } from '../lib/bench-cluster.ts';
import {
  type ManagedChild,
  readCpuMs,
  readMachineCpu,
  readRssKb,
  readThreadCpuMs,
  spawnChild,
  waitForReadyLine,
} from '../lib/child.ts';
import { runClosedLoop } from '../lib/closed-loop.ts';
import { type HopProcess, type HopSetup, makeTempDir, removeDir, startHop } from '../lib/hop-process.ts';
import { requestOnce, type Target } from '../lib/http-client.ts';
import { randomCodes, writeLinksJsonl } from '../lib/links.ts';
import type { RequestFactory } from '../lib/load.ts';
import { runOpenLoop } from '../lib/open-loop.ts';
import type { RunResult } from '../lib/recorder.ts';
import type { ScenarioReport } from '../lib/report.ts';

export interface BenchContext {
  quick: boolean;
  progress: boolean;
  verbose: boolean;
  /** Connections per run (closed-loop concurrency; open-loop connection pool). */
  connections: number;
  warmupS: number;
  /**
   * Discarded closed-loop load right after a server starts: Hop needs seconds of traffic before its
   * JIT and cache settle, and a short per-run warm-up would credit the baseline with that difference.
   */
  serverWarmupS: number;
  /** Cap on measured requests of any single run. */
  maxRequests: number;
  /** Extra environment for Hop (--hop-env KEY=VALUE), applied last. */
  hopEnv: Record<string, string>;
  /** Human-readable progress, to stderr. */
  log: (line: string) => void;
}

/** A server under test, Hop or a baseline: all a scenario needs to load it and watch it. */
export interface Sut {
  readonly name: string;
  readonly target: Target;
  readonly pid: number;
  stop(): Promise<void>;
}

const SERVERS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'servers');

export type BaselineKind = 'map' | 'pglite';

export interface BaselineOptions {
  /**
   * Bundles the server into this directory first and runs it on plain node: tsx's loader alone holds
   * about 30 MB resident, which a memory comparison must not charge to the baseline.
   */
  bundleDir?: string;
  /** Rewrites the command line, e.g. to start it inside a memory-limited cgroup. */
  wrap?: (argv: string[]) => string[];
  /** Called as soon as the process exists. */
  onSpawn?: (child: ManagedChild) => void;
}

export async function startBaseline(
  kind: BaselineKind,
  linksFile: string,
  verbose: boolean,
  o: BaselineOptions = {},
): Promise<Sut> {
  const name = `baseline-${kind}`;
  const source = join(SERVERS_DIR, `${name}.ts`);
  let entry = ['--import', 'tsx', source];
  if (o.bundleDir !== undefined) {
    const outfile = join(o.bundleDir, `${name}.mjs`);
    const { build } = await import('esbuild');
    await build({
      entryPoints: [source],
      outfile,
      bundle: true,
      platform: 'node',
      format: 'esm',
      logLevel: 'warning',
    });
    entry = [outfile];
  }
  const [file, ...args] = (o.wrap ?? ((a) => a))([
    process.execPath,
    ...entry,
    '--links',
    linksFile,
    '--port',
    '0',
  ]);
  const child = spawnChild(name, file!, args, { echoStderr: verbose });
  o.onSpawn?.(child);
  try {
    const port = await waitForReadyLine(child, 300_000);
    return { name, target: { host: '127.0.0.1', port }, pid: child.pid, stop: () => child.stop() };
  } catch (err) {
    await child.stop(2000);
    throw err;
  }
}

export async function startHopSut(setup: HopSetup): Promise<Sut & { hop: HopProcess }> {
  const hop = await startHop(setup);
  return { name: 'hop', target: hop.target, pid: hop.pid, stop: () => hop.stop(), hop };
}

/**
 * Wraps a run with the server's CPU share and memory before and after it. The CPU readings start
 * when the run's measured window does (the run calls back after its warm-up): CPU spent in the
 * warm-up, divided by the window's length, read a fifth high for 5 s probes.
 */
async function observed(
  sut: Sut,
  run: (onMeasureStart: () => void) => Promise<RunResult>,
): Promise<RunResult> {
  const rssKbBefore = readRssKb(sut.pid);
  let cpu0 = readCpuMs(sut.pid);
  let threads0 = readThreadCpuMs(sut.pid);
  let machine0 = readMachineCpu();
  const r = await run(() => {
    cpu0 = readCpuMs(sut.pid);
    threads0 = readThreadCpuMs(sut.pid);
    machine0 = readMachineCpu();
  });
  const cpu1 = readCpuMs(sut.pid);
  const threads1 = readThreadCpuMs(sut.pid);
  const machine1 = readMachineCpu();
  const percent = (ms: number) => ms / (r.elapsedS * 10);
  let threads: { mainPercent: number; busiestOtherPercent: number } | null = null;
  if (threads0 !== null && threads1 !== null && r.elapsedS > 0) {
    let busiest = 0;
    for (const [tid, ms] of threads1) {
      if (tid !== sut.pid) busiest = Math.max(busiest, ms - (threads0.get(tid) ?? 0));
    }
    const main = (threads1.get(sut.pid) ?? 0) - (threads0.get(sut.pid) ?? 0);
    threads = { mainPercent: percent(main), busiestOtherPercent: percent(busiest) };
  }
  r.server = {
    pid: sut.pid,
    rssKbBefore,
    rssKbAfter: readRssKb(sut.pid),
    cpuPercent: cpu0 === null || cpu1 === null || r.elapsedS <= 0 ? null : percent(cpu1 - cpu0),
    threads,
    machineIdlePercent:
      machine0 === null || machine1 === null || machine1.total <= machine0.total
        ? null
        : (100 * (machine1.idle - machine0.idle)) / (machine1.total - machine0.total),
  };
  return r;
}

export function closedLoop(
  ctx: BenchContext,
  sut: Sut,
  request: RequestFactory,
  durationS: number,
  connections = ctx.connections,
): Promise<RunResult> {
  ctx.log(`closed-loop: ${sut.name}, ${connections} connections, ${durationS}s (+${ctx.warmupS}s warm-up)`);
  return observed(sut, (onMeasureStart) =>
    runClosedLoop({
      target: sut.target,
      label: sut.name,
      connections,
      durationS,
      maxRequests: ctx.maxRequests,
      request,
      warmupS: ctx.warmupS,
      progress: ctx.progress,
      onMeasureStart,
    }),
  );
}

/**
 * Capacity of each server, closed-loop, alternating round by round (and reversing the order every
 * other round) so that drift in the machine hits all alike. `before` and `after` bracket each probe.
 */
export async function alternateProbes(
  ctx: BenchContext,
  suts: readonly Sut[],
  request: RequestFactory,
  o: { probeS: number; rounds: number },
  report: ScenarioReport,
  after: (sut: Sut, r: RunResult) => Promise<void> = async () => {},
  before: (sut: Sut) => Promise<void> = async () => {},
): Promise<Map<string, RunResult[]>> {
  const probes = new Map<string, RunResult[]>();
  for (let round = 0; round < o.rounds; round++) {
    for (const sut of round % 2 === 0 ? suts : [...suts].reverse()) {
      await before(sut);
      const r = await closedLoop(ctx, sut, request, o.probeS);
      report.runs.push(r);
      probes.set(sut.name, [...(probes.get(sut.name) ?? []), r]);
      await after(sut, r);
    }
  }
  return probes;
}

export function openLoop(
  ctx: BenchContext,
  sut: Sut,
  request: RequestFactory,
  rate: number,
  durationS: number,
): Promise<RunResult> {
  ctx.log(`open-loop: ${sut.name} at ${Math.round(rate)}/s for ${durationS}s (+${ctx.warmupS}s warm-up)`);
  return observed(sut, (onMeasureStart) =>
    runOpenLoop({
      target: sut.target,
      label: sut.name,
      rate,
      connections: ctx.connections,
      durationS,
      maxRequests: ctx.maxRequests,
      request,
      warmupS: ctx.warmupS,
      progress: ctx.progress,
      onMeasureStart,
    }),
  );
}

/** Untimed load on a freshly started server; nothing of it is reported. */
export async function warmServer(ctx: BenchContext, sut: Sut, request: RequestFactory): Promise<void> {
  if (ctx.serverWarmupS <= 0) return;
  ctx.log(`warming ${sut.name} up for ${ctx.serverWarmupS}s (not measured)`);
  await runClosedLoop({
    target: sut.target,
    label: `${sut.name} warm-up`,
    connections: ctx.connections,
    durationS: ctx.serverWarmupS,
    maxRequests: ctx.maxRequests,
    request,
    progress: false,
  });
}

/**
 * "Hot" means every link is already in the server's cache: one request per link, in order,
 * before any timed run (a Zipf warm-up alone would leave the long tail cold for minutes).
 */
export async function touchEveryLink(ctx: BenchContext, sut: Sut, codes: readonly string[]): Promise<void> {
  ctx.log(`touching all ${codes.length} links on ${sut.name} so that the hot set is cached (not measured)`);
  let next = 0;
  await runClosedLoop({
    target: sut.target,
    label: `${sut.name} cache fill`,
    connections: ctx.connections,
    durationS: 600,
    maxRequests: codes.length,
    request: () => ({ method: 'GET', path: `/${codes[next++ % codes.length]}`, expect: 'redirect' }),
    progress: false,
  });
}

/** One GET before the load: a server that answers wrongly would otherwise yield a fast, empty result. */
export async function checkRedirect(sut: Sut, code: string, url: string): Promise<string | null> {
  try {
    const res = await requestOnce(sut.target, { method: 'GET', path: `/${code}` });
    const location = res.headers?.location;
    if (res.status >= 300 && res.status < 400 && location === url) return null;
    return `${sut.name}: GET /${code} answered ${res.status} (Location ${location ?? 'none'}), expected a redirect to ${url}`;
  } catch (err) {
    return `${sut.name}: GET /${code} failed: ${String(err)}`;
  }
}

/**
 * Puts a running server into a CPU-quota cgroup of its own; null when `cores` is null or the quota
 * could not be applied (then `notes` says why). The group must be removed once the server is gone.
 */
export async function confineSut(
  ctx: BenchContext,
  sut: Sut,
  cores: number | null,
  label: string,
  notes: string[],
): Promise<CpuCgroup | null> {
  if (cores === null) return null;
  const confined = await confineToCpuQuota(sut.pid, cores, label);
  if ('group' in confined) {
    ctx.log(`${sut.name} (pid ${sut.pid}) limited to ${cores} cores by cgroup ${confined.group.path}`);
    return confined.group;
  }
  const why = `CPU quota NOT applied to ${sut.name}: ${confined.notApplied}`;
  ctx.log(why);
  notes.push(why);
  return null;
}

/** How often a cgroup's quota held its processes back, for the notes; null when unreadable. */
export async function throttlingNote(group: CpuCgroup, who: string): Promise<string | null> {
  const t = await group.throttling();
  if (t === null) return null;
  return (
    `${who}'s cgroup (${group.cores} cores): throttled in ${t.throttledPeriods.toLocaleString('en-US')} of ` +
    `${t.periods.toLocaleString('en-US')} CFS periods, ${(t.throttledMs / 1000).toFixed(1)} s in all`
  );
}

/** A throwaway directory (removed by `cleanup`) holding `n` random links as JSON Lines. */
export async function seedLinksFile(
  cleanup: Cleanup,
  n: number,
): Promise<{ dir: string; codes: string[]; linksFile: string }> {
  const dir = await makeTempDir('hop-bench');
  cleanup.add(() => removeDir(dir));
  const codes = randomCodes(n);
  const linksFile = join(dir, 'links.jsonl');
  await writeLinksJsonl(linksFile, codes);
  return { dir, codes, linksFile };
}

/** One PostgreSQL shard without replicas (cores per server: `cpuQuota`), stopped by `cleanup`. */
export async function oneShardCluster(
  ctx: BenchContext,
  cleanup: Cleanup,
  cpuQuota: number | null = null,
): Promise<BenchCluster> {
  const bc = await startBenchCluster({
    shards: 1,
    replicas: 0,
    cpuQuota,
    verbose: ctx.verbose,
    log: ctx.log,
  });
  cleanup.add(() => bc.stop());
  return bc;
}

/** Runs cleanups in reverse order, never letting one failure skip the rest. */
export class Cleanup {
  readonly #fns: (() => Promise<void>)[] = [];
  add(fn: () => Promise<void>): void {
    this.#fns.push(fn);
  }
  async run(): Promise<void> {
    for (const fn of this.#fns.reverse()) {
      try {
        await fn();
      } catch (err) {
        process.stderr.write(`cleanup failed: ${String(err)}\n`);
      }
    }
    this.#fns.length = 0;
  }
}

/** Best of several closed-loop rounds: capacity is the highest sustained rate, noise only lowers it. */
export function best(runs: RunResult[]): RunResult | undefined {
  let top: RunResult | undefined;
  for (const r of runs) if (top === undefined || r.achievedRate > top.achievedRate) top = r;
  return top;
}

/**
 * Each named GET, warmed up and then measured open-loop at `rate`, one after another on the same
 * server; the runs are added to the report and returned with their names.
 */
export async function openLoopGets(
  ctx: BenchContext,
  sut: Sut,
  report: ScenarioReport,
  gets: readonly (readonly [name: string, path: string])[],
  headers: Record<string, string>,
  rate: number,
  durationS: number,
): Promise<[string, RunResult][]> {
  const results: [string, RunResult][] = [];
  for (const [name, path] of gets) {
    const request: RequestFactory = () => ({ method: 'GET', path, headers, expect: 200 });
    await warmServer(ctx, { ...sut, name }, request);
    const r = await openLoop(ctx, { ...sut, name }, request, rate, durationS);
    report.runs.push(r);
    results.push([name, r]);
  }
  return results;
}
