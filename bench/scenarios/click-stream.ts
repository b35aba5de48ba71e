// The click-stream scenario (issue "Events at scale"), on one PostgreSQL primary and one Redis:
// 1. worker throughput: a backlog of clicks appended straight to the partitions, drained by one
//    `hop worker`, then (a new backlog) by two, each worker held to the same CPU budget;
// 2. redirects with the stream on vs click recording off, alternating closed-loop probes, each Hop
//    on the same budget, while no worker runs (the stream holds the clicks); then a worker writes
//    them all, an open-loop run on the stream-on Hop at half its max follows with the worker
//    writing, and the click-to-rollup delay comes from the worker's histogram over that run.
import { Redis } from 'ioredis';
import { startRedis, stopRedis } from '../../scripts/cluster/redis-servers.ts';
import {
  entryFields,
  MAX_EVENTS_PER_ENTRY,
  partitionKey,
  partitionOf,
} from '../../src/events/click-stream.ts';
import { uuid7 } from '../../src/events/uuid7.ts';
import { importIntoCluster } from '../lib/bench-cluster.ts';
import { bucketQuantile, readCounters } from '../lib/hop-metrics.ts';
import { type HopProcess, makeTempDir, removeDir, startHop } from '../lib/hop-process.ts';
import { requestOnce, type Target } from '../lib/http-client.ts';
import { type Distribution, indexSampler, linkUrl, randomApiKey } from '../lib/links.ts';
import { fmtInt, fmtMs, newReport, runsTable, type ScenarioReport } from '../lib/report.ts';
import { browserRedirects } from './clicks.ts';
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
  throttlingNote,
  warmServer,
} from './common.ts';
import { noteTrouble } from './redirect.ts';

export interface ClickStreamOptions {
  links: number;
  dist: Distribution;
  probeS: number;
  rounds: number;
  durationS: number;
  /** Clicks in each worker-throughput backlog. */
  backlog: number;
  /** Cores per Hop; null for none. */
  cpuQuota: number | null;
  /** Cores per worker; null for none. */
  workerCpuQuota: number | null;
}

const PARTITIONS = 4;

interface Shared {
  ctx: BenchContext;
  o: ClickStreamOptions;
  report: ScenarioReport;
  cleanup: Cleanup;
  env: Record<string, string>;
  apiKey: string;
  codes: string[];
  admin: Redis;
}

/** A Hop process (server or worker) in a CPU group of its own, stopped by the cleanup. */
async function startConfined(
  sh: Shared,
  name: string,
  command: 'serve' | 'worker',
  env: Record<string, string>,
  cores: number | null,
): Promise<{ sut: Sut; hop: HopProcess }> {
  const dataDir = await makeTempDir('hop-bench-stream');
  sh.cleanup.add(() => removeDir(dataDir));
  const hop = await startHop(
    { dataDir, apiKey: sh.apiKey, env: { ...sh.env, ...env, ...sh.ctx.hopEnv }, verbose: sh.ctx.verbose },
    60_000,
    command,
  );
  const sut: Sut = { name, target: hop.target, pid: hop.pid, stop: () => hop.stop() };
  const group = await confineSut(sh.ctx, sut, cores, `stream-${name}`, sh.report.notes);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (group !== null) {
      const t = await throttlingNote(group, name);
      if (t !== null) sh.report.notes.push(t);
    }
    await hop.stop();
    await group?.remove();
  };
  sh.cleanup.add(stop);
  return { sut: { ...sut, stop }, hop };
}

async function metricsText(target: Target): Promise<string> {
  const res = await requestOnce(target, { method: 'GET', path: '/metrics' }, 5_000);
  return res.body?.toString('utf8') ?? '';
}

function writtenClicks(text: string): number {
  let n = 0;
  for (const m of text.matchAll(/^hop_worker_clicks_total\{[^}]*result="written"[^}]*\} (\S+)$/gm))
    n += Number(m[1]);
  return n;
}

/** Waits (at most five minutes) until the worker has written every click the Hop recorded. */
async function drainRecorded(
  hop: Target,
  worker: Target,
): Promise<{ recorded: number; dropped: number; ms: number }> {
  const started = Date.now();
  const counters = await readCounters(hop, ['hop_clicks_recorded_total', 'hop_clicks_dropped_total']);
  const recorded = counters?.hop_clicks_recorded_total ?? 0;
  const dropped = counters?.hop_clicks_dropped_total ?? 0;
  let written = 0;
  while (Date.now() - started < 300_000) {
    written = writtenClicks(await metricsText(worker));
    if (written >= recorded) return { recorded, dropped, ms: Date.now() - started };
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`the worker wrote ${written} of ${recorded} recorded clicks in 300 s`);
}

function delayBuckets(text: string): { le: number; count: number }[] {
  const out: { le: number; count: number }[] = [];
  for (const m of text.matchAll(/^hop_click_to_rollup_seconds_bucket\{le="([^"]+)"\} (\S+)$/gm)) {
    out.push({ le: m[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(m[1]), count: Number(m[2]) });
  }
  return out;
}

/** Appends `clicks` synthetic clicks over the links as full entries, straight to the partitions. */
async function appendBacklog(sh: Shared, clicks: number): Promise<void> {
  const byPartition: string[][] = Array.from({ length: PARTITIONS }, () => []);
  const next = indexSampler(sh.codes.length, sh.o.dist);
  const now = Date.now();
  let left = clicks;
  const flush = async (p: number) => {
    const codes = byPartition[p]!;
    byPartition[p] = [];
    const events = codes.map((code, i) => ({
      id: uuid7(now),
      code,
      at: now - (i % 3_600) * 1_000,
      referrerHost: i % 3 === 0 ? 'news.example' : null,
      country: ['US', 'DE', 'NL', 'FR', 'JP'][i % 5]!,
      browser: ['Chrome', 'Firefox', 'Safari'][i % 3]!,
      os: ['Windows', 'macOS', 'Linux', 'Android'][i % 4]!,
      device: i % 4 === 3 ? 'mobile' : 'desktop',
      bot: i % 50 === 0,
      visitor: (i * 2_654_435_761).toString(16).padStart(16, '0').slice(-16),
    }));
    await sh.admin.xadd(partitionKey(p), '*', ...entryFields(uuid7(), events));
  };
  while (left-- > 0) {
    const code = sh.codes[next()]!;
    const p = partitionOf(code, PARTITIONS);
    byPartition[p]!.push(code);
    if (byPartition[p]!.length >= MAX_EVENTS_PER_ENTRY) await flush(p);
  }
  for (let p = 0; p < PARTITIONS; p++) if (byPartition[p]!.length > 0) await flush(p);
}

async function workerThroughput(
  sh: Shared,
  workers: number,
  backlog: number,
): Promise<{ clicksPerS: number; seconds: number }> {
  const { ctx, o } = sh;
  ctx.log(`worker throughput: appending a backlog of ${fmtInt(backlog)} clicks for ${workers} worker(s)`);
  await appendBacklog(sh, backlog);
  const started = performance.now();
  const procs = [];
  for (let i = 0; i < workers; i++) {
    procs.push(await startConfined(sh, `worker ${i + 1} of ${workers}`, 'worker', {}, o.workerCpuQuota));
  }
  // Timed from the first written batch: starting a worker (connecting, migrations checked, joining
  // the group) is not throughput.
  const deadline = started + 600_000;
  let written = 0;
  let first: { at: number; written: number } | null = null;
  while (written < backlog && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    written = 0;
    for (const p of procs) written += writtenClicks(await metricsText(p.sut.target));
    if (first === null && written > 0) first = { at: performance.now(), written };
  }
  const seconds = (performance.now() - (first?.at ?? started)) / 1000;
  const clicksPerS = (written - (first?.written ?? 0)) / seconds;
  for (const p of procs) await p.sut.stop();
  if (written < backlog)
    sh.report.notes.push(`${workers} worker(s): only ${fmtInt(written)} clicks written in 600 s`);
  return { clicksPerS, seconds };
}

export async function runClickStream(ctx: BenchContext, o: ClickStreamOptions): Promise<ScenarioReport> {
  const report = newReport('click-stream', {
    links: o.links,
    dist: o.dist,
    probeS: o.probeS,
    rounds: o.rounds,
    durationS: o.durationS,
    backlog: o.backlog,
    partitions: PARTITIONS,
    cpuQuota: o.cpuQuota === null ? 'none' : `${o.cpuQuota} cores per Hop`,
    workerCpuQuota: o.workerCpuQuota === null ? 'none' : `${o.workerCpuQuota} cores per worker`,
  });
  const cleanup = new Cleanup();
  try {
    const { codes, linksFile } = await seedLinksFile(cleanup, o.links);
    const apiKey = randomApiKey();
    const bc = await oneShardCluster(ctx, cleanup);
    ctx.log('starting one Redis server');
    const redis = await startRedis({ mode: 'single' });
    cleanup.add(() => stopRedis(redis));
    const admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    admin.on('error', () => {});
    cleanup.add(async () => admin.disconnect());
    const importDir = await makeTempDir('hop-bench-stream-import');
    cleanup.add(() => removeDir(importDir));
    ctx.log(`importing ${fmtInt(o.links)} links into PostgreSQL with hop import`);
    await importIntoCluster(
      bc,
      { dataDir: importDir, apiKey, env: {}, verbose: ctx.verbose },
      linksFile,
      o.links,
    );
    const env = {
      HOP_DATABASE_URLS: bc.urls,
      HOP_REDIS_URL: redis.url,
      HOP_CLICK_STREAM_PARTITIONS: String(PARTITIONS),
    };
    const sh: Shared = { ctx, o, report, cleanup, env, apiKey, codes, admin };

    // 1. Worker throughput, 1 vs 2 workers, each draining a backlog of its own: an untimed drain
    // first (so every run updates rollup rows that exist, rather than the first inserting them),
    // then 1, 2, 1, 2 workers in turn, so that drift in the machine hits both alike.
    await workerThroughput(sh, 1, Math.max(1, Math.floor(o.backlog / 4)));
    const runs = new Map<number, { clicksPerS: number; seconds: number }[]>([
      [1, []],
      [2, []],
    ]);
    for (const n of [1, 2, 1, 2]) runs.get(n)!.push(await workerThroughput(sh, n, o.backlog));
    const bestOf = (n: number) => Math.max(...runs.get(n)!.map((r) => r.clicksPerS));
    report.data.workers = Object.fromEntries(runs);
    report.tables.push({
      title: 'Worker throughput: a backlog of clicks in the stream, drained into rollups',
      head: ['workers', 'clicks per run', 'clicks/s, each run', 'best', 'vs 1 worker'],
      rows: [1, 2].map((n) => [
        String(n),
        fmtInt(o.backlog),
        runs
          .get(n)!
          .map((r) => `${fmtInt(r.clicksPerS)} (${r.seconds.toFixed(1)} s)`)
          .join(' / '),
        fmtInt(bestOf(n)),
        `${(bestOf(n) / bestOf(1)).toFixed(2)}x`,
      ]),
      note:
        `Each worker held to ${o.workerCpuQuota ?? 'no'} cores; PostgreSQL and Redis unconfined. Runs in the order 1, 2, 1, 2 ` +
        'workers after an untimed drain of a quarter backlog. A run is timed from the first written batch (polled every ' +
        '100 ms) until hop_worker_clicks_total{result="written"} of its workers adds up to its backlog. Entries of ' +
        `${fmtInt(MAX_EVENTS_PER_ENTRY)} clicks over ${fmtInt(o.links)} links (${o.dist}).`,
    });

    // 2. Redirects with the stream on vs recording off, as browsers send them (user agents, referrers,
    // client addresses through a trusted proxy), so the stream-on Hop enriches as in production.
    // No worker runs during the probes: the stream holds the clicks, as it does while the workers
    // (and the database) are on other machines; here they would share the Hops' two cores. The
    // worker then writes every recorded click before the open-loop run.
    const trusted = { HOP_TRUST_PROXY: '127.0.0.1' };
    const on = await startConfined(
      sh,
      'stream on',
      'serve',
      { ...trusted, HOP_CLICK_PIPELINE: 'stream' },
      o.cpuQuota,
    );
    const off = await startConfined(
      sh,
      'recording off',
      'serve',
      { ...trusted, HOP_CLICK_RECORDING: 'off' },
      o.cpuQuota,
    );
    for (const s of [on, off]) {
      const problem = await checkRedirect(s.sut, codes[0]!, linkUrl(0));
      if (problem !== null) throw new Error(`${s.sut.name}: ${problem}`);
    }
    const request = browserRedirects(codes, o.dist);
    for (const s of [on, off]) await warmServer(ctx, s.sut, request);
    const probes = await alternateProbes(ctx, [on.sut, off.sut], request, o, report);
    const maxOn = best(probes.get(on.sut.name) ?? [])?.achievedRate ?? 0;
    const maxOff = best(probes.get(off.sut.name) ?? [])?.achievedRate ?? 0;
    const worker = await startConfined(sh, 'worker', 'worker', {}, o.workerCpuQuota);
    const drained = await drainRecorded(on.sut.target, worker.sut.target);
    ctx.log(
      `the worker wrote all ${fmtInt(drained.recorded)} clicks the probes recorded (${fmtInt(drained.dropped)} dropped) in ${(drained.ms / 1000).toFixed(1)} s`,
    );
    const rate = Math.max(1, Math.round(maxOn / 2));
    const before = delayBuckets(await metricsText(worker.sut.target));
    const openRun = await openLoop(ctx, on.sut, request, rate, o.durationS);
    report.runs.push(openRun);
    // Let the worker write what the run left in the stream before reading the delay.
    await new Promise((r) => setTimeout(r, 3_000));
    const after = delayBuckets(await metricsText(worker.sut.target));
    const delta = after.map((b, i) => ({ le: b.le, count: b.count - (before[i]?.count ?? 0) }));
    const q = (x: number) => {
      const v = bucketQuantile(delta, x);
      return v === null ? '-' : `${v.overflow ? '>' : ''}${fmtMs(v.seconds * 1000)}`;
    };
    report.data.redirects = { maxOn, maxOff, rate, delayP50: q(0.5), delayP99: q(0.99), drained };
    report.tables.push({
      title: 'Redirects with the click stream on vs click recording off (closed-loop max, alternating)',
      head: [
        'system',
        'max req/s',
        'ratio',
        'open-loop rate',
        'p99 (open-loop)',
        'click-to-rollup p50',
        'p99',
      ],
      rows: [
        ['recording off', fmtInt(maxOff), '1.00x', '-', '-', '-', '-'],
        [
          'stream on',
          fmtInt(maxOn),
          `${(maxOn / Math.max(1, maxOff)).toFixed(2)}x`,
          fmtInt(rate),
          fmtMs(openRun.latency.p99),
          q(0.5),
          q(0.99),
        ],
      ],
      note:
        `Each Hop held to ${o.cpuQuota ?? 'no'} cores, the worker to ${o.workerCpuQuota ?? 'no'}. "stream on" enriches ` +
        'every click (user agent, bot, GeoIP country, visitor hash) and appends it to Redis (HOP_CLICK_PIPELINE=stream); ' +
        '"recording off" does neither. Requests carry browser user agents, referrers and 20,000 client addresses ' +
        'through a trusted proxy. No worker runs during the closed-loop probes (the stream holds the clicks, as while the ' +
        `workers and database are elsewhere); then one drained all ${fmtInt(drained.recorded)} recorded clicks ` +
        `(${fmtInt(drained.dropped)} dropped) and kept writing through the open-loop run. Click-to-rollup: ` +
        "the worker's hop_click_to_rollup_seconds over the open-loop run (from each click's time to its rollup commit; " +
        'HOP_CLICK_FLUSH_MS, 1 s, is most of it), interpolated within histogram buckets.',
    });
    report.tables.push(runsTable(report.runs));
    for (const r of report.runs) noteTrouble(report, r);
    return report;
  } finally {
    await cleanup.run();
  }
}
