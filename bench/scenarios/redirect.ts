// The redirect scenario: Hop's hot path against a bare node:http baseline doing the same lookup
// (a Map when Hop's cache is on, PGlite when it is off), for capacity and for p99 at a fixed rate.
import { join } from 'node:path';
import { importLinks, makeTempDir, removeDir } from '../lib/hop-process.ts';
import { type Distribution, indexSampler, linkUrl, randomApiKey, randomCodes, writeLinksJsonl } from '../lib/links.ts';
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
  type BenchContext,
  best,
  checkRedirect,
  Cleanup,
  closedLoop,
  openLoop,
  type Sut,
  startBaseline,
  startHopSut,
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
  });
  const cleanup = new Cleanup();
  try {
    const dir = await makeTempDir('hop-bench');
    cleanup.add(() => removeDir(dir));
    const codes = randomCodes(o.links);
    const linksFile = join(dir, 'links.jsonl');
    await writeLinksJsonl(linksFile, codes);
    const request = redirectRequests(codes, o.dist);

    const suts: Sut[] = [];
    let hopError: string | null = null;
    try {
      const setup = {
        dataDir: join(dir, 'hop-data'),
        apiKey: randomApiKey(),
        env: o.cache ? {} : { HOP_CACHE_SIZE: '0' },
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
      if (problem === null) working.push(sut);
      else report.notes.push(`${problem}; not loaded.`);
    }
    if (working.length === 0) {
      report.notes.push('Nothing to measure.');
      return report;
    }

    // Capacity: alternate the servers round by round, so drift in the machine hits both alike.
    const probes = new Map<string, RunResult[]>();
    for (let round = 0; round < o.rounds; round++) {
      const order = round % 2 === 0 ? working : [...working].reverse();
      for (const sut of order) {
        const r = await closedLoop(ctx, sut, request, o.probeS);
        report.runs.push(r);
        probes.set(sut.name, [...(probes.get(sut.name) ?? []), r]);
      }
    }
    const hopMax = best(probes.get('hop') ?? []);
    const baseName = working.find((s) => s.name !== 'hop')?.name;
    const baseMax = baseName === undefined ? undefined : best(probes.get(baseName) ?? []);
    const reference = baseMax ?? hopMax!;
    const rate = o.rate ?? Math.max(1, Math.floor(reference.achievedRate / 2));
    report.settings.openLoopRate = rate;

    const fixed = new Map<string, RunResult>();
    for (const sut of working) {
      const r = await openLoop(ctx, sut, request, rate, o.durationS);
      report.runs.push(r);
      fixed.set(sut.name, r);
    }

    const baseFixed = baseName === undefined ? undefined : fixed.get(baseName);
    report.tables.push(summaryTable(rate, hopMax, baseMax, fixed.get('hop'), baseFixed));
    report.tables.push(runsTable(report.runs));
    report.data.summary = {
      rate,
      hopMaxRate: hopMax?.achievedRate ?? null,
      baselineMaxRate: baseMax?.achievedRate ?? null,
      hopP99: fixed.get('hop')?.latency.p99 ?? null,
      baselineP99: baseFixed?.latency.p99 ?? null,
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

function summaryTable(
  rate: number,
  hopMax: RunResult | undefined,
  baseMax: RunResult | undefined,
  hopFixed: RunResult | undefined,
  base: RunResult | undefined,
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
  ];
  for (const [name, f] of pct) {
    rows.push([
      `${name} @ ${fmtInt(rate)}/s, open-loop (ms)`,
      cell(hopFixed, (r) => fmtMs(f(r))),
      cell(base, (r) => fmtMs(f(r))),
      ratio(hopFixed, base, f),
    ]);
  }
  rows.push(
    [
      'achieved rate, open-loop (req/s)',
      cell(hopFixed, (r) => fmtInt(r.achievedRate)),
      cell(base, (r) => fmtInt(r.achievedRate)),
      '',
    ],
    [
      'errors + non-redirect answers',
      cell(hopFixed, (r) => String(r.errorCount + r.unexpected)),
      cell(base, (r) => String(r.errorCount + r.unexpected)),
      '',
    ],
    [
      'server CPU, open-loop',
      cell(hopFixed, (r) => fmtPct(r.server?.cpuPercent ?? null)),
      cell(base, (r) => fmtPct(r.server?.cpuPercent ?? null)),
      '',
    ],
    [
      'server RSS after load',
      cell(hopFixed, (r) => fmtKb(r.server?.rssKbAfter ?? null)),
      cell(base, (r) => fmtKb(r.server?.rssKbAfter ?? null)),
      '',
    ],
    [
      'generator CPU, open-loop',
      cell(hopFixed, (r) => fmtPct(r.generator.cpuPercent)),
      cell(base, (r) => fmtPct(r.generator.cpuPercent)),
      '',
    ],
    [
      'generator schedule lag p99 / max (ms)',
      cell(hopFixed, lagText),
      cell(base, lagText),
      '',
    ],
  );
  return {
    title: `Redirects: Hop vs baseline (fixed rate = half the ${base === undefined ? "Hop's" : "baseline's"} max)`,
    head: ['', 'Hop', 'baseline', 'Hop/baseline'],
    rows,
    note: 'Throughput ratio above 1 is better for Hop; latency ratio below 1 is better for Hop.',
  };
}

function lagText(r: RunResult): string {
  const lag = r.generator.lag;
  return lag === null ? '-' : `${fmtMs(lag.p99)} / ${fmtMs(lag.max)}`;
}
