// The redis-tier scenario: playbook stage 4 with a shared Redis, the Measured section of issue "The
// Redis tier". Hop on one PostgreSQL primary held to a fixed CPU budget, one Redis, and four parts:
// redirect throughput and p99 with the cache off / L2 only / L1+L2 (against the embedded hot path and a
// bare node:http + Redis server), store reads while a popular entry expires under load (stampede
// control on vs off), the store load of a scan of unknown codes (negative caching on vs off), and the
// invalidation delay between two processes. It prints each target and whether it was met; it asserts
// nothing.
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { type RedisServers, startRedis, stopRedis } from '../../scripts/cluster/redis-servers.ts';
import { type CpuCgroup, cpuQuotaUnavailable, type Throttling } from '../../scripts/lib/cpu-cgroup.ts';
import {
  type BenchCluster,
  type ClusterSample,
  type CpuPart,
  clusterWindow,
  fmtParts,
  importIntoCluster,
  sampleCluster,
  saturatedParts,
} from '../lib/bench-cluster.ts';
import { readCpuMs, readMachineBusyMs, spawnChild, waitForReadyLine } from '../lib/child.ts';
import { importLinks, makeTempDir, removeDir } from '../lib/hop-process.ts';
import { encodeRequest, HttpConnection, type ParsedResponse, type RequestSpec } from '../lib/http-client.ts';
import { type Distribution, linkUrl, randomApiKey, randomCodes } from '../lib/links.ts';
import type { RequestFactory } from '../lib/load.ts';
import type { RunResult } from '../lib/recorder.ts';
import {
  coalescedShare,
  cyclicScanStoreReads,
  expiriesInWindow,
  hitShares,
  median,
  metText,
  ratioVerdict,
  readTierCounts,
  type StampedeFigures,
  type StoreScrape,
  type StoreWindow,
  stampedeFigures,
  storeWindows,
  summarizeDelays,
  type TierCounts,
  tierCountsDelta,
} from '../lib/redis-tier-figures.ts';
import {
  fmtInt,
  fmtMs,
  fmtPct,
  newReport,
  runsTable,
  type ScenarioReport,
  type Table,
} from '../lib/report.ts';
import {
  alternateProbes,
  type BenchContext,
  best,
  Cleanup,
  checkRedirect,
  confineSut,
  oneShardCluster,
  openLoop,
  type Sut,
  seedLinksFile,
  startHopSut,
  throttlingNote,
  touchEveryLink,
  warmServer,
} from './common.ts';
import { noteTrouble, redirectRequests } from './redirect.ts';

export const REDIS_TIER_PARTS = ['throughput', 'stampede', 'scan', 'invalidation'] as const;
export type RedisTierPart = (typeof REDIS_TIER_PARTS)[number];

export interface RedisTierOptions {
  links: number;
  /** Seconds of each closed-loop probe. */
  probeS: number;
  rounds: number;
  /** Seconds of each open-loop run at half a system's max, and of the scan. */
  durationS: number;
  /** Cores per Hop process and per baseline server; null for none. */
  cpuQuota: number | null;
  /** Cores of the PostgreSQL primary; null for none. */
  dbCpuQuota: number | null;
  parts: readonly RedisTierPart[];
  /** Open-loop rate on the popular link, shared by the two processes. */
  stampedeRate: number;
  stampedeS: number;
  scanRate: number;
  /**
   * Distinct unknown codes the scan cycles through, one scan (negative cache on, then off) per size: a
   * set the negative TTL covers many times over, and one whose cycle outlasts it once Hop falls behind.
   */
  scanCodes: number[];
  invalidations: number;
}

/** Targets of the issue. */
export const HOT_PATH_TARGET = 0.9;
export const L2_TARGET = 0.9;
/** At most this many store reads per process per expiry of a popular entry, with stampede control. */
export const STAMPEDE_TARGET = 1;
/** The bound the integration tests hold the invalidation delay under. */
export const INVALIDATION_TARGET_MS = 1000;

/** The short lifetimes that make the popular entry expire several times in a stampede run. */
const STAMPEDE_L1_TTL_MS = 1000;
const STAMPEDE_L2_TTL_MS = 2000;
const NEGATIVE_TTL_MS = 5000;
/** An invalidation not seen within this long counts as missed. */
const INVALIDATION_GIVE_UP_MS = 5000;
const POLL_MS = 2;

const SERVERS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'servers');

/** A server under test with its CPU group and whether it exposes Hop's /metrics. */
interface TierSut {
  sut: Sut;
  group: CpuCgroup | null;
  hop: boolean;
}

/** Everything the parts share: the data, the store, Redis, and how to start a Hop on them. */
interface Shared {
  ctx: BenchContext;
  o: RedisTierOptions;
  report: ScenarioReport;
  codes: string[];
  linksFile: string;
  apiKey: string;
  bc: BenchCluster;
  redis: RedisServers;
  admin: Redis;
  hopQuota: number | null;
  machineCores: number;
}

/** A capacity ratio judged on the best probes (the verdict), with the ratio of the median probes beside it. */
interface RatioFigures {
  ratio: number;
  met: boolean;
  medianRatio: number | null;
}

/** What the parts report into the targets table. */
/** Two systems' CPU per redirect at one rate: what each costs, free of how fast the machine was then. */
interface CostFigures {
  a: string;
  b: string;
  dist: Distribution;
  aUs: number;
  bUs: number;
  /** The capacity of a relative to b that the costs imply (bUs / aUs), for a CPU-bound server. */
  ratio: number;
}

interface Verdicts {
  /** CPU per redirect at equal rates (the target pairs), beside the capacity ratios. */
  costs: CostFigures[];
  hotPath: RatioFigures | null;
  l2: Partial<Record<Distribution, RatioFigures | null>>;
  stampede: { worst: number | null; met: boolean | null } | null;
  /** Store reads/s of each scan with and without the negative cache: the issue gives no target figure. */
  scan: { codes: number; on: number; off: number }[];
  invalidation: { p99: number; missed: number; met: boolean } | null;
}

export async function runRedisTier(ctx: BenchContext, o: RedisTierOptions): Promise<ScenarioReport> {
  const machineCores = cpus().length;
  const report = newReport('redis-tier', {
    links: o.links,
    parts: o.parts.join(','),
    probeS: o.probeS,
    rounds: o.rounds,
    durationS: o.durationS,
    connections: ctx.connections,
    warmupS: ctx.warmupS,
    serverWarmupS: ctx.serverWarmupS,
    cpuQuota: o.cpuQuota === null ? 'none' : `${o.cpuQuota} cores per Hop and baseline`,
    dbCpuQuota: o.dbCpuQuota === null ? 'none' : `${o.dbCpuQuota} cores for the PostgreSQL primary`,
    stampedeRate: o.stampedeRate,
    stampedeS: o.stampedeS,
    scanRate: o.scanRate,
    scanCodes: o.scanCodes.join(','),
    invalidations: o.invalidations,
    machineCores,
  });
  let hopQuota = o.cpuQuota;
  if (hopQuota !== null) {
    const why = await cpuQuotaUnavailable();
    if (why !== null) {
      report.notes.push(`CPU quota of ${hopQuota} cores NOT applied to Hop and the baseline: ${why}`);
      hopQuota = null;
    }
  }
  const verdicts: Verdicts = {
    costs: [],
    hotPath: null,
    l2: {},
    stampede: null,
    scan: [],
    invalidation: null,
  };
  const cleanup = new Cleanup();
  try {
    const { codes, linksFile } = await seedLinksFile(cleanup, o.links);
    const apiKey = randomApiKey();
    const bc = await oneShardCluster(ctx, cleanup, o.dbCpuQuota);
    for (const n of bc.notes) report.notes.push(n);
    ctx.log('starting one Redis server');
    const redis = await startRedis({ mode: 'single' });
    cleanup.add(() => stopRedis(redis));
    const admin = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    admin.on('error', () => {});
    await admin.connect();
    cleanup.add(async () => admin.disconnect());

    const importDir = await makeTempDir('hop-bench-tier-import');
    cleanup.add(() => removeDir(importDir));
    ctx.log(`importing ${fmtInt(o.links)} links into PostgreSQL with hop import`);
    const imported = await importIntoCluster(
      bc,
      { dataDir: importDir, apiKey, env: {}, verbose: ctx.verbose },
      linksFile,
      o.links,
    );
    ctx.log(`imported in ${(imported.ms / 1000).toFixed(1)} s`);
    report.data.import = imported;

    const sh: Shared = { ctx, o, report, codes, linksFile, apiKey, bc, redis, admin, hopQuota, machineCores };
    const part = async (name: RedisTierPart, run: () => Promise<void>) => {
      if (!o.parts.includes(name)) return;
      try {
        await run();
      } catch (err) {
        const msg = `${name}: failed: ${err instanceof Error ? err.message : String(err)}`;
        ctx.log(msg);
        report.notes.push(msg);
      }
      // Every part starts from an empty L2: entries of one part (an hour's TTL) must not serve the next.
      await admin.flushall();
    };
    await part('throughput', () => throughputPart(sh, verdicts));
    await part('stampede', () => stampedePart(sh, verdicts));
    await part('scan', () => scanPart(sh, verdicts));
    await part('invalidation', () => invalidationPart(sh, verdicts));
    report.tables.push(targetsTable(verdicts, o.parts));
    if (report.runs.length > 0) report.tables.push(runsTable(report.runs));
    for (const r of report.runs) noteTrouble(report, r);
    return report;
  } finally {
    await cleanup.run();
  }
}

// ---------------------------------------------------------------------------------------------
// Starting servers

/** Hop's environment in every part: reads measure lookups, so clicks are not recorded unless asked. */
function hopEnv(sh: Shared, own: Record<string, string>): Record<string, string> {
  return { HOP_CLICK_RECORDING: 'off', ...own, ...sh.ctx.hopEnv };
}

function onStore(sh: Shared): Record<string, string> {
  return { HOP_DATABASE_URLS: sh.bc.urls };
}

function onRedis(sh: Shared): Record<string, string> {
  return { HOP_REDIS_URL: sh.redis.url };
}

/** A Hop in its CPU group, stopped (and its group and data directory removed) by `cleanup`. */
async function startTierHop(
  sh: Shared,
  cleanup: Cleanup,
  name: string,
  env: Record<string, string>,
  importFirst = false,
): Promise<TierSut> {
  const dataDir = await makeTempDir('hop-bench-tier');
  cleanup.add(() => removeDir(dataDir));
  const setup = { dataDir, apiKey: sh.apiKey, env: hopEnv(sh, env), verbose: sh.ctx.verbose };
  if (importFirst) {
    sh.ctx.log(`${name}: importing ${fmtInt(sh.o.links)} links into the embedded store`);
    await importLinks(setup, sh.linksFile, sh.o.links);
  }
  const hop = await startHopSut(setup);
  const sut: Sut = { ...hop, name };
  const group = await confineSut(sh.ctx, sut, sh.hopQuota, `tier-${name}`, sh.report.notes);
  cleanup.add(async () => {
    if (group !== null) {
      const t = await throttlingNote(group, name);
      if (t !== null) sh.report.notes.push(t);
    }
    await hop.stop();
    await group?.remove();
  });
  return { sut, group, hop: true };
}

/** bench/servers/baseline-redis.ts, seeded with the links, in a CPU group like Hop's. */
async function startRedisBaseline(sh: Shared, cleanup: Cleanup, name: string): Promise<TierSut> {
  const child = spawnChild(
    name,
    process.execPath,
    [
      '--import',
      'tsx',
      join(SERVERS_DIR, 'baseline-redis.ts'),
      ...['--links', sh.linksFile, '--port', '0', '--redis', sh.redis.url],
    ],
    { echoStderr: sh.ctx.verbose },
  );
  cleanup.add(() => child.stop());
  const port = await waitForReadyLine(child, 300_000);
  const sut: Sut = { name, target: { host: '127.0.0.1', port }, pid: child.pid, stop: () => child.stop() };
  const group = await confineSut(sh.ctx, sut, sh.hopQuota, `tier-${name}`, sh.report.notes);
  cleanup.add(async () => {
    if (group !== null) {
      const t = await throttlingNote(group, name);
      if (t !== null) sh.report.notes.push(t);
    }
    await child.stop();
    await group?.remove();
  });
  return { sut, group, hop: false };
}

// ---------------------------------------------------------------------------------------------
// 1. Throughput and p99 by cache configuration

const CACHE_OFF = 'cache off';
const L2_ONLY = 'L2 only';
const L1_L2 = 'L1+L2';
const EMBEDDED = 'embedded hot path';
const BASELINE = 'node:http + Redis';

/** CPU of the parts around one run. */
interface Watched {
  run: RunResult;
  system: string;
  dist: Distribution;
  /** Hop's counters over the window: the run, its warm-up included. */
  tiers: TierCounts | null;
  /** Seconds between the samples around the run. */
  windowS: number;
  /**
   * The server's cores over the whole window (its run's warm-up included, at the same load): the run's
   * own figure divides the warm-up's CPU by the measured window alone, which overstates it.
   */
  serverCores: number | null;
  /** Share of the CFS periods in which the server's cgroup ran out of quota; null without a group. */
  serverThrottled: number | null;
  pgCores: number | null;
  pgQuota: number | null;
  pgThrottled: number | null;
  redisCores: number | null;
  machineCores: number | null;
}

interface Before {
  cluster: ClusterSample;
  serverCpuMs: number | null;
  throttling: Throttling | null;
  redisCpuMs: number | null;
  machineMs: number | null;
  tiers: TierCounts | null;
  at: number;
}

async function sampleBefore(sh: Shared, t: TierSut): Promise<Before> {
  return {
    cluster: await sampleCluster(sh.bc.cluster, null),
    serverCpuMs: readCpuMs(t.sut.pid),
    throttling: (await t.group?.throttling()) ?? null,
    redisCpuMs: redisPid(sh) === null ? null : readCpuMs(redisPid(sh)!),
    machineMs: readMachineBusyMs(),
    tiers: t.hop ? await readTierCounts(t.sut.target) : null,
    at: performance.now(),
  };
}

async function sampleAfter(
  sh: Shared,
  t: TierSut,
  b: Before,
  run: RunResult,
  system: string,
  dist: Distribution,
): Promise<Watched> {
  const tiers = t.hop ? await readTierCounts(t.sut.target) : null;
  const cluster = await sampleCluster(sh.bc.cluster, null);
  const elapsedS = Math.max(1e-9, (performance.now() - b.at) / 1000);
  const w = clusterWindow(sh.bc.cluster, b.cluster, cluster);
  const pg = w.servers[0];
  const pid = redisPid(sh);
  const redisMs = pid === null ? null : readCpuMs(pid);
  const serverMs = readCpuMs(t.sut.pid);
  const throttling = (await t.group?.throttling()) ?? null;
  const periods =
    throttling !== null && b.throttling !== null ? throttling.periods - b.throttling.periods : 0;
  const machineMs = readMachineBusyMs();
  const cores = (a: number | null, b: number | null) =>
    a !== null && b !== null ? (b - a) / 1000 / elapsedS : null;
  return {
    run,
    system,
    dist,
    tiers: tiers !== null && b.tiers !== null ? tierCountsDelta(b.tiers, tiers) : null,
    windowS: elapsedS,
    serverCores: cores(b.serverCpuMs, serverMs),
    serverThrottled:
      throttling === null || b.throttling === null || periods <= 0
        ? null
        : (throttling.throttledPeriods - b.throttling.throttledPeriods) / periods,
    pgCores: pg?.cpuCores ?? null,
    pgQuota: pg?.quotaCores ?? null,
    pgThrottled: pg?.throttledShare ?? null,
    redisCores: cores(b.redisCpuMs, redisMs),
    machineCores: cores(b.machineMs, machineMs),
  };
}

function redisPid(sh: Shared): number | null {
  return sh.redis.servers[0]?.pid ?? null;
}

async function throughputPart(sh: Shared, verdicts: Verdicts): Promise<void> {
  const { ctx, o, report, codes } = sh;
  const cleanup = new Cleanup();
  try {
    const candidates: [string, () => Promise<TierSut>][] = [
      [CACHE_OFF, () => startTierHop(sh, cleanup, CACHE_OFF, { ...onStore(sh), HOP_CACHE_SIZE: '0' })],
      [
        L2_ONLY,
        () => startTierHop(sh, cleanup, L2_ONLY, { ...onStore(sh), ...onRedis(sh), HOP_CACHE_SIZE: '0' }),
      ],
      [L1_L2, () => startTierHop(sh, cleanup, L1_L2, { ...onStore(sh), ...onRedis(sh) })],
      [EMBEDDED, () => startTierHop(sh, cleanup, EMBEDDED, {}, true)],
      [BASELINE, () => startRedisBaseline(sh, cleanup, BASELINE)],
    ];
    const systems = new Map<string, TierSut>();
    for (const [name, start] of candidates) {
      try {
        ctx.log(`starting ${name}`);
        const t = await start();
        const problem = await checkRedirect(t.sut, codes[0]!, linkUrl(0));
        if (problem !== null) throw new Error(problem);
        systems.set(name, t);
      } catch (err) {
        report.notes.push(`${name}: not measured: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    // L2 and L1 hold every link before anything is timed (Zipf traffic alone leaves the tail cold).
    for (const name of [L2_ONLY, L1_L2, EMBEDDED]) {
      const t = systems.get(name);
      if (t !== undefined) await touchEveryLink(ctx, t.sut, codes);
    }

    const watched: Watched[] = [];
    const best_ = new Map<string, Watched>();
    const rounds = new Map<string, number[]>();
    const open = new Map<string, Watched>();
    for (const dist of ['uniform', 'zipf'] as const) {
      const request = redirectRequests(codes, dist);
      const here = [...systems].filter(([name]) => dist === 'zipf' || name !== EMBEDDED);
      const label = (name: string) => `${name}, ${dist}`;
      const byLabel = new Map(here.map(([name, t]) => [label(name), { name, t }]));
      const suts = here.map(([name, t]) => ({ ...t.sut, name: label(name) }));
      for (const s of suts) await warmServer(ctx, s, request);
      const befores = new Map<string, Before>();
      const probes = await alternateProbes(
        ctx,
        suts,
        request,
        o,
        report,
        async (s, r) => {
          const { name, t } = byLabel.get(s.name)!;
          watched.push(await sampleAfter(sh, t, befores.get(s.name)!, r, name, dist));
        },
        async (s) => {
          befores.set(s.name, await sampleBefore(sh, byLabel.get(s.name)!.t));
        },
      );
      for (const s of suts) {
        rounds.set(
          s.name,
          (probes.get(s.name) ?? []).map((r) => r.achievedRate),
        );
        const top = best(probes.get(s.name) ?? []);
        if (top === undefined) continue;
        const w = watched.find((x) => x.run === top)!;
        best_.set(s.name, w);
        const { name, t } = byLabel.get(s.name)!;
        const rate = Math.max(1, Math.floor(top.achievedRate / 2));
        const b = await sampleBefore(sh, t);
        const r = await openLoop(ctx, s, request, rate, o.durationS);
        report.runs.push(r);
        open.set(s.name, await sampleAfter(sh, t, b, r, name, dist));
      }
    }
    report.data.throughput = [...best_].map(([label, w]) => ({
      label,
      maxRate: w.run.achievedRate,
      openLoopRate: open.get(label)?.run.targetRate ?? null,
      p99: open.get(label)?.run.latency.p99 ?? null,
      tiers: w.tiers,
    }));

    const maxOf = (name: string, dist: Distribution) => best_.get(`${name}, ${dist}`)?.run.achievedRate;
    const medianOf = (name: string, dist: Distribution) => median(rounds.get(`${name}, ${dist}`) ?? []);
    const judge = (a: string, b: string, dist: Distribution, target: number): RatioFigures | null => {
      const v = ratioVerdict(maxOf(a, dist), maxOf(b, dist), target);
      const m = ratioVerdict(medianOf(a, dist), medianOf(b, dist), target);
      return v === null ? null : { ...v, medianRatio: m?.ratio ?? null };
    };
    verdicts.hotPath = judge(L1_L2, EMBEDDED, 'zipf', HOT_PATH_TARGET);
    for (const dist of ['uniform', 'zipf'] as const)
      verdicts.l2[dist] = judge(L2_ONLY, BASELINE, dist, L2_TARGET);
    for (const [a, b, dist] of [
      [L2_ONLY, BASELINE, 'uniform'],
      [L2_ONLY, BASELINE, 'zipf'],
      [L1_L2, EMBEDDED, 'zipf'],
    ] as const) {
      const aUs = median(cpuPerRedirect(watched, a, dist));
      const bUs = median(cpuPerRedirect(watched, b, dist));
      if (aUs !== null && bUs !== null) verdicts.costs.push({ a, b, dist, aUs, bUs, ratio: bUs / aUs });
    }
    if (verdicts.costs.length > 0) report.tables.push(costTable(verdicts.costs));
    report.tables.push(throughputTable(best_, open, rounds));
    report.tables.push(capacityTable(sh, best_));
    for (const [label, w] of best_) {
      const parts = saturatedParts(cpuParts(sh, w));
      report.notes.push(
        `${label} at its max (${fmtInt(w.run.achievedRate)}/s): ` +
          (parts.length === 0
            ? 'no part at 85 % of its CPU budget (latency-bound: the connections were waiting)'
            : `saturated: ${fmtParts(parts)}`),
      );
    }
  } finally {
    await cleanup.run();
  }
}

/**
 * CPU per redirect (µs, all the server's threads) in each closed-loop probe of a system. When other
 * tenants slow this machine a probe gets fewer requests done and its server less CPU alike, so this
 * varies far less from probe to probe than the rate does.
 */
function cpuPerRedirect(watched: readonly Watched[], system: string, dist: Distribution): number[] {
  return watched
    .filter((w) => w.system === system && w.dist === dist && w.serverCores !== null && w.run.achievedRate > 0)
    .map((w) => (w.serverCores! * 1e6) / w.run.achievedRate);
}

export function costTable(costs: readonly CostFigures[]): Table {
  return {
    title: 'CPU per redirect at each max (median over the closed-loop probes)',
    head: ['a', 'b', 'dist', 'a µs CPU', 'b µs CPU', 'capacity a/b implied'],
    rows: costs.map((c) => [c.a, c.b, c.dist, c.aUs.toFixed(1), c.bUs.toFixed(1), `${c.ratio.toFixed(2)}x`]),
    note:
      "Each probe's server CPU (all its threads, over the probe and its warm-up) divided by the requests it " +
      'answered; the median over the probes. A server held by its quota answers 1 / (this cost) per core, so ' +
      'the last column is the capacity ratio with the noise of other tenants taken out.',
  };
}

/** The parts of a system during a run, each against its budget, for "what held it". */
function cpuParts(sh: Shared, w: Watched): CpuPart[] {
  const parts: CpuPart[] = [
    {
      name: w.system === BASELINE ? 'baseline' : 'Hop',
      usedCores: w.serverCores,
      budgetCores: Math.min(sh.hopQuota ?? 1, 1),
    },
  ];
  if (w.system !== EMBEDDED) {
    parts.push({ name: 'Redis', usedCores: w.redisCores, budgetCores: 1 });
    parts.push({ name: 'PostgreSQL', usedCores: w.pgCores, budgetCores: w.pgQuota });
  }
  parts.push({ name: 'generator', usedCores: w.run.generator.cpuPercent / 100, budgetCores: 1 });
  parts.push({ name: 'machine', usedCores: w.machineCores, budgetCores: sh.machineCores });
  return parts;
}

function throttledText(x: number | null): string {
  return x === null ? '-' : `${(x * 100).toFixed(0)}%`;
}

function saturatedText(parts: readonly CpuPart[]): string {
  const s = saturatedParts(parts);
  return s.length === 0 ? 'none' : s.map((p) => p.name).join(', ');
}

const SYSTEM_ORDER = [CACHE_OFF, L2_ONLY, L1_L2, EMBEDDED, BASELINE];

function sortedLabels(m: ReadonlyMap<string, Watched>): string[] {
  return [...m.keys()].sort((a, b) => {
    const wa = m.get(a)!;
    const wb = m.get(b)!;
    return wa.dist === wb.dist
      ? SYSTEM_ORDER.indexOf(wa.system) - SYSTEM_ORDER.indexOf(wb.system)
      : wa.dist.localeCompare(wb.dist);
  });
}

function share(x: number | null): string {
  return x === null ? '-' : `${(x * 100).toFixed(1)}%`;
}

export function throughputTable(
  best_: ReadonlyMap<string, Watched>,
  open: ReadonlyMap<string, Watched>,
  rounds: ReadonlyMap<string, readonly number[]>,
): Table {
  const rows = sortedLabels(best_).map((label) => {
    const w = best_.get(label)!;
    const o = open.get(label);
    const shares = w.tiers === null ? null : hitShares(w.tiers);
    const storePerS = w.tiers === null ? null : w.tiers.storeLookups / w.windowS;
    return [
      w.system,
      w.dist,
      fmtInt(w.run.achievedRate),
      (rounds.get(label) ?? []).map(fmtInt).join(' / '),
      shares === null ? '-' : share(shares.l1),
      shares === null ? '-' : share(shares.l2),
      w.tiers === null ? '-' : share(coalescedShare(w.tiers)),
      storePerS === null ? '-' : fmtInt(storePerS),
      o === undefined ? '-' : fmtInt(o.run.targetRate ?? 0),
      o === undefined ? '-' : fmtInt(o.run.achievedRate),
      o === undefined ? '-' : fmtMs(o.run.latency.p50),
      o === undefined ? '-' : fmtMs(o.run.latency.p99),
      o === undefined ? '-' : fmtMs(o.run.latency.p999),
      o === undefined ? '-' : throttledText(o.serverThrottled),
      o === undefined ? '-' : String(o.run.errorCount + o.run.unexpected),
    ];
  });
  return {
    title: 'Redirects by cache configuration: closed-loop max, then open-loop at half of it',
    head: [
      'system',
      'dist',
      'max req/s',
      'probes in round order',
      'L1 hits',
      'L2 hits',
      'joined',
      'store reads/s',
      'open @ /s',
      'achieved/s',
      'p50 ms',
      'p99 ms',
      'p99.9 ms',
      'throttled',
      'wrong',
    ],
    rows,
    note:
      'max: the best closed-loop probe (all probes beside it: this machine varies by a quarter and more from ' +
      'one probe to the next). L1 hits: share of lookups answered in process; L2 hits: share of those ' +
      'reaching Redis answered there; joined: share of lookups that joined a load in flight for the same code ' +
      "(hop_cache_loads_coalesced_total); store reads/s: hop_store_lookups_total; all from Hop's /metrics over " +
      'that probe, its warm-up included. Open-loop latency counts from the intended send time; throttled: share ' +
      "of CFS periods in which the server's CPU quota ran out during that run (each such period stalls it until " +
      'the period ends, up to 100 ms, which shows in the tail). wrong: errors and ' +
      "non-redirect answers. The runs table's server CPU divides the warm-up's CPU by the measured window " +
      'alone; the table below does not.',
    align: 'llrrrrrrrrrrrrr',
  };
}

function capacityTable(sh: Shared, best_: ReadonlyMap<string, Watched>): Table {
  const cores = (used: number | null, budget: number | null) =>
    used === null ? 'n/a' : budget === null ? used.toFixed(2) : `${used.toFixed(2)} / ${budget}`;
  const rows = sortedLabels(best_).map((label) => {
    const w = best_.get(label)!;
    const parts = cpuParts(sh, w);
    const part = (n: string) => parts.find((p) => p.name === n);
    const server = parts[0]!;
    return [
      w.system,
      w.dist,
      fmtInt(w.run.achievedRate),
      cores(server.usedCores, server.budgetCores),
      throttledText(w.serverThrottled),
      part('PostgreSQL') === undefined ? '-' : cores(w.pgCores, w.pgQuota),
      w.pgThrottled === null || w.system === EMBEDDED ? '-' : fmtPct(w.pgThrottled * 100),
      part('Redis') === undefined ? '-' : cores(w.redisCores, null),
      cores(w.run.generator.cpuPercent / 100, 1),
      cores(w.machineCores, sh.machineCores),
      saturatedText(parts),
    ];
  });
  return {
    title: 'What held each system at its max (CPU cores used of the budget, during the best probe)',
    head: [
      'system',
      'dist',
      'max req/s',
      'server',
      'throttled',
      'PostgreSQL',
      'PG throttled',
      'Redis',
      'generator',
      'machine',
      '>= 85% of budget',
    ],
    rows,
    note:
      'server: Hop (or the baseline) against its quota, at most the one core its event loop can use; ' +
      'throttled: share of CFS periods its quota ran out in. ' +
      'PostgreSQL: the primary (postmaster and backends) against its cgroup quota; PG throttled: share of CFS ' +
      "periods its quota ran out in. Redis: its process (one core). machine: all cores' busy time.",
    align: 'llrrrrrrrrl',
  };
}

// ---------------------------------------------------------------------------------------------
// 2. Stampede: a popular entry expiring under load, two processes

interface StampedeResult {
  mode: 'on' | 'off';
  perProcess: {
    name: string;
    figures: StampedeFigures;
    run: RunResult;
    coalesced: number;
    /** Redis commands that failed or timed out: each a miss, so a store read without an expiry. */
    redisFailures: number;
  }[];
  expiries: number;
  fills: number;
}

async function stampedePart(sh: Shared, verdicts: Verdicts): Promise<void> {
  const results: StampedeResult[] = [];
  for (const mode of ['on', 'off'] as const) {
    // A code of its own per mode, so that the other mode's entry cannot serve it.
    const index = mode === 'on' ? 0 : 1;
    results.push(await stampedeRun(sh, mode, sh.codes[index]!, linkUrl(index)));
  }
  const on = results.find((r) => r.mode === 'on');
  if (on !== undefined) {
    const worst = on.perProcess.reduce<number | null>(
      (w, p) => (p.figures.readsPerExpiry === null ? w : Math.max(w ?? 0, p.figures.readsPerExpiry)),
      null,
    );
    verdicts.stampede = { worst, met: worst === null ? null : worst <= STAMPEDE_TARGET };
  }
  sh.report.data.stampede = results.map((r) => ({
    mode: r.mode,
    expiries: r.expiries,
    fills: r.fills,
    processes: r.perProcess.map((p) => ({
      name: p.name,
      ...p.figures,
      coalesced: p.coalesced,
      redisFailures: p.redisFailures,
    })),
  }));
  sh.report.tables.push(stampedeTable(sh, results));
}

async function stampedeRun(
  sh: Shared,
  mode: 'on' | 'off',
  code: string,
  url: string,
): Promise<StampedeResult> {
  const { ctx, o, report } = sh;
  const cleanup = new Cleanup();
  try {
    const env = {
      ...onStore(sh),
      ...onRedis(sh),
      HOP_CACHE_TTL_MS: String(STAMPEDE_L1_TTL_MS),
      HOP_REDIS_CACHE_TTL_MS: String(STAMPEDE_L2_TTL_MS),
      HOP_STAMPEDE_CONTROL: mode,
    };
    const procs = [
      await startTierHop(sh, cleanup, `stampede ${mode} A`, env),
      await startTierHop(sh, cleanup, `stampede ${mode} B`, env),
    ];
    for (const p of procs) {
      const problem = await checkRedirect(p.sut, code, url);
      if (problem !== null) throw new Error(problem);
    }
    const request: RequestFactory = () => ({ method: 'GET', path: `/${code}`, expect: 'redirect' });
    for (const p of procs) await warmServer(ctx, p.sut, request);

    // Redis tells when the entry expires (keyspace notifications): the denominator of reads per expiry.
    const key = `hop:link:${code}`;
    await sh.admin.config('SET', 'notify-keyspace-events', 'Kg$x');
    const sub = sh.admin.duplicate();
    sub.on('error', () => {});
    cleanup.add(async () => sub.disconnect());
    const expiries: number[] = [];
    let fills = 0;
    sub.on('message', (_channel: string, event: string) => {
      if (event === 'expired') expiries.push(performance.now());
      else if (event === 'set') fills++;
    });
    await sub.subscribe(`__keyspace@0__:${key}`);

    const scrapes: StoreScrape[][] = procs.map(() => []);
    const scrape = async () => {
      await Promise.all(
        procs.map(async (p, i) => {
          const c = await readTierCounts(p.sut.target);
          if (c !== null) {
            scrapes[i]!.push({
              at: performance.now(),
              storeLookups: c.storeLookups,
              earlyRefreshes: c.earlyRefreshes,
            });
          }
        }),
      );
    };
    const firstCounts = await Promise.all(procs.map((p) => readTierCounts(p.sut.target)));
    expiries.length = 0;
    fills = 0;
    // Idle since the warm-up, the entry may have expired already: its read then falls inside the window.
    const absentAtOpen = (await sh.admin.exists(key)) === 0;
    await scrape();
    const openedAt = performance.now();
    let scraping = true;
    const scraper = (async () => {
      // Bounded by the run: one scrape a second until the generators are done.
      for (let i = 0; scraping && i < o.stampedeS + 30; i++) {
        await new Promise((r) => setTimeout(r, 1000));
        if (scraping) await scrape();
      }
    })();
    ctx.log(`stampede (control ${mode}): /${code} at ${o.stampedeRate}/s over two Hops for ${o.stampedeS}s`);
    const runs = await Promise.all(
      procs.map((p, i) =>
        openLoop(
          { ...ctx, warmupS: 0, progress: ctx.progress && i === 0 },
          p.sut,
          request,
          o.stampedeRate / procs.length,
          o.stampedeS,
        ),
      ),
    );
    const counted = expiriesInWindow(expiries, { absentAtOpen, openedAt, endedAt: performance.now() });
    scraping = false;
    await scraper;
    await scrape();
    await sub.unsubscribe();
    const lastCounts = await Promise.all(procs.map((p) => readTierCounts(p.sut.target)));
    for (const r of runs) report.runs.push(r);
    if (ctx.verbose) {
      const start = scrapes[0]?.[0]?.at ?? 0;
      const at = (t: number) => ((t - start) / 1000).toFixed(3);
      ctx.log(`stampede ${mode}: expiries at ${counted.map(at).join(', ')} s`);
      procs.forEach((p, i) => {
        const w = storeWindows(scrapes[i]!, counted).filter((x) => x.reads > 0 || x.expiries > 0);
        ctx.log(
          `${p.sut.name}: ${w.map((x) => `${at(x.at)} s ${x.reads} reads/${x.expiries} exp`).join('; ')}`,
        );
      });
    }
    return {
      mode,
      expiries: counted.length,
      fills,
      perProcess: procs.map((p, i) => {
        const windows: StoreWindow[] = storeWindows(scrapes[i]!, counted);
        const a = firstCounts[i];
        const b = lastCounts[i];
        return {
          name: p.sut.name,
          figures: stampedeFigures(windows),
          run: runs[i]!,
          coalesced: a && b ? b.coalesced - a.coalesced : 0,
          redisFailures: a && b ? b.redisFailures - a.redisFailures : 0,
        };
      }),
    };
  } finally {
    await cleanup.run();
  }
}

function stampedeTable(sh: Shared, results: readonly StampedeResult[]): Table {
  const rows: string[][] = [];
  const num = (x: number | null) => (x === null ? '-' : x.toFixed(2));
  for (const r of results) {
    for (const p of r.perProcess) {
      const f = p.figures;
      rows.push([
        `control ${r.mode}`,
        p.name.slice(-1),
        fmtInt(p.run.achievedRate),
        fmtMs(p.run.latency.p99),
        fmtInt(f.reads),
        f.meanPerS.toFixed(2),
        f.maxPerS.toFixed(1),
        fmtInt(f.earlyRefreshes),
        fmtInt(p.coalesced),
        fmtInt(p.redisFailures),
        fmtInt(r.expiries),
        fmtInt(r.fills),
        num(f.readsPerExpiry),
        num(f.worstWindowReadsPerExpiry),
      ]);
    }
  }
  return {
    title:
      `Stampede: one link at ${fmtInt(sh.o.stampedeRate)}/s over two Hops for ${sh.o.stampedeS} s, ` +
      `L1 TTL ${STAMPEDE_L1_TTL_MS} ms, L2 TTL ${STAMPEDE_L2_TTL_MS} ms ±10%`,
    head: [
      'stampede',
      'Hop',
      'achieved/s',
      'p99 ms',
      'store reads',
      'mean/s',
      'max/s',
      'early refr.',
      'coalesced',
      'Redis fail',
      'expiries',
      'L2 fills',
      'reads/expiry',
      'worst sec',
    ],
    rows,
    note:
      "store reads: the process's hop_store_lookups_total over the run, scraped every second (mean/s and " +
      'max/s over those seconds). expiries: times the entry expired in Redis (keyspace notifications; one ' +
      'already gone when the run began counts, one after the load ended does not), shared ' +
      'by both processes; L2 fills: SETs of the entry by either (one per store read). Redis fail: commands ' +
      'that failed or timed out (HOP_REDIS_TIMEOUT_MS), each a miss and so a store read without an expiry. reads/expiry: (store reads - early refreshes) / expiries; worst sec: the same in the ' +
      `worst one-second window (a window without an expiry counts as one). Target with control on: at most ` +
      `${STAMPEDE_TARGET} per process per expiry.`,
  };
}

// ---------------------------------------------------------------------------------------------
// 3. A scan of unknown codes, negative caching on vs off

interface ScanResult {
  codes: number;
  negativeTtlMs: number;
  run: RunResult;
  storeReads: number;
  storePerS: number;
  maxPerS: number;
  /** Store reads the cycle allows at the rate achieved, over the run's time (see cyclicScanStoreReads). */
  expectedPerS: number;
  watched: Watched;
}

async function scanPart(sh: Shared, verdicts: Verdicts): Promise<void> {
  const known = new Set(sh.codes);
  const results: ScanResult[] = [];
  let seed = 9001;
  for (const size of sh.o.scanCodes) {
    const pair: ScanResult[] = [];
    for (const ttl of [NEGATIVE_TTL_MS, 0]) {
      // Codes of their own per run (another seed), none of them a link.
      const scan = randomCodes(size + 100, 7, seed++)
        .filter((c) => !known.has(c))
        .slice(0, size);
      pair.push(await scanRun(sh, ttl, scan));
    }
    const on = pair.find((r) => r.negativeTtlMs > 0);
    const off = pair.find((r) => r.negativeTtlMs === 0);
    if (on !== undefined && off !== undefined) {
      verdicts.scan.push({ codes: size, on: on.storePerS, off: off.storePerS });
    }
    results.push(...pair);
  }
  sh.report.data.scan = results.map((r) => ({
    codes: r.codes,
    negativeTtlMs: r.negativeTtlMs,
    storeReads: r.storeReads,
    storePerS: r.storePerS,
    maxPerS: r.maxPerS,
    expectedPerS: r.expectedPerS,
    achieved: r.run.achievedRate,
    p99: r.run.latency.p99,
  }));
  sh.report.tables.push(scanTable(sh, results));
}

async function scanRun(sh: Shared, negativeTtlMs: number, scan: readonly string[]): Promise<ScanResult> {
  const { ctx, o, report } = sh;
  const cleanup = new Cleanup();
  try {
    const name = `scan of ${scan.length}, negative cache ${negativeTtlMs} ms`;
    const t = await startTierHop(sh, cleanup, name, {
      ...onStore(sh),
      ...onRedis(sh),
      HOP_NEGATIVE_CACHE_TTL_MS: String(negativeTtlMs),
    });
    const problem = await checkRedirect(t.sut, sh.codes[0]!, linkUrl(0));
    if (problem !== null) throw new Error(problem);
    // Warmed on real links (JIT), so that the scan itself starts with no negative entry cached.
    await warmServer(ctx, t.sut, redirectRequests(sh.codes, 'zipf'));
    const paths = scan.map((c) => `/${c}`);
    const request: RequestFactory = (i) => ({ method: 'GET', path: paths[i % paths.length]!, expect: 404 });
    const samples: { at: number; reads: number }[] = [];
    const sample = async () => {
      const c = await readTierCounts(t.sut.target);
      if (c !== null) samples.push({ at: performance.now(), reads: c.storeLookups });
    };
    await sample();
    let running = true;
    const sampler = (async () => {
      for (let i = 0; running && i < o.durationS + 30; i++) {
        await new Promise((r) => setTimeout(r, 1000));
        if (running) await sample();
      }
    })();
    ctx.log(`scan: ${paths.length} unknown codes cycled at ${o.scanRate}/s for ${o.durationS}s (${name})`);
    // No warm-up phase: it would fill the negative cache before the window opens.
    const before = await sampleBefore(sh, t);
    const r = await openLoop({ ...ctx, warmupS: 0 }, t.sut, request, o.scanRate, o.durationS);
    r.label = name;
    const watched = await sampleAfter(sh, t, before, r, name, 'uniform');
    running = false;
    await sampler;
    await sample();
    report.runs.push(r);
    const first = samples[0];
    const last = samples.at(-1);
    const storeReads = first === undefined || last === undefined ? 0 : last.reads - first.reads;
    let maxPerS = 0;
    for (let i = 1; i < samples.length; i++) {
      const dt = (samples[i]!.at - samples[i - 1]!.at) / 1000;
      if (dt > 0) maxPerS = Math.max(maxPerS, (samples[i]!.reads - samples[i - 1]!.reads) / dt);
    }
    // Behind an overloaded server requests are answered at the achieved rate, not the one asked for,
    // and a code comes back that much later: the expectation follows what happened.
    const expected = cyclicScanStoreReads(paths.length, r.achievedRate, r.elapsedS, negativeTtlMs);
    return {
      codes: paths.length,
      negativeTtlMs,
      run: r,
      storeReads,
      storePerS: storeReads / Math.max(1e-9, r.elapsedS),
      maxPerS,
      expectedPerS: expected.storeReads / Math.max(1e-9, r.elapsedS),
      watched,
    };
  } finally {
    await cleanup.run();
  }
}

function scanTable(sh: Shared, results: readonly ScanResult[]): Table {
  return {
    title:
      `Scans of unknown codes, each set cycled, at ${fmtInt(sh.o.scanRate)}/s open-loop for ` +
      `${sh.o.durationS} s: one Hop with L1+L2`,
    head: [
      'codes',
      'negative cache',
      'requests',
      'achieved/s',
      'p50 ms',
      'p99 ms',
      '404s',
      'other',
      'store reads',
      'store reads/s',
      'max/s',
      'expected/s',
      'Hop cores',
      'PG cores',
      '>= 85% of budget',
    ],
    rows: results.map((r) => [
      fmtInt(r.codes),
      r.negativeTtlMs > 0 ? `${r.negativeTtlMs} ms` : 'off (0)',
      fmtInt(r.run.scheduled),
      fmtInt(r.run.achievedRate),
      fmtMs(r.run.latency.p50),
      fmtMs(r.run.latency.p99),
      fmtInt(r.run.statusCounts['404'] ?? 0),
      fmtInt(r.run.unexpected + r.run.errorCount),
      fmtInt(r.storeReads),
      fmtInt(r.storePerS),
      fmtInt(r.maxPerS),
      fmtInt(r.expectedPerS),
      r.watched.serverCores === null ? 'n/a' : r.watched.serverCores.toFixed(2),
      r.watched.pgCores === null ? 'n/a' : r.watched.pgCores.toFixed(2),
      saturatedText(cpuParts(sh, r.watched)),
    ]),
    note:
      `store reads: hop_store_lookups_total over the run (max/s: the busiest second). expected/s: what the ` +
      `cycle allows one process with only its L1 negative entries at the achieved rate (each code read ` +
      `again once its ${NEGATIVE_TTL_MS} ms entry has gone; every request with the cache off): once Hop ` +
      'answers slower than asked, a code comes back later and a set whose cycle outlasts the TTL is never ' +
      'hit. other: ' +
      'answers other than 404 (a 503 is the store bulkhead refusing) and errors, timeouts included. The last ' +
      'column names the parts at 85 % of their CPU budget or more (Hop, PostgreSQL, Redis, generator, machine).',
  };
}

// ---------------------------------------------------------------------------------------------
// 4. Invalidation delay across two processes

async function invalidationPart(sh: Shared, verdicts: Verdicts): Promise<void> {
  const { ctx, o, codes, report } = sh;
  const cleanup = new Cleanup();
  try {
    const env = { ...onStore(sh), ...onRedis(sh) };
    const a = await startTierHop(sh, cleanup, 'invalidation A', env);
    const b = await startTierHop(sh, cleanup, 'invalidation B', env);
    const connA = new HttpConnection(a.sut.target, { keepHeaders: true, keepBody: true });
    const connB = new HttpConnection(b.sut.target, { keepHeaders: true });
    cleanup.add(async () => {
      connA.close();
      connB.close();
    });
    const delays: number[] = [];
    // B's answer time from its L1 before each change: the floor under any measured delay.
    const roundTrips: number[] = [];
    let missed = 0;
    let freshAtFirstPoll = 0;
    let failures = 0;
    ctx.log(`invalidation: ${o.invalidations} changes through A, each polled on B every ~${POLL_MS} ms`);
    for (let i = 0; i < o.invalidations; i++) {
      const index = (100 + i) % codes.length;
      const code = codes[index]!;
      const oldUrl = linkUrl(index);
      const newUrl = `https://example.com/moved/${i}`;
      // Twice: the first load fills B's L1, the second must be served from it.
      let ok = true;
      for (let k = 0; k < 2 && ok; k++) {
        const sent = performance.now();
        ok = (await send(connB, get(code))).headers?.location === oldUrl;
        if (k === 1) roundTrips.push(performance.now() - sent);
      }
      if (!ok) {
        failures++;
        continue;
      }
      const patched = await send(connA, {
        method: 'PATCH',
        path: `/api/v1/links/${code}`,
        headers: { authorization: `Bearer ${sh.apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ url: newUrl }),
      });
      const t0 = performance.now();
      if (patched.status !== 200) {
        failures++;
        if (failures === 1) report.notes.push(`invalidation: PATCH answered ${patched.status}`);
        continue;
      }
      let seen: number | null = null;
      for (let poll = 0; performance.now() - t0 < INVALIDATION_GIVE_UP_MS; poll++) {
        const res = await send(connB, get(code));
        if (res.headers?.location === newUrl) {
          seen = performance.now() - t0;
          if (poll === 0) freshAtFirstPoll++;
          break;
        }
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
      if (seen === null) missed++;
      else delays.push(seen);
    }
    const s = summarizeDelays(delays);
    if (s !== null) {
      verdicts.invalidation = { p99: s.p99, missed, met: missed === 0 && s.p99 < INVALIDATION_TARGET_MS };
    }
    const rtt = summarizeDelays(roundTrips);
    report.data.invalidation = { summary: s, missed, failures, freshAtFirstPoll, delays, roundTrip: rtt };
    report.tables.push({
      title:
        'Invalidation delay: PATCH through Hop A, then poll Hop B (the old URL in its L1) for the new URL',
      head: [
        'changes',
        'seen',
        'missed (> 5 s)',
        'new at first poll',
        'p50 ms',
        'p99 ms',
        'max ms',
        'B GET p50 / p99 ms',
      ],
      rows: [
        [
          fmtInt(o.invalidations),
          fmtInt(delays.length),
          fmtInt(missed),
          fmtInt(freshAtFirstPoll),
          s === null ? '-' : fmtMs(s.p50),
          s === null ? '-' : fmtMs(s.p99),
          s === null ? '-' : fmtMs(s.max),
          rtt === null ? '-' : `${fmtMs(rtt.p50)} / ${fmtMs(rtt.p99)}`,
        ],
      ],
      note:
        "From the PATCH response's arrival to the arrival of B's first answer with the new URL, B polled on " +
        `one keep-alive connection with ${POLL_MS} ms between polls (so the figure is an upper bound, to about ` +
        "a poll). B GET: one request answered from B's L1 before each change, the floor under any delay " +
        'measured this way. A change already new at the first poll reached B (Redis pub/sub) before the ' +
        "bench's next request did: its figure is B's reload (the L2 entry deleted, so from the store) and the " +
        'round trip, not the propagation. Both processes otherwise idle; nearest-rank percentiles.',
    });
    if (failures > 0) report.notes.push(`invalidation: ${failures} changes could not be set up or made`);
  } finally {
    await cleanup.run();
  }
}

function get(code: string): RequestSpec {
  return { method: 'GET', path: `/${code}` };
}

/** One request on a kept-alive connection, with a timeout. */
function send(conn: HttpConnection, spec: RequestSpec, timeoutMs = 5000): Promise<ParsedResponse> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => conn.expire(Number.POSITIVE_INFINITY, 0), timeoutMs);
    conn.send(
      encodeRequest(spec, conn.hostHeader),
      (err, res) => {
        clearTimeout(timer);
        if (err !== null) reject(err);
        else resolve(res!);
      },
      performance.now(),
    );
  });
}

// ---------------------------------------------------------------------------------------------
// Targets

export function targetsTable(v: Verdicts, parts: readonly RedisTierPart[]): Table {
  const ratio = (x: RatioFigures | null | undefined) =>
    x === null || x === undefined
      ? ['-', metText(null)]
      : [
          `${x.ratio.toFixed(2)}x` +
            (x.medianRatio === null ? '' : ` (medians ${x.medianRatio.toFixed(2)}x)`),
          metText(x.met),
        ];
  const rows: string[][] = [];
  if (parts.includes('throughput')) {
    rows.push([
      `L1+L2 on Zipf >= ${HOT_PATH_TARGET} x the embedded hot path (max req/s)`,
      ...ratio(v.hotPath),
    ]);
    for (const dist of ['uniform', 'zipf'] as const) {
      rows.push([`L2 only >= ${L2_TARGET} x node:http + Redis, ${dist} (max req/s)`, ...ratio(v.l2[dist])]);
    }
    for (const c of v.costs) {
      const target = c.b === EMBEDDED ? HOT_PATH_TARGET : L2_TARGET;
      rows.push([
        `  the same by CPU per redirect: ${c.a} vs ${c.b}, ${c.dist}`,
        `${c.ratio.toFixed(2)}x (${c.aUs.toFixed(1)} vs ${c.bUs.toFixed(1)} µs)`,
        metText(Number.isFinite(c.ratio) ? c.ratio >= target : null),
      ]);
    }
  }
  if (parts.includes('stampede')) {
    rows.push([
      `stampede control on: <= ${STAMPEDE_TARGET} store read per process per expiry`,
      v.stampede?.worst === null || v.stampede === null
        ? '-'
        : `${v.stampede.worst.toFixed(2)} (worst process)`,
      metText(v.stampede?.met ?? null),
    ]);
  }
  if (parts.includes('scan')) {
    if (v.scan.length === 0) rows.push(['scan store reads/s, negative cache on vs off', '-', metText(null)]);
    for (const x of v.scan) {
      rows.push([
        `scan of ${fmtInt(x.codes)} codes: store reads/s, negative cache on vs off (no figure in the issue)`,
        `${fmtInt(x.on)} vs ${fmtInt(x.off)}/s` + (x.off > 0 ? ` (${(x.on / x.off).toFixed(2)}x)` : ''),
        'reported',
      ]);
    }
  }
  if (parts.includes('invalidation')) {
    rows.push([
      `invalidation delay p99 < ${INVALIDATION_TARGET_MS} ms across two processes, none missed`,
      v.invalidation === null
        ? '-'
        : `${fmtMs(v.invalidation.p99)} ms${v.invalidation.missed > 0 ? `, ${v.invalidation.missed} missed` : ''}`,
      metText(v.invalidation?.met ?? null),
    ]);
  }
  return {
    title: 'Targets (issue "The Redis tier", Measured)',
    head: ['target', 'measured', 'verdict'],
    rows,
    note:
      "A capacity ratio is judged on each system's best probe (noise only lowers capacity); the ratio of " +
      'their median probes is shown beside it: where the two disagree about the target, the run decides nothing.',
    align: 'lrl',
  };
}
