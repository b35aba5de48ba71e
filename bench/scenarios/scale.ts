// The scale scenario: does adding database servers add capacity, with every server on a fixed CPU
// budget as separate machines of equal size would be? Side by side in one run, alternating, cache
// off: redirect reads on one primary vs a primary and a streaming replica (the primary reading too),
// and creates on one shard vs two. Per system: closed-loop max, the ratio against the target of the
// issue "Scale out the store", open-loop p99 at half its own max, and Hop's pool wait at saturation,
// with each server's CPU and throttling so that the report says which part was the bottleneck.
import { cpus } from 'node:os';
import { type CpuCgroup, cpuQuotaUnavailable } from '../../scripts/lib/cpu-cgroup.ts';
import {
  type BenchCluster,
  type ClusterWindow,
  type CpuPart,
  clusterWindow,
  fmtParts,
  importIntoCluster,
  sampleCluster,
  saturatedParts,
  serverWindowsTable,
  startBenchCluster,
  withoutCpuBudget,
} from '../lib/bench-cluster.ts';
import { bucketQuantile } from '../lib/hop-metrics.ts';
import { makeTempDir, removeDir } from '../lib/hop-process.ts';
import { type Distribution, linkUrl, randomApiKey } from '../lib/links.ts';
import type { RequestFactory } from '../lib/load.ts';
import type { RunResult } from '../lib/recorder.ts';
import { fmtInt, fmtMs, newReport, runsTable, type ScenarioReport } from '../lib/report.ts';
import {
  type BenchContext,
  Cleanup,
  checkRedirect,
  closedLoop,
  confineSut,
  openLoop,
  type Sut,
  seedLinksFile,
  startHopSut,
  throttlingNote,
  warmServer,
} from './common.ts';
import { createRequests } from './create.ts';
import { noteTrouble, redirectRequests } from './redirect.ts';

export interface ScaleOptions {
  links: number;
  dist: Distribution;
  /** Seconds of each closed-loop probe. */
  probeS: number;
  rounds: number;
  /** Seconds of each open-loop run at half a system's max. */
  durationS: number;
  /** Cores per Hop process; null for none. */
  cpuQuota: number | null;
  /** Cores per PostgreSQL server; null for none. */
  dbCpuQuota: number | null;
  /**
   * Closed-loop concurrencies each system is probed at, per workload; its max is the best of them.
   * Creates need more: Hop commits a shard's creates in groups, one group at a time, so a shard's
   * batches (and its efficiency) grow with the clients it has.
   */
  readConnections: number[];
  createConnections: number[];
}

/** The issue's target: the scaled system at least this many times the base system's max. */
export const SCALE_TARGET = 1.8;

/** One Hop in front of one cluster of its own. */
export interface System {
  sut: Sut;
  bc: BenchCluster;
  hopGroup: CpuCgroup | null;
}

interface Probe {
  run: RunResult;
  window: ClusterWindow | null;
}

/** A system's figures in one workload: every probe with the servers' window around it, and the open run. */
export interface Measured {
  name: string;
  system: System;
  probes: Probe[];
  open: Probe | null;
}

/** Correct answers per second: a refused request (503) answers fast and must not count as capacity. */
export function goodput(r: RunResult): number {
  return r.elapsedS > 0 ? (r.completed - r.unexpected) / r.elapsedS : 0;
}

/** The probe with the most correct answers per second. */
export function bestByGoodput<T extends { run: RunResult }>(probes: readonly T[]): T | null {
  let top: T | null = null;
  for (const p of probes) if (top === null || goodput(p.run) > goodput(top.run)) top = p;
  return top;
}

/** Whether `scaled` reached `target` times `base`; null when either is missing. */
export function scaleVerdict(
  base: number | null,
  scaled: number | null,
  target = SCALE_TARGET,
): { ratio: number; met: boolean } | null {
  if (base === null || scaled === null || !(base > 0)) return null;
  const ratio = scaled / base;
  return { ratio, met: ratio >= target };
}

/**
 * The CPU of every part of a system during one run, each against its budget: the database servers
 * (their cgroup quota), Hop (its quota, at most the one core its event loop can use), the load
 * generator (one event loop) and the whole machine.
 */
export function cpuParts(
  run: RunResult,
  window: ClusterWindow | null,
  hopQuota: number | null,
  machineCores: number,
): CpuPart[] {
  const parts: CpuPart[] = (window?.servers ?? []).map((s) => ({
    name: s.name,
    usedCores: s.cpuCores,
    budgetCores: s.quotaCores,
  }));
  const hop = run.server?.cpuPercent ?? null;
  parts.push({
    name: 'Hop',
    usedCores: hop === null ? null : hop / 100,
    budgetCores: Math.min(hopQuota ?? 1, 1),
  });
  parts.push({ name: 'generator', usedCores: run.generator.cpuPercent / 100, budgetCores: 1 });
  parts.push({ name: 'machine', usedCores: window?.machineBusyCores ?? null, budgetCores: machineCores });
  return parts;
}

/** Busy cores of the machine not used by the listed parts; null without the figures. */
export function otherCores(parts: readonly CpuPart[]): number | null {
  const machine = parts.find((p) => p.name === 'machine')?.usedCores ?? null;
  if (machine === null) return null;
  let used = 0;
  for (const p of parts) {
    if (p.name === 'machine') continue;
    if (p.usedCores === null) return null;
    used += p.usedCores;
  }
  return Math.max(0, machine - used);
}

/** Creates with every URL distinct across all runs on a Hop (a counter of its own, not the run's index). */
function uniqueCreates(apiKey: string, base: number): RequestFactory {
  const make = createRequests(apiKey, base);
  let n = 0;
  return () => make(n++);
}

export async function runScale(ctx: BenchContext, o: ScaleOptions): Promise<ScenarioReport> {
  const machineCores = cpus().length;
  const report = newReport('scale', {
    links: o.links,
    dist: o.dist,
    probeS: o.probeS,
    rounds: o.rounds,
    durationS: o.durationS,
    connections: ctx.connections,
    warmupS: ctx.warmupS,
    serverWarmupS: ctx.serverWarmupS,
    cpuQuota: o.cpuQuota === null ? 'none' : `${o.cpuQuota} cores per Hop`,
    dbCpuQuota: o.dbCpuQuota === null ? 'none' : `${o.dbCpuQuota} cores per PostgreSQL server`,
    machineCores,
  });
  let hopQuota = o.cpuQuota;
  if (hopQuota !== null) {
    const why = await cpuQuotaUnavailable();
    if (why !== null) {
      report.notes.push(`CPU quota of ${hopQuota} cores NOT applied to Hop: ${why}`);
      hopQuota = null;
    }
  }
  const cleanup = new Cleanup();
  try {
    const { codes, linksFile } = await seedLinksFile(cleanup, o.links);
    const apiKey = randomApiKey();
    // Reads measure lookups alone: recorded clicks would add batched writes to the primaries
    // (--hop-env HOP_CLICK_RECORDING=on puts them back).
    // The API key is remembered as long as Hop allows: when it expires every create in flight looks it
    // up at once (no single flight), and with 128 clients and more that herd overflows the catalog
    // primary's pool queue and answers 503, mostly on the one-shard system whose primary is busiest.
    const hopEnv = {
      HOP_CACHE_SIZE: '0',
      HOP_PRIMARY_READS: 'on',
      HOP_CLICK_RECORDING: 'off',
      HOP_API_KEY_CACHE_MS: '60000',
      ...ctx.hopEnv,
    };
    report.notes.push(
      'Hop runs with HOP_API_KEY_CACHE_MS=60000 (default 1000): when the remembered key expires, every create in ' +
        "flight looks it up on shard 0's primary at once; with 128 clients and more that overflows its pool " +
        'queue (503), once a minute instead of every second.',
    );

    const startSystem = async (name: string, shards: number, replicas: number): Promise<System> => {
      const bc = await startBenchCluster({
        shards,
        replicas,
        cpuQuota: o.dbCpuQuota,
        verbose: ctx.verbose,
        log: ctx.log,
      });
      cleanup.add(() => bc.stop());
      for (const n of bc.notes) report.notes.push(`${name}: ${n}`);
      const dataDir = await makeTempDir('hop-bench-scale');
      cleanup.add(() => removeDir(dataDir));
      const setup = { dataDir, apiKey, env: { ...hopEnv, HOP_DATABASE_URLS: bc.urls }, verbose: ctx.verbose };
      ctx.log(`${name}: importing ${fmtInt(o.links)} links with hop import`);
      const imported = await withoutCpuBudget(bc, () => importIntoCluster(bc, setup, linksFile, o.links));
      ctx.log(`${name}: imported in ${(imported.ms / 1000).toFixed(1)} s (CPU budgets lifted meanwhile)`);
      const hop = await startHopSut(setup);
      const sut: Sut = { ...hop, name };
      const notes: string[] = [];
      const hopGroup = await confineSut(ctx, sut, hopQuota, `scale-${name}`, notes);
      for (const n of notes) report.notes.push(n);
      cleanup.add(async () => {
        if (hopGroup !== null) {
          const t = await throttlingNote(
            hopGroup,
            `Hop (${name === 'primary alone' ? 'primary alone, 1 shard' : name})`,
          );
          if (t !== null) report.notes.push(t);
        }
        await hop.stop();
        await hopGroup?.remove();
      });
      const problem = await checkRedirect(sut, codes[0]!, linkUrl(0));
      if (problem !== null) throw new Error(problem);
      return { sut, bc, hopGroup };
    };

    let systems: { one: System; replica: System; twoShards: System };
    try {
      systems = {
        one: await startSystem('primary alone', 1, 0),
        replica: await startSystem('primary + replica', 1, 1),
        twoShards: await startSystem('2 shards', 2, 0),
      };
    } catch (err) {
      report.notes.push(`could not set the systems up: ${err instanceof Error ? err.message : String(err)}`);
      return report;
    }

    const reads = redirectRequests(codes, o.dist);
    const creates = uniqueCreates(apiKey, 0);
    const readResults = await measure(ctx, o, report, reads, o.readConnections, [
      { name: 'primary alone', system: systems.one },
      { name: 'primary + replica', system: systems.replica },
    ]);
    // The one-shard system is the primary of the reads: same cluster, same Hop, named for creates.
    const createResults = await measure(ctx, o, report, creates, o.createConnections, [
      { name: '1 shard', system: systems.one },
      { name: '2 shards', system: systems.twoShards },
    ]);

    finish(report, o, hopQuota, machineCores, readResults, createResults);
    return report;
  } finally {
    await cleanup.run();
  }
}

/**
 * Warm-up, then closed-loop probes taken in turns (round by round, every concurrency, the order of the
 * systems reversed every other round, so that drift in the machine hits both alike) with the servers
 * watched around each; then open-loop at half of each system's best, on as many connections.
 */
async function measure(
  ctx: BenchContext,
  o: ScaleOptions,
  report: ScenarioReport,
  request: RequestFactory,
  levels: readonly number[],
  pair: readonly { name: string; system: System }[],
): Promise<Measured[]> {
  const measured = pair.map(
    ({ name, system }): Measured => ({
      name,
      system: { ...system, sut: { ...system.sut, name } },
      probes: [],
      open: null,
    }),
  );
  const watch = async (m: Measured, run: () => Promise<RunResult>): Promise<Probe> => {
    const { bc, sut } = m.system;
    const before = await sampleCluster(bc.cluster, sut.target);
    const r = await run();
    report.runs.push(r);
    return { run: r, window: clusterWindow(bc.cluster, before, await sampleCluster(bc.cluster, sut.target)) };
  };
  for (const m of measured) await warmServer(ctx, m.system.sut, request);
  for (let round = 0; round < o.rounds; round++) {
    for (const connections of levels) {
      for (const m of round % 2 === 0 ? measured : [...measured].reverse()) {
        m.probes.push(await watch(m, () => closedLoop(ctx, m.system.sut, request, o.probeS, connections)));
      }
    }
  }
  for (const m of measured) {
    const top = bestByGoodput(m.probes);
    if (top === null) continue;
    const rate = Math.max(1, Math.floor(goodput(top.run) / 2));
    const connections = Math.max(ctx.connections, top.run.connections);
    m.open = await watch(m, () =>
      openLoop({ ...ctx, connections }, m.system.sut, request, rate, o.durationS),
    );
  }
  return measured;
}

/**
 * Per concurrency, each system's probes (round by round) and best, and the ratio of the bests: how
 * capacity grows with clients, and the scale-out at equal clients.
 */
export function probesRows(what: string, base: Measured, scaled: Measured): string[][] {
  const rows: string[][] = [];
  const levels = [...new Set([...base.probes, ...scaled.probes].map((p) => p.run.connections))].sort(
    (a, b) => a - b,
  );
  for (const c of levels) {
    const cells = [base, scaled].map((m) => {
      const at = m.probes.filter((p) => p.run.connections === c);
      const top = bestByGoodput(at);
      const wrong = at.reduce((a, p) => a + p.run.unexpected + p.run.errorCount, 0);
      return {
        rounds:
          at.map((p) => fmtInt(goodput(p.run))).join(' / ') + (wrong > 0 ? ` (${fmtInt(wrong)} wrong)` : ''),
        best: top === null ? null : goodput(top.run),
      };
    });
    const [b, sc] = cells as [(typeof cells)[0], (typeof cells)[0]];
    const v = scaleVerdict(b.best, sc.best);
    rows.push([what, String(c), b.rounds, sc.rounds, v === null ? 'n/a' : `${v.ratio.toFixed(2)}x`]);
  }
  return rows;
}

/** Per server at a system's max, for machine readers: CPU, throttling and Hop's pool wait in ms. */
function serversAtMax(window: ClusterWindow | null) {
  return (window?.servers ?? []).map((s) => {
    const p99 = s.pool === null ? null : bucketQuantile(s.pool.buckets, 0.99);
    return {
      server: s.name,
      cpuCores: s.cpuCores,
      quotaCores: s.quotaCores,
      throttledShare: s.throttledShare,
      acquires: s.pool?.count ?? null,
      waitMeanMs: s.pool === null || s.pool.count <= 0 ? null : (s.pool.sum / s.pool.count) * 1000,
      waitP99Ms: p99 === null ? null : p99.seconds * 1000,
      waitP99Overflow: p99?.overflow ?? null,
      refused: s.pool?.refused ?? null,
    };
  });
}

function finish(
  report: ScenarioReport,
  o: ScaleOptions,
  hopQuota: number | null,
  machineCores: number,
  readResults: Measured[],
  createResults: Measured[],
): void {
  const workloads = [
    { what: 'redirect reads', unit: 'req/s', results: readResults },
    { what: 'creates', unit: 'links/s', results: createResults },
  ];
  const summary: Record<string, unknown> = {};
  const targetRows: string[][] = [];
  const latencyRows: string[][] = [];
  const saturationRows: string[][] = [];
  const probeRows: string[][] = [];
  const windows: { label: string; window: ClusterWindow }[] = [];
  for (const { what, unit, results } of workloads) {
    const [base, scaled] = results as [Measured, Measured];
    const baseTop = bestByGoodput(base.probes);
    const scaledTop = bestByGoodput(scaled.probes);
    const verdict = scaleVerdict(
      baseTop === null ? null : goodput(baseTop.run),
      scaledTop === null ? null : goodput(scaledTop.run),
    );
    targetRows.push([
      `${what}, max ${unit} (closed-loop)`,
      `${base.name}: ${baseTop === null ? '-' : `${fmtInt(goodput(baseTop.run))} @${baseTop.run.connections}c`}`,
      `${scaled.name}: ${scaledTop === null ? '-' : `${fmtInt(goodput(scaledTop.run))} @${scaledTop.run.connections}c`}`,
      verdict === null ? 'n/a' : `${verdict.ratio.toFixed(2)}x`,
      `≥ ${SCALE_TARGET.toFixed(2)}x`,
      verdict === null ? 'not measured' : verdict.met ? 'met' : 'NOT met',
    ]);
    probeRows.push(...probesRows(what, base, scaled));
    const sat: Record<string, string[]> = {};
    for (const m of results) {
      const top = bestByGoodput(m.probes);
      const open = m.open;
      latencyRows.push([
        what,
        m.name,
        top === null ? '-' : `${fmtInt(goodput(top.run))} @${top.run.connections}c`,
        open === null ? '-' : fmtInt(open.run.targetRate ?? 0),
        open === null ? '-' : fmtInt(goodput(open.run)),
        open === null ? '-' : fmtMs(open.run.latency.p50),
        open === null ? '-' : fmtMs(open.run.latency.p99),
        open === null ? '-' : fmtMs(open.run.latency.p999),
        open === null ? '-' : String(open.run.errorCount + open.run.unexpected),
      ]);
      if (top !== null) {
        const parts = cpuParts(top.run, top.window, hopQuota, machineCores);
        const full = saturatedParts(parts);
        sat[m.name] = full.map((p) => p.name);
        const other = otherCores(parts);
        saturationRows.push([
          what,
          m.name,
          fmtParts(parts.filter((p) => /^shard\d+-/.test(p.name))),
          fmtParts(parts.filter((p) => p.name === 'Hop')),
          fmtParts(parts.filter((p) => p.name === 'generator')),
          fmtParts(parts.filter((p) => p.name === 'machine')),
          other === null ? 'n/a' : other.toFixed(2),
          full.length === 0 ? 'none ≥ 85%' : full.map((p) => p.name).join(', '),
        ]);
        if (top.window !== null) windows.push({ label: `${what}: ${m.name}, max`, window: top.window });
      }
      if (open?.window) windows.push({ label: `${what}: ${m.name}, half max`, window: open.window });
    }
    if (verdict !== null) {
      const dbOnly = (names: string[] | undefined) =>
        names !== undefined && names.length > 0 && names.every((n) => /^shard\d+-/.test(n));
      const scaledSat = sat[scaled.name];
      const baseSat = sat[base.name];
      if (!dbOnly(baseSat)) {
        report.notes.push(
          `${what}: at its max, ${base.name} was ${baseSat === undefined || baseSat.length === 0 ? 'not held at any CPU budget' : `held by ${baseSat.join(', ')}`}, not by its database server alone: the base is not the database's capacity.`,
        );
      }
      if (!dbOnly(scaledSat)) {
        report.notes.push(
          `${what}: at its max, ${scaled.name} was ${scaledSat === undefined || scaledSat.length === 0 ? 'not held at any CPU budget' : `held by ${scaledSat.join(', ')}`}` +
            `${verdict.met ? '' : ', which is why the ratio falls short of the target'}.`,
        );
      }
    }
    summary[what === 'creates' ? 'creates' : 'reads'] = {
      base: base.name,
      scaled: scaled.name,
      baseMax: baseTop === null ? null : goodput(baseTop.run),
      scaledMax: scaledTop === null ? null : goodput(scaledTop.run),
      baseConnections: baseTop?.run.connections ?? null,
      scaledConnections: scaledTop?.run.connections ?? null,
      ratio: verdict?.ratio ?? null,
      target: SCALE_TARGET,
      met: verdict?.met ?? null,
      p99AtHalfMax: Object.fromEntries(results.map((m) => [m.name, m.open?.run.latency.p99 ?? null])),
      saturated: sat,
      atMax: Object.fromEntries(
        results.map((m) => [m.name, serversAtMax(bestByGoodput(m.probes)?.window ?? null)]),
      ),
    };
  }
  report.tables.push({
    title: 'Scale-out targets (issue "Scale out the store"): max throughput, one run, alternating',
    head: ['measure', 'base', 'scaled', 'ratio', 'target', 'result'],
    align: 'lrrrrl',
    rows: targetRows,
    note:
      `max: correct answers per second (a 503 is not capacity), the best of ${o.rounds} round(s) of ${o.probeS} s ` +
      `closed-loop probes per system at each of ${o.readConnections.join(', ')} (reads) and ` +
      `${o.createConnections.join(', ')} (creates) connections (@Nc: the connections of the best), taken in turns. Every PostgreSQL server ` +
      `${o.dbCpuQuota === null ? 'unconfined' : `held to ${o.dbCpuQuota} cores`}, every Hop ${hopQuota === null ? 'unconfined' : `to ${hopQuota} cores`}; ` +
      'cache off (HOP_CACHE_SIZE=0), HOP_PRIMARY_READS=on, click recording off, HOP_API_KEY_CACHE_MS=60000.',
  });
  report.tables.push({
    title: 'Closed-loop probes by connections: correct answers per second, each round (base | scaled)',
    head: ['workload', 'connections', 'base: each round', 'scaled: each round', 'ratio of bests'],
    align: 'lrrrr',
    rows: probeRows,
    note:
      "Hop commits each shard's plain creates in groups, one group in flight per shard: with the same clients, " +
      'two shards get groups half the size, and a group has a fixed cost on the server (statement, commit, the ' +
      'WAL-position probe for read-your-writes), so creates need more clients to reach their max. Reads have ' +
      "no such effect; beyond Hop's pool queue (HOP_PG_POOL_QUEUE, 64 per server) more clients are refused with 503.",
  });
  report.tables.push({
    title: 'Latency at half of each system’s own max (open-loop, ms)',
    head: ['workload', 'system', 'max/s', 'rate asked', 'correct/s', 'p50', 'p99', 'p99.9', 'wrong/errors'],
    align: 'llrrrrrrr',
    rows: latencyRows,
    note: "Latency counts from each request's intended send time, so queueing (and a quota's throttling stalls) is in it.",
  });
  report.tables.push({
    title: 'What held each system at its max (best closed-loop probe): CPU used / budget, in cores',
    head: [
      'workload',
      'system',
      'database servers',
      'Hop',
      'generator',
      'machine',
      'other',
      'at ≥ 85% of budget',
    ],
    align: 'llllllrl',
    rows: saturationRows,
    note:
      "Hop's budget is its quota but at most 1 core (one event loop); the generator's is 1 core (one event loop); " +
      "the machine's is all its cores. other: the machine's busy cores less this system's parts (the idle systems, " +
      'the kernel, anything else on the machine). A system is measured for its database servers only when they ' +
      'alone are at their budget.',
  });
  report.tables.push(serverWindowsTable('Database servers: CPU, throttling and Hop’s pool wait', windows));
  report.tables.push(runsTable(report.runs));
  report.data.summary = summary;
  for (const r of report.runs) noteTrouble(report, r);
}
