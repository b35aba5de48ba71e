// The tracing scenario: what OpenTelemetry tracing costs the redirect path. Three Hops on the
// embedded default with the same links, loaded alike and alternately in one run: tracing off (the
// default), the SDK loaded but sampling nothing (parent-based ratio 0), and 1% of redirects sampled
// (parent-based ratio 0.01), the last two exporting OTLP to a local receiver that counts the spans.
// Capacity closed-loop, then p50/p99 open-loop at one fixed rate for all three.
import { join } from 'node:path';
import { startOtlpReceiver } from '../../test/support/otlp-receiver.ts';
import { importLinks } from '../lib/hop-process.ts';
import { type Distribution, linkUrl, randomApiKey } from '../lib/links.ts';
import type { RunResult } from '../lib/recorder.ts';
import { fmtInt, fmtMs, fmtPct, newReport, runsTable, type ScenarioReport } from '../lib/report.ts';
import {
  alternateProbes,
  type BenchContext,
  best,
  Cleanup,
  checkRedirect,
  openLoop,
  type Sut,
  seedLinksFile,
  startHopSut,
  touchEveryLink,
  warmServer,
} from './common.ts';
import { noteTrouble, redirectRequests } from './redirect.ts';

export interface TracingOptions {
  links: number;
  dist: Distribution;
  probeS: number;
  rounds: number;
  durationS: number;
  /** Fixed open-loop rate; by default half the untraced Hop's capacity. */
  rate: number | null;
}

export async function runTracing(ctx: BenchContext, o: TracingOptions): Promise<ScenarioReport> {
  const report = newReport('tracing', {
    links: o.links,
    dist: o.dist,
    probeS: o.probeS,
    rounds: o.rounds,
    durationS: o.durationS,
    connections: ctx.connections,
  });
  const cleanup = new Cleanup();
  try {
    const { dir, codes, linksFile } = await seedLinksFile(cleanup, o.links);
    const request = redirectRequests(codes, o.dist);
    const receiver = await startOtlpReceiver({ countOnly: true });
    cleanup.add(() => receiver.close());
    const exporting = (service: string, ratio: string) => ({
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: ratio,
      OTEL_SERVICE_NAME: service,
    });
    const shapes: [name: string, env: Record<string, string>][] = [
      // Whatever the bench's own environment says: this one does not trace.
      ['tracing off', { OTEL_SDK_DISABLED: 'true' }],
      ['loaded, not sampling', exporting('hop-unsampled', '0')],
      ['1% sampled', exporting('hop-sampled', '0.01')],
    ];
    const suts: Sut[] = [];
    for (const [name, env] of shapes) {
      const setup = {
        dataDir: join(dir, name.replace(/\W+/g, '-')),
        apiKey: randomApiKey(),
        env: { ...env, ...ctx.hopEnv },
        verbose: ctx.verbose,
      };
      ctx.log(`importing ${fmtInt(o.links)} links into the Hop "${name}"`);
      await importLinks(setup, linksFile, o.links);
      const hop = await startHopSut(setup);
      cleanup.add(() => hop.stop());
      const sut: Sut = { ...hop, name };
      const problem = await checkRedirect(sut, codes[0]!, linkUrl(0));
      if (problem !== null) throw new Error(problem);
      await touchEveryLink(ctx, sut, codes);
      await warmServer(ctx, sut, request);
      suts.push(sut);
    }
    const [off, unsampled, sampled] = suts as [Sut, Sut, Sut];

    const probes = await alternateProbes(ctx, suts, request, o, report);
    const max = suts.map((s) => best(probes.get(s.name) ?? [])!);
    const rate = o.rate ?? Math.max(1, Math.floor(max[0]!.achievedRate / 2));
    report.settings.openLoopRate = rate;
    const fixed: RunResult[] = [];
    // Spans leave a Hop within the batch processor's delay (5 s): the probes' are all in before this.
    const exported = () => new Promise((r) => setTimeout(r, 6_000));
    await exported();
    const spansBefore = receiver.counts.get('hop-sampled') ?? 0;
    for (const sut of [off, unsampled, sampled]) {
      const r = await openLoop(ctx, sut, request, rate, o.durationS);
      report.runs.push(r);
      fixed.push(r);
    }
    await exported();
    const sampledSpans = (receiver.counts.get('hop-sampled') ?? 0) - spansBefore;
    // The open-loop run's warm-up requests (rate × warm-up) made spans too.
    const sampledRequests = fixed[2]!.completed + Math.ceil(rate * ctx.warmupS);
    const unsampledSpans = receiver.counts.get('hop-unsampled') ?? 0;

    const row = (label: string, f: (r: RunResult) => string, runs: RunResult[]) => [label, ...runs.map(f)];
    const vsOff = (runs: RunResult[], f: (r: RunResult) => number) => [
      '',
      ...runs.slice(1).map((r) => `${(f(r) / f(runs[0]!)).toFixed(3)}×`),
    ];
    report.tables.push({
      title: 'Redirects with tracing off, the SDK loaded but not sampling, and 1% sampled (one run)',
      head: ['', ...suts.map((s) => s.name)],
      rows: [
        row('max throughput, closed-loop (req/s)', (r) => fmtInt(r.achievedRate), max),
        ['  vs tracing off', ...vsOff(max, (r) => r.achievedRate)],
        row(`open-loop @ ${fmtInt(rate)}/s: p50 (ms)`, (r) => fmtMs(r.latency.p50), fixed),
        row('  p99 (ms)', (r) => fmtMs(r.latency.p99), fixed),
        ['  p99 vs tracing off', ...vsOff(fixed, (r) => r.latency.p99)],
        row('  p99.9 (ms)', (r) => fmtMs(r.latency.p999), fixed),
        row('  server CPU', (r) => fmtPct(r.server?.cpuPercent ?? null), fixed),
        row('  errors + non-redirect answers', (r) => String(r.errorCount + r.unexpected), fixed),
        [
          'spans exported in the open-loop run, warm-up included (per redirect)',
          '-',
          fmtInt(unsampledSpans),
          `${fmtInt(sampledSpans)} (${(sampledSpans / Math.max(1, sampledRequests)).toFixed(4)})`,
        ],
      ],
      note:
        'A sampled redirect of a hot link is two spans (the request and its L1 lookup), so 1% sampling ' +
        'exports about 0.02 spans per redirect. The Hop that samples nothing exports none: with ratio 0 ' +
        'a request without a traceparent is served as an untraced one after one check.',
    });
    report.tables.push(runsTable(report.runs));
    report.data.summary = {
      maxRate: Object.fromEntries(suts.map((s, i) => [s.name, max[i]!.achievedRate])),
      fixedRate: rate,
      p50: Object.fromEntries(suts.map((s, i) => [s.name, fixed[i]!.latency.p50])),
      p99: Object.fromEntries(suts.map((s, i) => [s.name, fixed[i]!.latency.p99])),
      sampledSpans,
      unsampledSpans,
    };
    for (const r of report.runs) noteTrouble(report, r);
    return report;
  } finally {
    await cleanup.run();
  }
}
