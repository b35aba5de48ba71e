// The reshard scenario: growing a PostgreSQL cluster from 2 shards to 3 online, in one run. Two Hop
// processes serve a 2-shard cluster (every server on the same CPU budget, as equal machines would
// be); open-loop redirects and creates run at fixed rates before, while the third shard's servers
// start and `hop shards add` claims it, while `hop shards rebalance` moves a third of the buckets,
// and after. Printed side by side: redirect and create latency (p50/p99/max from each request's
// intended send time) and wrong answers per phase, the mover's links/s and write fence per bucket,
// and closed-loop create capacity on 2 shards (before) vs 3 shards (after) against the target ≥ 1.4×.
import { cpus } from 'node:os';
import { join } from 'node:path';
import { addShardServers, primaryOf, withClient } from '../../scripts/cluster/pg-cluster.ts';
import { cpuQuotaUnavailable } from '../../scripts/lib/cpu-cgroup.ts';
import {
  type BenchCluster,
  type ClusterWindow,
  clusterWindow,
  importIntoCluster,
  sampleCluster,
  serverWindowsTable,
  startBenchCluster,
  withoutCpuBudget,
} from '../lib/bench-cluster.ts';
import { readCpuMs, readMachineBusyMs, spawnChild } from '../lib/child.ts';
import { LatencyHistogram, type LatencySummary } from '../lib/histogram.ts';
import { poolCountsDelta, readPoolCounts } from '../lib/hop-metrics.ts';
import { ensureHopBundle, type HopProcess, makeTempDir, REPO_ROOT, removeDir } from '../lib/hop-process.ts';
import { type Distribution, linkUrl, randomApiKey } from '../lib/links.ts';
import type { RequestFactory } from '../lib/load.ts';
import { runOpenLoop } from '../lib/open-loop.ts';
import { histogramOf, type RunResult } from '../lib/recorder.ts';
import { fmtInt, fmtMs, fmtPct, newReport, runsTable, type ScenarioReport } from '../lib/report.ts';
import {
  type BenchContext,
  Cleanup,
  checkRedirect,
  closedLoop,
  confineSut,
  type Sut,
  seedLinksFile,
  startHopSut,
  throttlingNote,
  warmServer,
} from './common.ts';
import { createRequests } from './create.ts';
import { noteTrouble, redirectRequests } from './redirect.ts';
import { goodput, scaleVerdict } from './scale.ts';

export interface ReshardOptions {
  links: number;
  dist: Distribution;
  /** Open-loop redirects per second, across both Hops. */
  rate: number;
  /** Open-loop creates per second, across both Hops. */
  createRate: number;
  /** Seconds of the open-loop phases before and after the reshard. */
  durationS: number;
  /** Seconds of each closed-loop capacity probe. */
  probeS: number;
  /** Capacity probes per connection count, on each shard count. */
  rounds: number;
  /** Closed-loop create connections in all (split over the Hops); the max is the best of them. */
  createConnections: number[];
  /** Cores per Hop process; null: none. */
  cpuQuota: number | null;
  /** Cores per PostgreSQL server; null: none. */
  dbCpuQuota: number | null;
  /** Longest the rebalance may run before it is stopped (the load stops with it). */
  moveTimeoutS: number;
}

/** The target of the issue "Reshard online": 3 shards at least this many times the creates/s of 2. */
export const RESHARD_TARGET = 1.4;

/** Hop processes in front of the cluster; the load is split evenly between them. */
const HOPS = 2;
/**
 * The load of a phase runs as consecutive open-loop runs of this length, each started on a fixed
 * clock (not after the previous one drained), so that a stall does not delay later arrivals, and a
 * phase of unknown length (the rebalance) ends within a second of its operation.
 */
const SLICE_S = 1;
const HOP_BIN = join(REPO_ROOT, 'bin', 'hop.js');

type Workload = 'redirects' | 'creates';
const WORKLOADS: readonly Workload[] = ['redirects', 'creates'];

/** One workload of one phase: every slice on every Hop merged. */
interface WorkloadFigures {
  sent: number;
  completed: number;
  latency: LatencySummary;
  /** Transport errors and timeouts. */
  errors: number;
  /** Answers other than expected (a redirect: any 3xx; a create: 201). */
  wrong: number;
  statusCounts: Record<string, number>;
  /** Slices whose connections could not be opened (their requests count as errors). */
  failedSlices: number;
  /** Worst generator lag p99 of any slice: above a few ms the generator itself was late. */
  lagP99Ms: number;
  /** The generator process's CPU (% of a core), mean over the slices. */
  genCpuPercent: number;
}

interface SecondFigures {
  t: number;
  redirectsP99: number;
  redirectsMax: number;
  createsP99: number;
  createsMax: number;
  bad: number;
}

interface PhaseFigures {
  name: string;
  /** Wall time of the phase's load, from the first slice's start to the last one's drain. */
  seconds: number;
  redirects: WorkloadFigures;
  creates: WorkloadFigures;
  /** Per second (slice), both Hops merged: where in the phase the latency went. */
  timeline: SecondFigures[];
  window: ClusterWindow | null;
}

/** What the mover printed, and how long it ran. */
interface MoverFigures {
  exit: string;
  wallS: number;
  moved: number | null;
  rowsStaged: number | null;
  moverS: number | null;
  fence: { p50: number; p99: number; max: number } | null;
  cpuS: number | null;
  lines: string[];
}

interface ShardsStatus {
  mapVersion: number;
  shards: { shard: number; buckets: number; links: number; urls: string }[];
  movesInProgress: unknown[];
  movesDone: number;
  movesAborted: number;
  fenceMs: { p50: number; p99: number; max: number } | null;
}

interface CapacityProbe {
  shards: number;
  connections: number;
  runs: RunResult[];
  createsPerS: number;
  window: ClusterWindow | null;
  /** hop_db_pool_refused_total over the probe, every Hop and server; null when /metrics did not answer. */
  refused: number | null;
}

export async function runReshard(ctx: BenchContext, o: ReshardOptions): Promise<ScenarioReport> {
  const report = newReport('reshard', {
    links: o.links,
    dist: o.dist,
    rate: o.rate,
    createRate: o.createRate,
    durationS: o.durationS,
    probeS: o.probeS,
    rounds: o.rounds,
    createConnections: o.createConnections.join(','),
    hops: HOPS,
    connections: ctx.connections,
    cpuQuota: o.cpuQuota === null ? 'none' : `${o.cpuQuota} cores per Hop`,
    dbCpuQuota: o.dbCpuQuota === null ? 'none' : `${o.dbCpuQuota} cores per PostgreSQL server`,
    machineCores: cpus().length,
  });
  for (const [what, r] of [
    ['--rate', o.rate],
    ['--create-rate', o.createRate],
  ] as const) {
    if (r / HOPS < 1 / SLICE_S) {
      report.notes.push(
        `${what} ${r}/s is below ${HOPS / SLICE_S}/s (one request per Hop per slice): nothing run.`,
      );
      return report;
    }
  }
  let hopQuota = o.cpuQuota;
  if (hopQuota !== null) {
    const why = await cpuQuotaUnavailable();
    if (why !== null) {
      report.notes.push(`CPU quota of ${hopQuota} cores NOT applied to Hop: ${why}`);
      hopQuota = null;
    }
  }
  const bundle = ensureHopBundle();
  if (bundle !== null) report.notes.push(bundle);
  // What else the machine is doing: on a shared two-core machine the figures depend on it.
  const busy0 = readMachineBusyMs();
  await sleep(1000);
  const busy1 = readMachineBusyMs();
  if (busy0 !== null && busy1 !== null) {
    const cores = (busy1 - busy0) / 1000;
    report.settings.machineBusyAtStart = `${cores.toFixed(2)} cores`;
    ctx.log(`the machine is ${cores.toFixed(2)} cores busy before the run (other processes)`);
  }

  const cleanup = new Cleanup();
  // Filled as the run goes, so that a run stopped half-way still reports what it measured.
  const res: Results = {
    phases: [],
    capacity: [],
    mover: null,
    status: null,
    addS: { servers: 0, add: 0 },
    newShardUrl: '',
    wrongAfter: [],
    hopQuota,
    tables: { afterMove: null, beforeProbes: null, atEnd: null },
  };
  const hopProcs: { name: string; hop: HopProcess }[] = [];
  try {
    const { codes, linksFile } = await seedLinksFile(cleanup, o.links);
    const apiKey = randomApiKey();
    const bc = await startBenchCluster({
      shards: 2,
      replicas: 0,
      cpuQuota: o.dbCpuQuota,
      verbose: ctx.verbose,
      log: ctx.log,
    });
    cleanup.add(() => bc.stop());
    for (const n of bc.notes) report.notes.push(n);

    // Redirects read their shard (cache off), so what the move costs the servers shows in them; clicks
    // are not recorded (no Redis, no click writes beside the creates); the API key is remembered a minute.
    const hopEnv = {
      HOP_DATABASE_URLS: bc.urls,
      HOP_CACHE_SIZE: '0',
      HOP_CLICK_RECORDING: 'off',
      HOP_API_KEY_CACHE_MS: '60000',
      ...ctx.hopEnv,
    };
    const dataDir = await makeTempDir('hop-bench-reshard');
    cleanup.add(() => removeDir(dataDir));
    const setup = { dataDir, apiKey, env: hopEnv, verbose: ctx.verbose };
    ctx.log(`importing ${fmtInt(o.links)} links with hop import (CPU budgets lifted meanwhile)`);
    const imported = await withoutCpuBudget(bc, () => importIntoCluster(bc, setup, linksFile, o.links));
    report.data.import = imported;
    ctx.log(`imported in ${(imported.ms / 1000).toFixed(1)} s (${fmtInt(imported.linksPerS)} links/s)`);

    const hops: Sut[] = [];
    for (let i = 0; i < HOPS; i++) {
      const hop = await startHopSut(setup);
      const sut: Sut = { ...hop, name: `hop ${String.fromCharCode(65 + i)}` };
      hopProcs.push({ name: sut.name, hop: hop.hop });
      const notes: string[] = [];
      const group = await confineSut(ctx, sut, hopQuota, `reshard-hop${i}`, notes);
      report.notes.push(...notes);
      cleanup.add(async () => {
        if (group !== null) {
          const t = await throttlingNote(group, sut.name);
          if (t !== null) report.notes.push(t);
        }
        await hop.stop();
        await group?.remove();
      });
      const problem = await checkRedirect(sut, codes[0]!, linkUrl(0));
      if (problem !== null) throw new Error(problem);
      hops.push(sut);
    }

    // Every create's URL distinct across the whole run, per Hop and per use.
    let createBase = 0;
    const creates = (): RequestFactory => {
      const make = createRequests(apiKey, 1_000_000_000 * ++createBase);
      let n = 0;
      return () => make(n++);
    };
    const reads = () => redirectRequests(codes, o.dist);
    await Promise.all(
      hops.map(async (h) => {
        await warmServer(ctx, { ...h, name: `${h.name} redirects` }, reads());
        await warmServer(ctx, { ...h, name: `${h.name} creates` }, creates());
      }),
    );

    // 1. Capacity on 2 shards.
    res.capacity.push(...(await probeCapacity(ctx, o, report, bc, hops, creates, 2)));

    // 2. Open-loop before, during the add and the rebalance, and after, with the same rates.
    const load = {
      redirects: hops.map(() => reads()),
      creates: hops.map(() => creates()),
    };
    const runPhase = async (name: string, op: (() => Promise<void>) | null, capS: number) => {
      ctx.log(
        `phase "${name}": ${fmtInt(o.rate)} redirects/s and ${fmtInt(o.createRate)} creates/s open-loop` +
          (op === null ? ` for ${capS} s` : ' until it is done'),
      );
      const before = await sampleCluster(bc.cluster, hops[0]!.target);
      // Without an operation the phase runs for capS; with one, until it has ended (capS a bound).
      let done = false;
      let failure: unknown = null;
      const running =
        op === null
          ? Promise.resolve()
          : op().then(
              () => {
                done = true;
              },
              (err: unknown) => {
                failure = err;
                done = true;
              },
            );
      const figures = await loadWhile(ctx, o, name, hops, load, () => done, capS);
      await running;
      figures.window = clusterWindow(bc.cluster, before, await sampleCluster(bc.cluster, hops[0]!.target));
      res.phases.push(figures);
      if (failure !== null) throw failure;
    };

    await runPhase('before (2 shards)', null, o.durationS);

    await runPhase(
      'add shard',
      async () => {
        const t0 = performance.now();
        const urls = await addShardServers(bc.cluster, {
          replicas: 0,
          ...(ctx.verbose ? { log: (l: string) => ctx.log(`cluster: ${l}`) } : {}),
        });
        res.newShardUrl = urls.primary;
        const t1 = performance.now();
        const added = await hopCli(ctx, ['add', urls.primary], bc.urls, 120);
        if (added.exit !== '0') throw new Error(`hop shards add failed (exit ${added.exit}):\n${added.tail}`);
        res.addS = { servers: (t1 - t0) / 1000, add: (performance.now() - t1) / 1000 };
        ctx.log(`shard 2 started in ${res.addS.servers.toFixed(1)} s, added in ${res.addS.add.toFixed(1)} s`);
      },
      600,
    );

    await runPhase(
      'rebalance',
      async () => {
        // A failed mover is reported (its exit and last lines) and the run goes on: the phases measured stand.
        res.mover = await rebalance(ctx, bc.urls, o.moveTimeoutS);
      },
      o.moveTimeoutS + 30,
    );
    const statusRun = await hopCli(ctx, ['status', '--json'], bc.urls, 120);
    try {
      res.status = JSON.parse(statusRun.stdout) as ShardsStatus;
    } catch {
      report.notes.push(
        `hop shards status --json did not answer JSON (exit ${statusRun.exit}): ${statusRun.tail}`,
      );
    }

    res.tables.afterMove = await linksTableStats(bc);

    await runPhase('after (3 shards)', null, o.durationS);

    // 3. Capacity on 3 shards.
    res.tables.beforeProbes = await linksTableStats(bc);
    res.capacity.push(...(await probeCapacity(ctx, o, report, bc, hops, creates, 3)));
    res.tables.atEnd = await linksTableStats(bc);

    // 4. Seeded links still answer with their own URL through both Hops.
    res.wrongAfter = await spotCheck(hops, codes);
  } catch (err) {
    report.notes.push(`the run stopped: ${err instanceof Error ? err.message : String(err)}`);
    for (const { name, hop } of hopProcs) {
      const p = hop.child.proc;
      if (p.exitCode !== null || p.signalCode !== null) {
        report.notes.push(
          `${name} (pid ${hop.pid}) had exited (${p.signalCode ?? `code ${p.exitCode}`}); its last output:\n${hop.child.outputTail()}`,
        );
      }
    }
  } finally {
    await cleanup.run();
  }
  if (res.phases.length > 0 || res.capacity.length > 0) finish(report, o, res);
  return report;
}

// ---------------------------------------------------------------------------------------------
// Open-loop load in slices

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

interface Slice {
  index: number;
  workload: Workload;
  rate: number;
  run: RunResult | null;
}

/**
 * Both workloads on every Hop, each at its share of the rate, in slices of SLICE_S started on a fixed
 * clock until `stop()` (checked before each slice) or `capS`; then every slice drained.
 */
async function loadWhile(
  ctx: BenchContext,
  o: ReshardOptions,
  phase: string,
  hops: readonly Sut[],
  load: Record<Workload, RequestFactory[]>,
  stop: () => boolean,
  capS: number,
): Promise<PhaseFigures> {
  const t0 = performance.now();
  const pending: Promise<Slice>[] = [];
  const rates: Record<Workload, number> = {
    redirects: o.rate / hops.length,
    creates: o.createRate / hops.length,
  };
  const fire = (index: number, workload: Workload, hop: Sut, request: RequestFactory): Promise<Slice> =>
    runOpenLoop({
      target: hop.target,
      label: `${phase}: ${hop.name} ${workload}`,
      rate: rates[workload],
      connections: ctx.connections,
      durationS: SLICE_S,
      maxRequests: ctx.maxRequests,
      request,
      progress: false,
      // Four loops share this event loop: a blocking precise sleep in one would delay the others' sends.
      preciseSleepMs: 0,
    }).then(
      (run) => ({ index, workload, rate: rates[workload], run }),
      () => ({ index, workload, rate: rates[workload], run: null }),
    );
  for (let k = 0; ; k++) {
    const at = t0 + k * SLICE_S * 1000;
    if (k > 0 && (stop() || k * SLICE_S >= capS)) break;
    const wait = at - performance.now();
    if (wait > 0) await sleep(wait);
    if (k > 0 && stop()) break;
    const set: Promise<Slice>[] = [];
    for (const [i, hop] of hops.entries()) {
      for (const w of WORKLOADS) set.push(fire(k, w, hop, load[w][i]!));
    }
    pending.push(...set);
    void Promise.all(set).then((slices) => {
      if (!ctx.progress) return;
      const s = secondOf(k, slices);
      process.stderr.write(
        `[${phase}] ${k + 1}s redirects p99=${fmtMs(s.redirectsP99)}ms max=${fmtMs(s.redirectsMax)}ms ` +
          `creates p99=${fmtMs(s.createsP99)}ms max=${fmtMs(s.createsMax)}ms wrong/errors=${s.bad}\n`,
      );
    });
  }
  const slices = await Promise.all(pending);
  const seconds = (performance.now() - t0) / 1000;
  const timeline: SecondFigures[] = [];
  const indices = [...new Set(slices.map((s) => s.index))].sort((a, b) => a - b);
  for (const k of indices)
    timeline.push(
      secondOf(
        k,
        slices.filter((s) => s.index === k),
      ),
    );
  return {
    name: phase,
    seconds,
    redirects: merge(slices.filter((s) => s.workload === 'redirects')),
    creates: merge(slices.filter((s) => s.workload === 'creates')),
    timeline,
    window: null,
  };
}

function secondOf(t: number, slices: readonly Slice[]): SecondFigures {
  const r = merge(slices.filter((s) => s.workload === 'redirects'));
  const c = merge(slices.filter((s) => s.workload === 'creates'));
  return {
    t,
    redirectsP99: r.latency.p99,
    redirectsMax: r.latency.max,
    createsP99: c.latency.p99,
    createsMax: c.latency.max,
    bad: r.errors + r.wrong + c.errors + c.wrong,
  };
}

function merge(slices: readonly Slice[]): WorkloadFigures {
  const h = new LatencyHistogram();
  const statusCounts: Record<string, number> = {};
  const f = { sent: 0, completed: 0, errors: 0, wrong: 0, failedSlices: 0, lagP99Ms: 0 };
  let cpu = 0;
  let runs = 0;
  for (const s of slices) {
    if (s.run === null) {
      const lost = Math.max(1, Math.floor(s.rate * SLICE_S));
      f.failedSlices++;
      f.sent += lost;
      f.errors += lost;
      continue;
    }
    const r = s.run;
    const hist = histogramOf(r);
    if (hist !== undefined) h.add(hist);
    f.sent += r.scheduled;
    f.completed += r.completed;
    f.errors += r.errorCount;
    f.wrong += r.unexpected;
    f.lagP99Ms = Math.max(f.lagP99Ms, r.generator.lag?.p99 ?? 0);
    cpu += r.generator.cpuPercent;
    runs++;
    for (const [k, n] of Object.entries(r.statusCounts)) statusCounts[k] = (statusCounts[k] ?? 0) + n;
  }
  return { ...f, genCpuPercent: runs === 0 ? 0 : cpu / runs, latency: h.summary(), statusCounts };
}

// ---------------------------------------------------------------------------------------------
// Capacity

/**
 * Closed-loop creates through every Hop at once (each with its share of the connections), per
 * connection count and round; the servers' CPU and throttling watched around each probe.
 */
async function probeCapacity(
  ctx: BenchContext,
  o: ReshardOptions,
  report: ScenarioReport,
  bc: BenchCluster,
  hops: readonly Sut[],
  creates: () => RequestFactory,
  shards: number,
): Promise<CapacityProbe[]> {
  const probes: CapacityProbe[] = [];
  for (let round = 0; round < o.rounds; round++) {
    for (const connections of o.createConnections) {
      const per = Math.max(1, Math.round(connections / hops.length));
      const before = await sampleCluster(bc.cluster, hops[0]!.target);
      const poolsBefore = await Promise.all(hops.map((h) => readPoolCounts(h.target)));
      const runs = await Promise.all(
        hops.map((h) =>
          closedLoop(ctx, { ...h, name: `${shards} shards: ${h.name} creates` }, creates(), o.probeS, per),
        ),
      );
      const window = clusterWindow(bc.cluster, before, await sampleCluster(bc.cluster, hops[0]!.target));
      const poolsAfter = await Promise.all(hops.map((h) => readPoolCounts(h.target)));
      // Every Hop's pool refusals over the probe, all servers: a 503 is often one of them.
      let refused: number | null = 0;
      for (const [i, a] of poolsAfter.entries()) {
        const b = poolsBefore[i];
        if (a === null || b == null || refused === null) {
          refused = null;
          continue;
        }
        for (const p of poolCountsDelta(b, a).values()) {
          for (const n of Object.values(p.refused)) refused += n;
        }
      }
      report.runs.push(...runs);
      const createsPerS = runs.reduce((a, r) => a + goodput(r), 0);
      ctx.log(`${shards} shards, ${per * hops.length} connections: ${fmtInt(createsPerS)} creates/s`);
      probes.push({ shards, connections: per * hops.length, runs, createsPerS, window, refused });
    }
  }
  return probes;
}

function bestProbe(probes: readonly CapacityProbe[]): CapacityProbe | null {
  let top: CapacityProbe | null = null;
  for (const p of probes) if (top === null || p.createsPerS > top.createsPerS) top = p;
  return top;
}

// ---------------------------------------------------------------------------------------------
// hop shards

/** `node bin/hop.js shards …` with HOP_DATABASE_URLS, to its end (SIGTERM after `timeoutS`). */
async function hopCli(
  ctx: BenchContext,
  args: string[],
  urls: string,
  timeoutS: number,
  onLine: (line: string) => void = () => {},
): Promise<{ exit: string; stdout: string; tail: string; wallS: number; cpuS: number | null }> {
  const t0 = performance.now();
  const child = spawnChild(`hop shards ${args[0]}`, process.execPath, [HOP_BIN, 'shards', ...args], {
    cwd: REPO_ROOT,
    env: { HOP_DATABASE_URLS: urls, HOP_LOG_LEVEL: 'warn' },
    echoStderr: ctx.verbose,
  });
  const out: string[] = [];
  child.onStdoutLine((line) => {
    out.push(line);
    onLine(line);
  });
  // Its CPU, read while it runs: once it has exited /proc no longer has it.
  let cpuMs: number | null = null;
  const sampler = setInterval(() => {
    cpuMs = readCpuMs(child.pid) ?? cpuMs;
  }, 250);
  const timer = setTimeout(() => {
    ctx.log(`hop shards ${args[0]} still running after ${timeoutS} s: stopping it`);
    void child.stop(5000);
  }, timeoutS * 1000);
  const exit = await child.exited;
  clearTimeout(timer);
  clearInterval(sampler);
  return {
    exit,
    stdout: out.join('\n'),
    tail: child.outputTail(),
    wallS: (performance.now() - t0) / 1000,
    cpuS: cpuMs === null ? null : cpuMs / 1000,
  };
}

const MOVED_LINE = /moved (\d+) bucket\(s\), (\d+) rows staged, in ([\d.]+) s/;
const FENCE_LINE = /write fence per bucket: p50 ([\d.]+) ms, p99 ([\d.]+) ms, max ([\d.]+) ms/;

async function rebalance(ctx: BenchContext, urls: string, timeoutS: number): Promise<MoverFigures> {
  ctx.log('hop shards rebalance');
  const lines: string[] = [];
  const r = await hopCli(ctx, ['rebalance'], urls, timeoutS, (line) => {
    lines.push(line);
    ctx.log(`mover: ${line}`);
  });
  const moved = MOVED_LINE.exec(r.stdout);
  const fence = FENCE_LINE.exec(r.stdout);
  return {
    exit: r.exit,
    wallS: r.wallS,
    moved: moved === null ? null : Number(moved[1]),
    rowsStaged: moved === null ? null : Number(moved[2]),
    moverS: moved === null ? null : Number(moved[3]),
    fence: fence === null ? null : { p50: Number(fence[1]), p99: Number(fence[2]), max: Number(fence[3]) },
    cpuS: r.cpuS,
    lines: r.exit === '0' ? lines : [...lines, r.tail],
  };
}

/** The links table on one shard's primary, from pg_stat_user_tables, and whether a vacuum of it runs. */
interface TableStats {
  shard: number;
  live: number;
  dead: number;
  autovacuums: number;
  vacuuming: boolean;
}

/** Every shard's links table: the rows a move deletes stay as dead rows until a vacuum, at the server's budget. */
async function linksTableStats(bc: BenchCluster): Promise<TableStats[] | null> {
  try {
    const out: TableStats[] = [];
    for (let shard = 0; shard < bc.cluster.shards; shard++) {
      const primary = primaryOf(bc.cluster, shard);
      out.push(
        await withClient(primary.port, 'hop', async (c) => {
          const t = await c.query<{ live: string; dead: string; autovacuums: string; vacuuming: boolean }>(
            `SELECT n_live_tup AS live, n_dead_tup AS dead, autovacuum_count AS autovacuums,
               EXISTS (SELECT 1 FROM pg_stat_progress_vacuum v WHERE v.relid = s.relid) AS vacuuming
             FROM pg_stat_user_tables s WHERE schemaname = 'public' AND relname = 'links'`,
          );
          const row = t.rows[0];
          return {
            shard,
            live: Number(row?.live ?? 0),
            dead: Number(row?.dead ?? 0),
            autovacuums: Number(row?.autovacuums ?? 0),
            vacuuming: row?.vacuuming === true,
          };
        }),
      );
    }
    return out;
  } catch {
    return null;
  }
}

/** Seeded links (a spread of 200) through every Hop: how many do not redirect to their own URL. */
async function spotCheck(hops: readonly Sut[], codes: readonly string[]): Promise<string[]> {
  const wrong: string[] = [];
  const n = Math.min(200, codes.length);
  for (let j = 0; j < n; j++) {
    const i = Math.floor((j * codes.length) / n);
    for (const h of hops) {
      const problem = await checkRedirect(h, codes[i]!, linkUrl(i));
      if (problem !== null) wrong.push(problem);
    }
  }
  return wrong;
}

// ---------------------------------------------------------------------------------------------
// Report

interface Results {
  phases: PhaseFigures[];
  capacity: CapacityProbe[];
  mover: MoverFigures | null;
  status: ShardsStatus | null;
  addS: { servers: number; add: number };
  newShardUrl: string;
  wrongAfter: string[];
  hopQuota: number | null;
  tables: Record<'afterMove' | 'beforeProbes' | 'atEnd', TableStats[] | null>;
}

function badText(w: WorkloadFigures): string {
  const n = w.errors + w.wrong;
  if (n === 0) return '0';
  const statuses = Object.entries(w.statusCounts)
    .filter(([s]) => !/^(2|3)\d\d$/.test(s))
    .map(([s, c]) => `${s}×${fmtInt(c)}`);
  const parts = [...statuses, ...(w.errors > 0 ? [`errors×${fmtInt(w.errors)}`] : [])];
  return `${fmtInt(n)} (${parts.join(', ') || 'wrong status'})`;
}

/** The machine's busy cores not used by this probe's servers, Hops and generator; n/a without the figures. */
function fmtOther(busy: number | null, p: CapacityProbe): string {
  if (busy === null || p.window === null) return 'n/a';
  let used = p.runs[0] === undefined ? 0 : p.runs[0].generator.cpuPercent / 100;
  for (const s of p.window.servers) {
    if (s.cpuCores === null) return 'n/a';
    used += s.cpuCores;
  }
  for (const x of p.runs) {
    if (x.server?.cpuPercent == null) return 'n/a';
    used += x.server.cpuPercent / 100;
  }
  return Math.max(0, busy - used).toFixed(2);
}

function finish(report: ScenarioReport, o: ReshardOptions, r: Results): void {
  const phase = (prefix: string) => r.phases.find((p) => p.name.startsWith(prefix)) ?? null;
  const before = phase('before');
  const during = phase('rebalance');
  const added = phase('add');
  const after = phase('after');
  const two = bestProbe(r.capacity.filter((p) => p.shards === 2));
  const three = bestProbe(r.capacity.filter((p) => p.shards === 3));
  const verdict = scaleVerdict(two?.createsPerS ?? null, three?.createsPerS ?? null, RESHARD_TARGET);
  const m = r.mover;
  const moverS = m?.moverS ?? m?.wallS ?? null;
  const newShardLinks = r.status?.shards.find((s) => s.shard === 2)?.links ?? null;
  const rowsPerS = m?.rowsStaged != null && moverS !== null && moverS > 0 ? m.rowsStaged / moverS : null;
  const linksPerS = newShardLinks !== null && moverS !== null && moverS > 0 ? newShardLinks / moverS : null;
  const p99 = (p: PhaseFigures | null, w: Workload) => (p === null ? '-' : fmtMs(p[w].latency.p99));
  const fence = (f: { p50: number; p99: number; max: number } | null | undefined) =>
    f == null ? '-' : `${fmtMs(f.p50)} / ${fmtMs(f.p99)} / ${fmtMs(f.max)} ms`;

  report.tables.push({
    title: 'Resharding 2 → 3 shards online, under load (one run)',
    head: ['measure', 'value'],
    align: 'll',
    rows: [
      [
        'links moved/s (rows staged / mover s)',
        rowsPerS === null
          ? '-'
          : `${fmtInt(rowsPerS)} (${fmtInt(m?.rowsStaged ?? 0)} rows in ${moverS?.toFixed(1)} s, ${m?.moved ?? '?'} buckets)`,
      ],
      [
        'links moved/s (links on the new shard / mover s)',
        linksPerS === null ? '-' : `${fmtInt(linksPerS)} (${fmtInt(newShardLinks ?? 0)} links on shard 2)`,
      ],
      ['write fence per bucket p50 / p99 / max (mover)', fence(m?.fence)],
      ['write fence per bucket p50 / p99 / max (status --json)', fence(r.status?.fenceMs)],
      [
        'redirect p99 before → during rebalance → after',
        `${p99(before, 'redirects')} → ${p99(during, 'redirects')} → ${p99(after, 'redirects')} ms`,
      ],
      [
        'create p99 before → during rebalance → after',
        `${p99(before, 'creates')} → ${p99(during, 'creates')} → ${p99(after, 'creates')} ms`,
      ],
      [
        'wrong answers + errors during add / rebalance (redirects, creates)',
        `${added === null ? '-' : `${badText(added.redirects)}, ${badText(added.creates)}`} / ` +
          `${during === null ? '-' : `${badText(during.redirects)}, ${badText(during.creates)}`}`,
      ],
      [
        'creates/s 2 shards → 3 shards (closed-loop max)',
        verdict === null
          ? 'not measured'
          : `${fmtInt(two?.createsPerS ?? 0)} → ${fmtInt(three?.createsPerS ?? 0)} = ${verdict.ratio.toFixed(2)}× ` +
            `(target ≥ ${RESHARD_TARGET}×: ${verdict.met ? 'met' : 'NOT met'})`,
      ],
      [
        'shard 2: servers started / hop shards add / rebalance (wall)',
        `${r.addS.servers.toFixed(1)} s / ${r.addS.add.toFixed(1)} s / ${m === null ? '-' : `${m.wallS.toFixed(1)} s`}`,
      ],
      [
        'mover process CPU (unconfined)',
        m?.cpuS == null || moverS === null
          ? '-'
          : `${m.cpuS.toFixed(1)} s (${((100 * m.cpuS) / m.wallS).toFixed(0)}% of a core)`,
      ],
    ],
    note:
      `Load: ${fmtInt(o.rate)} redirects/s (${o.dist}, seeded links) and ${fmtInt(o.createRate)} creates/s open-loop, ` +
      `split over ${HOPS} Hop processes, the same in every phase. Every PostgreSQL server ` +
      `${o.dbCpuQuota === null ? 'unconfined' : `held to ${o.dbCpuQuota} cores`} (the new shard's too). ` +
      'rows staged counts both copy passes and every table the mover copies; links on the new shard include ' +
      'the creates it took during the move. The fence is the time a bucket’s writes wait, per bucket moved.',
  });

  const rows: string[][] = [];
  for (const p of r.phases) {
    const cells = (w: WorkloadFigures) => [
      fmtInt(w.sent),
      fmtMs(w.latency.p50),
      fmtMs(w.latency.p99),
      fmtMs(w.latency.max),
      badText(w),
    ];
    rows.push([
      p.name,
      p.seconds.toFixed(1),
      ...cells(p.redirects),
      ...cells(p.creates),
      fmtMs(Math.max(p.redirects.lagP99Ms, p.creates.lagP99Ms)),
      fmtPct(p.redirects.genCpuPercent),
    ]);
  }
  report.tables.push({
    title: 'Open-loop latency by phase (ms, from each request’s intended send time)',
    head: [
      'phase',
      's',
      'redirects',
      'p50',
      'p99',
      'max',
      'wrong/errors',
      'creates',
      'p50',
      'p99',
      'max',
      'wrong/errors',
      'gen lag',
      'gen CPU',
    ],
    align: 'lrrrrrrrrrrrrr',
    rows,
    note:
      `Each phase's load runs as ${SLICE_S} s open-loop runs started on a fixed clock (a stall does not delay ` +
      'later arrivals), merged into one HdrHistogram per workload. "add shard" covers starting shard 2’s servers ' +
      'and hop shards add; "rebalance" covers hop shards rebalance, start to exit. wrong/errors: answers other than ' +
      'a 3xx (redirects) or 201 (creates), and transport errors or timeouts (10 s). gen lag: the worst slice’s p99 of ' +
      'how late the generator noticed a request was due (its own delay, in the latencies too); gen CPU: the ' +
      'generator process, % of a core.',
  });

  if (during !== null && during.timeline.length > 0) {
    const worst = [...during.timeline]
      .sort((a, b) => Math.max(b.createsMax, b.redirectsMax) - Math.max(a.createsMax, a.redirectsMax))
      .slice(0, 5)
      .sort((a, b) => a.t - b.t);
    report.tables.push({
      title: 'The rebalance’s worst seconds (max latency of either workload)',
      head: ['second', 'redirects p99', 'redirects max', 'creates p99', 'creates max', 'wrong/errors'],
      rows: worst.map((s) => [
        String(s.t),
        fmtMs(s.redirectsP99),
        fmtMs(s.redirectsMax),
        fmtMs(s.createsP99),
        fmtMs(s.createsMax),
        String(s.bad),
      ]),
      note: 'Seconds from the rebalance’s start; every second of every phase is in the JSON (data.phases[].timeline).',
    });
  }

  const capRows: string[][] = [];
  for (const p of r.capacity) {
    const hopCores = p.runs.map((x) =>
      x.server?.cpuPercent == null ? 'n/a' : (x.server.cpuPercent / 100).toFixed(2),
    );
    const db = (p.window?.servers ?? [])
      .filter((s) => s.cpuCores !== null)
      .map((s) => `${s.name.replace('-primary', '')} ${s.cpuCores!.toFixed(2)}`)
      .join(', ');
    const isBest = p === two || p === three;
    const busy = p.window?.machineBusyCores ?? null;
    capRows.push([
      `${p.shards}`,
      String(p.connections),
      fmtInt(p.createsPerS) + (isBest ? ' *' : ''),
      fmtInt(p.runs.reduce((a, x) => a + x.errorCount + x.unexpected, 0)),
      p.refused === null ? 'n/a' : fmtInt(p.refused),
      hopCores.join(' + '),
      db || 'n/a',
      p.runs[0]?.generator === undefined ? 'n/a' : (p.runs[0].generator.cpuPercent / 100).toFixed(2),
      busy === null ? 'n/a' : busy.toFixed(2),
      fmtOther(busy, p),
    ]);
  }
  report.tables.push({
    title: 'Create capacity (closed-loop), 2 shards before the reshard and 3 after: each probe',
    head: [
      'shards',
      'connections',
      'creates/s',
      'wrong',
      'pool refused',
      'Hop CPU (cores each)',
      'PostgreSQL CPU (cores)',
      'generator',
      'machine busy',
      'others',
    ],
    align: 'rrrrrrlrrr',
    rows: capRows,
    note:
      `* the best per shard count. creates/s: 201s per second over ${o.probeS} s probes (wrong: other answers, e.g. 503; ` +
      'pool refused: hop_db_pool_refused_total over the probe, both Hops, every server), the connections split evenly over ' +
      `${HOPS} Hops, ${o.rounds} round(s) per count. Hop processes ${r.hopQuota === null ? 'unconfined (each can use one core: one event loop)' : `held to ${r.hopQuota} cores each`}; ` +
      `PostgreSQL servers ${o.dbCpuQuota === null ? 'unconfined' : `${o.dbCpuQuota} cores each`} (their CPU over the probe, its 1 s warm-up included). ` +
      'generator: this process (both loops), cores. others: the machine’s busy cores less the servers, the Hops and ' +
      'the generator (other processes on the machine, the kernel; approximate, the windows differ by the warm-up). ' +
      'The 2-shard and the 3-shard probes are taken before and after the reshard, not alternated: the machine may drift in between.',
  });

  // What held the capacity: the database servers at their budget is what the ratio is meant to measure.
  for (const p of [two, three]) {
    if (p === null) continue;
    const hot = p.runs.filter((x) => (x.server?.cpuPercent ?? 0) >= 85).map((x) => x.label);
    if (hot.length > 0) {
      report.notes.push(
        `${p.shards} shards at max: ${hot.join(', ')} used ≥ 0.85 of a core: Hop may be the bottleneck there, not the database.`,
      );
    }
    const servers = p.window?.servers.filter((s) => s.cpuCores !== null) ?? [];
    const quota = o.dbCpuQuota;
    if (quota !== null && servers.length > 0) {
      const atBudget = servers.filter((s) => s.cpuCores! >= 0.85 * quota).length;
      if (atBudget < servers.length) {
        report.notes.push(
          `${p.shards} shards at max: ${atBudget} of ${servers.length} PostgreSQL servers at ≥ 85% of their ${quota}-core budget: the database was not all that held creates back.`,
        );
      }
    }
    const busy = p.window?.machineBusyCores ?? null;
    if (busy !== null && busy >= 0.9 * cpus().length) {
      report.notes.push(
        `${p.shards} shards at max: the machine was ${busy.toFixed(2)} cores busy: it, not the budgets, may have held creates back.`,
      );
    }
  }
  report.notes.push(
    `Hop processes run ${r.hopQuota === null ? 'without a CPU quota' : `with ${r.hopQuota} cores each`}, so that the ` +
      'PostgreSQL servers, each on its budget, are what runs out; each Hop’s CPU is in the capacity table.',
    'Hop runs with HOP_CACHE_SIZE=0 (every redirect reads its shard, so the move’s cost to the servers shows), ' +
      'HOP_CLICK_RECORDING=off (no Redis, no click writes) and HOP_API_KEY_CACHE_MS=60000.',
  );

  const windows: { label: string; window: ClusterWindow }[] = [];
  for (const p of r.phases) if (p.window !== null) windows.push({ label: p.name, window: p.window });
  if (two?.window) windows.push({ label: 'capacity, 2 shards, best', window: two.window });
  if (three?.window) windows.push({ label: 'capacity, 3 shards, best', window: three.window });
  report.tables.push(
    serverWindowsTable(
      'PostgreSQL servers by phase: CPU, throttling and hop A’s pool wait',
      windows,
      'CPU cores: the server (postmaster and backends) on average over the window, of its budget. throttled: share of ' +
        'the CFS periods in which it ran that ended with its quota used up. acquires and waits: hop A’s ' +
        'hop_db_pool_acquire_seconds over the window (hop B alike); refused: hop_db_pool_refused_total.',
    ),
  );

  if (r.status !== null) {
    report.tables.push({
      title: `After the rebalance (hop shards status --json): map version ${r.status.mapVersion}`,
      head: ['shard', 'buckets', 'links'],
      rows: r.status.shards.map((s) => [String(s.shard), String(s.buckets), fmtInt(s.links)]),
      note: `moves: ${r.status.movesDone} done, ${r.status.movesAborted} aborted, ${r.status.movesInProgress.length} in progress.`,
    });
    const t = r.tables;
    const cell = (list: TableStats[] | null, shard: number) => {
      const x = list?.find((y) => y.shard === shard);
      return x === undefined
        ? 'n/a'
        : `${fmtInt(x.dead)} / ${x.autovacuums}${x.vacuuming ? ' (vacuuming)' : ''}`;
    };
    report.tables.push({
      title: 'The links table per shard: dead rows / autovacuums so far (pg_stat_user_tables)',
      head: ['shard', 'right after the move', 'before the 3-shard probes', 'at the end'],
      rows: r.status.shards.map((s) => [
        String(s.shard),
        cell(t.afterMove, s.shard),
        cell(t.beforeProbes, s.shard),
        cell(t.atEnd, s.shard),
      ]),
      note:
        'A move deletes the bucket’s rows on the shard it leaves; they stay as dead rows until a vacuum, which runs ' +
        'inside the server’s CPU budget: an autovacuum during the 3-shard probes takes from the creates. ' +
        '(vacuuming): a vacuum of links was running at that moment.',
    });
    if (r.status.movesInProgress.length > 0 || r.status.movesAborted > 0) {
      report.notes.push(
        `the mover left ${r.status.movesInProgress.length} move(s) in progress and ${r.status.movesAborted} aborted.`,
      );
    }
  }
  report.tables.push(runsTable(report.runs, 'Capacity probes (closed-loop)'));

  for (const p of r.phases) {
    for (const w of WORKLOADS) {
      const f = p[w];
      if (f.failedSlices > 0) {
        report.notes.push(`${p.name}, ${w}: ${f.failedSlices} slice(s) could not connect to a Hop.`);
      }
      if (f.completed + f.errors < f.sent) {
        report.notes.push(
          `${p.name}, ${w}: ${fmtInt(f.sent - f.completed - f.errors)} requests neither answered nor failed.`,
        );
      }
    }
    const lag = Math.max(p.redirects.lagP99Ms, p.creates.lagP99Ms);
    if (lag > 5) {
      report.notes.push(
        `${p.name}: the generator itself ran late (lag p99 up to ${fmtMs(lag)} ms in a slice); latencies include that.`,
      );
    }
  }
  if (r.wrongAfter.length > 0) {
    report.notes.push(
      `after the reshard, ${r.wrongAfter.length} of the seeded links checked answered wrongly, e.g. ${r.wrongAfter.slice(0, 3).join('; ')}`,
    );
  }
  if (m !== null && m.exit !== '0')
    report.notes.push(`the mover exited ${m.exit}: ${m.lines.slice(-5).join(' | ')}`);
  for (const x of report.runs) noteTrouble(report, x);

  report.data.summary = {
    mover: m,
    status: r.status,
    linksMovedPerS: { rowsStaged: rowsPerS, newShardLinks: linksPerS },
    capacity: {
      twoShards: two?.createsPerS ?? null,
      threeShards: three?.createsPerS ?? null,
      ratio: verdict?.ratio ?? null,
      target: RESHARD_TARGET,
      met: verdict?.met ?? null,
    },
    addSeconds: r.addS,
    linksTable: r.tables,
    newShardUrl: r.newShardUrl,
  };
  report.data.phases = r.phases.map((p) => ({
    name: p.name,
    seconds: p.seconds,
    redirects: p.redirects,
    creates: p.creates,
    timeline: p.timeline,
  }));
}
