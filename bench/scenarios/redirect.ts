// The redirect scenario: Hop's hot path against a bare node:http baseline doing the same lookup
// (a Map when Hop's cache is on, PGlite when it is off), for capacity and for p99 at a fixed rate.
import { join } from 'node:path';
import { importLinks } from '../lib/hop-process.ts';
import { type Distribution, indexSampler, linkUrl, randomApiKey } from '../lib/links.ts';
import type { RequestFactory } from '../lib/load.ts';
import type { RunResult } from '../lib/recorder.ts';
import {
  fmtInt,
  fmtKb,
  fmtMs,
  fmtPct,
  fmtRatio,
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
  openLoop,
  type Sut,
  seedLinksFile,
  startBaseline,
  startHopSut,
  touchEveryLink,
  warmServer,
} from './common.ts';

export interface RedirectOptions {
  links: number;
  dist: Distribution;
  cache: boolean;
  baseline: boolean;
  /** Seconds of each open-loop run. */
  durationS: number;
  /** Seconds of each closed-loop capacity probe. */
  probeS: number;
  rounds: number;
  /** Fixed open-loop rate; by default half the baseline's (or, alone, Hop's) capacity. */
  rate: number | null;
}

export function redirectRequests(codes: readonly string[], dist: Distribution): RequestFactory {
  const paths = codes.map((c) => `/${c}`);
  const next = indexSampler(paths.length, dist);
  return () => ({ method: 'GET', path: paths[next()]!, expect: 'redirect' });
}

export async function runRedirect(ctx: BenchContext, o: RedirectOptions): Promise<ScenarioReport> {
  const report = newReport('redirect', {
    links: o.links,
    dist: o.dist,
    cache: o.cache ? 'on' : 'off',
    baseline: o.baseline ? (o.cache ? 'node:http + Map' : 'node:http + PGlite') : 'none',
    probeS: o.probeS,
    durationS: o.durationS,
    rounds: o.rounds,
    connections: ctx.connections,
    warmupS: ctx.warmupS,
    serverWarmupS: ctx.serverWarmupS,
  });
  const cleanup = new Cleanup();
  try {
    const { dir, codes, linksFile } = await seedLinksFile(cleanup, o.links);
    const request = redirectRequests(codes, o.dist);

    const suts: Sut[] = [];
    let hopError: string | null = null;
    try {
      const setup = {
        dataDir: join(dir, 'hop-data'),
        apiKey: randomApiKey(),
        env: { ...(o.cache ? {} : { HOP_CACHE_SIZE: '0' }), ...ctx.hopEnv },
        verbose: ctx.verbose,
      };
      ctx.log(`importing ${fmtInt(o.links)} links into Hop`);
      const imported = await importLinks(setup, linksFile, o.links);
      report.data.import = imported;
      ctx.log(`imported in ${(imported.ms / 1000).toFixed(1)} s (${fmtInt(imported.linksPerS)} links/s)`);
      const hop = await startHopSut(setup);
      cleanup.add(() => hop.stop());
      suts.push(hop);
    } catch (err) {
      hopError = `Hop could not be benchmarked: ${err instanceof Error ? err.message : String(err)}`;
      report.notes.push(hopError);
      ctx.log(hopError);
    }
    if (o.baseline) {
      const kind = o.cache ? 'map' : 'pglite';
      ctx.log(`starting baseline-${kind} with ${fmtInt(o.links)} links`);
      const base = await startBaseline(kind, linksFile, ctx.verbose);
      cleanup.add(() => base.stop());
      suts.push(base);
    }
    const working: Sut[] = [];
    for (const sut of suts) {
      const problem = await checkRedirect(sut, codes[0]!, linkUrl(0));
      if (problem === null) {
        if (o.cache) await touchEveryLink(ctx, sut, codes);
        await warmServer(ctx, sut, request);
        working.push(sut);
      } else report.notes.push(`${problem}; not loaded.`);
    }
    if (working.length === 0) {
      report.notes.push('Nothing to measure.');
      return report;
    }

    const probes = await alternateProbes(ctx, working, request, o, report);
    const hopMax = best(probes.get('hop') ?? []);
    const baseName = working.find((s) => s.name !== 'hop')?.name;
    const baseMax = baseName === undefined ? undefined : best(probes.get(baseName) ?? []);
    const reference = baseMax ?? hopMax!;
    const rate = o.rate ?? Math.max(1, Math.floor(reference.achievedRate / 2));
    report.settings.openLoopRate = rate;

    const comparisons: Comparison[] = [await compareAt(ctx, working, request, rate, o.durationS, report)];
    // Past its capacity Hop's open-loop latency is just the queue growing; a second rate that Hop can
    // carry gives a latency comparison that means something.
    if (
      hopMax !== undefined &&
      baseMax !== undefined &&
      o.rate === null &&
      hopMax.achievedRate < rate * 1.1
    ) {
      const hopRate = Math.max(1, Math.floor(hopMax.achievedRate / 2));
      ctx.log(`Hop's capacity is below the fixed rate; also comparing at half Hop's max (${hopRate}/s)`);
      comparisons.push(await compareAt(ctx, working, request, hopRate, o.durationS, report));
    }
    report.tables.push(summaryTable(hopMax, baseMax, comparisons, baseMax === undefined));
    report.tables.push(runsTable(report.runs));
    report.data.summary = {
      hopMaxRate: hopMax?.achievedRate ?? null,
      baselineMaxRate: baseMax?.achievedRate ?? null,
      fixedRates: comparisons.map((c) => ({
        rate: c.rate,
        hopP99: c.hop?.latency.p99 ?? null,
        baselineP99: c.base?.latency.p99 ?? null,
      })),
    };
    for (const r of report.runs) noteTrouble(report, r);
    return report;
  } finally {
    await cleanup.run();
  }
}

/** Errors and wrong answers go into the notes: a fast run of 404s is not a fast redirect. */
export function noteTrouble(report: ScenarioReport, r: RunResult): void {
  const where = `${r.label} ${r.mode}${r.targetRate === null ? '' : ` @ ${fmtInt(r.targetRate)}/s`}`;
  if (r.errorCount > 0) report.notes.push(`${where}: ${r.errorCount} errors ${JSON.stringify(r.errors)}`);
  if (r.unexpected > 0) {
    const what = r.expectation === '3xx' ? 'non-redirect answers' : `answers other than ${r.expectation}`;
    report.notes.push(`${where}: ${r.unexpected} ${what}; statuses ${JSON.stringify(r.statusCounts)}`);
  }
  if (r.unfinished > 0) report.notes.push(`${where}: ${r.unfinished} requests unfinished at the deadline`);
  if (r.targetRate !== null && r.achievedRate < r.targetRate * 0.95) {
    report.notes.push(
      `${where}: achieved only ${fmtInt(r.achievedRate)}/s; the server (or the generator) could not keep up.`,
    );
  }
  if (r.generator.lag !== null && r.generator.lag.p99 > 5) {
    report.notes.push(
      `${where}: the generator itself ran late (lag p99 ${fmtMs(r.generator.lag.p99)} ms); latencies include that.`,
    );
  }
}

interface Comparison {
  rate: number;
  hop: RunResult | undefined;
  base: RunResult | undefined;
}

async function compareAt(
  ctx: BenchContext,
  suts: Sut[],
  request: RequestFactory,
  rate: number,
  durationS: number,
  report: ScenarioReport,
): Promise<Comparison> {
  const c: Comparison = { rate, hop: undefined, base: undefined };
  for (const sut of suts) {
    const r = await openLoop(ctx, sut, request, rate, durationS);
    report.runs.push(r);
    if (sut.name === 'hop') c.hop = r;
    else c.base = r;
  }
  return c;
}

function summaryTable(
  hopMax: RunResult | undefined,
  baseMax: RunResult | undefined,
  comparisons: Comparison[],
  hopOnly: boolean,
): Table {
  const cell = (r: RunResult | undefined, f: (r: RunResult) => string) => (r === undefined ? '-' : f(r));
  const ratio = (a: RunResult | undefined, b: RunResult | undefined, f: (r: RunResult) => number) =>
    a === undefined || b === undefined ? '-' : fmtRatio(f(a), f(b));
  const rows: string[][] = [
    [
      'max throughput, closed-loop (req/s)',
      cell(hopMax, (r) => fmtInt(r.achievedRate)),
      cell(baseMax, (r) => fmtInt(r.achievedRate)),
      ratio(hopMax, baseMax, (r) => r.achievedRate),
    ],
  ];
  const pct: [string, (r: RunResult) => number][] = [
    ['p50', (r) => r.latency.p50],
    ['p90', (r) => r.latency.p90],
    ['p99', (r) => r.latency.p99],
    ['p99.9', (r) => r.latency.p999],
    ['max', (r) => r.latency.max],
    ['p99 service time (from actual send)', (r) => r.serviceTime.p99],
  ];
  comparisons.forEach(({ rate, hop, base }, i) => {
    const why = i === 0 ? (hopOnly ? "half Hop's max" : "half the baseline's max") : "half Hop's max";
    rows.push([`open-loop @ ${fmtInt(rate)}/s (${why}):`, '', '', '']);
    for (const [name, f] of pct) {
      rows.push([
        `  ${name} (ms)`,
        cell(hop, (r) => fmtMs(f(r))),
        cell(base, (r) => fmtMs(f(r))),
        ratio(hop, base, f),
      ]);
    }
    const plain: [string, (r: RunResult) => string][] = [
      ['achieved rate (req/s)', (r) => fmtInt(r.achievedRate)],
      ['errors + non-redirect answers', (r) => String(r.errorCount + r.unexpected)],
      ['server CPU', (r) => fmtPct(r.server?.cpuPercent ?? null)],
      ['server RSS after', (r) => fmtKb(r.server?.rssKbAfter ?? null)],
      ['generator CPU', (r) => fmtPct(r.generator.cpuPercent)],
      ['generator schedule lag p99 / max (ms)', lagText],
    ];
    for (const [name, f] of plain) rows.push([`  ${name}`, cell(hop, f), cell(base, f), '']);
  });
  return {
    title: 'Redirects: Hop vs baseline',
    head: ['', 'Hop', 'baseline', 'Hop/baseline'],
    rows,
    note:
      'Throughput ratio above 1 is better for Hop; latency ratio below 1 is better for Hop. Open-loop ' +
      'latency counts from the intended send time, so a server past its capacity shows its growing queue.',
  };
}

function lagText(r: RunResult): string {
  const lag = r.generator.lag;
  return lag === null ? '-' : `${fmtMs(lag.p99)} / ${fmtMs(lag.max)}`;
}
