// The stats scenario: latency of the analytics API for a link with ten million clicks and for the
// all-links view, open-loop at a fixed rate. The history is seeded into rollups directly (as sixty
// days of traffic would leave them), then compacted into daily rollups by Hop's own upkeep job.
import { join } from 'node:path';
import { seedHopClickHistory } from '../lib/click-seed.ts';
import { makeTempDir, removeDir } from '../lib/hop-process.ts';
import { randomApiKey } from '../lib/links.ts';
import { fmtInt, fmtMs, newReport, runsTable, type ScenarioReport } from '../lib/report.ts';
import { type BenchContext, Cleanup, openLoopGets, startHopSut } from './common.ts';
import { noteTrouble } from './redirect.ts';

export interface StatsOptions {
  durationS: number;
  rate: number;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export async function runStats(ctx: BenchContext, o: StatsOptions): Promise<ScenarioReport> {
  const hours = ctx.quick ? 240 : 1440;
  const perHour = Math.round(10_000_000 / hours);
  const report = newReport('stats', {
    rate: o.rate,
    durationS: o.durationS,
    clicks: hours * perHour,
    days: hours / 24,
  });
  const cleanup = new Cleanup();
  try {
    const dir = await makeTempDir('hop-bench-stats-');
    cleanup.add(() => removeDir(dir));
    const dataDir = join(dir, 'hop-data');
    const now = Date.now();
    const start = now - (now % HOUR) - (hours - 1) * HOUR;
    ctx.log(`seeding ${fmtInt(hours * perHour)} clicks over ${hours / 24} days into rollups`);
    await seedHopClickHistory(
      dataDir,
      { code: 'big', start, hours, perHour, otherLinks: 20_000 },
      ctx.verbose,
    );
    const apiKey = randomApiKey();
    const hop = await startHopSut({ dataDir, apiKey, env: ctx.hopEnv, verbose: ctx.verbose });
    cleanup.add(() => hop.stop());
    const headers = { authorization: `Bearer ${apiKey}` };
    const iso = (t: number) => encodeURIComponent(new Date(t).toISOString());
    const queries: [string, string][] = [
      ['link, last 7 days by hour', `/api/v1/links/big/stats?from=${iso(now - 7 * DAY)}&interval=hour`],
      ['link, last 30 days by day', `/api/v1/links/big/stats?from=${iso(now - 30 * DAY)}&interval=day`],
      ['all links, last 7 days by day', '/api/v1/stats'],
      ['all links, last 30 days by day', `/api/v1/stats?from=${iso(now - 30 * DAY)}&interval=day`],
    ];
    const results = await openLoopGets(ctx, hop, report, queries, headers, o.rate, o.durationS);
    report.tables.push({
      title: `Stats API latency, open-loop @ ${fmtInt(o.rate)}/s (link "big" has ${fmtInt(hours * perHour)} clicks)`,
      head: ['query', 'p50 (ms)', 'p99 (ms)', 'p99.9 (ms)', 'max (ms)', 'achieved/s'],
      rows: results.map(([name, r]) => [
        name,
        fmtMs(r.latency.p50),
        fmtMs(r.latency.p99),
        fmtMs(r.latency.p999),
        fmtMs(r.latency.max),
        fmtInt(r.achievedRate),
      ]),
      note: 'Answered from hourly and daily rollups; raw events are never read.',
    });
    report.tables.push(runsTable(report.runs));
    report.data.summary = Object.fromEntries(
      results.map(([n, r]) => [n, { p50: r.latency.p50, p99: r.latency.p99 }]),
    );
    for (const r of report.runs) noteTrouble(report, r);
    return report;
  } finally {
    await cleanup.run();
  }
}
