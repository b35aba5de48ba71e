// The visits scenario: Shlink's visit list of one link with a million visits in the retention
// window, a page of 5,000 at a time, open-loop at a fixed rate through Hop's HTTP API. The visits
// are written as Hop writes clicks (exactly-once batches mixing many links) and split per link by
// Hop's own split job, whose cost is printed beside the cost of writing them.
import { join } from 'node:path';
import { makeTempDir, removeDir } from '../lib/hop-process.ts';
import { randomApiKey } from '../lib/links.ts';
import { fmtInt, fmtMs, newReport, runsTable, type ScenarioReport } from '../lib/report.ts';
import { seedHopVisits } from '../lib/visit-seed.ts';
import { type BenchContext, Cleanup, openLoopGets, startHopSut } from './common.ts';
import { noteTrouble } from './redirect.ts';

export interface VisitsOptions {
  visits: number;
  durationS: number;
  rate: number;
}

const DAY = 86_400_000;
const PAGE = 5_000;

export async function runVisits(ctx: BenchContext, o: VisitsOptions): Promise<ScenarioReport> {
  const others = o.visits;
  const report = newReport('visits', { visits: o.visits, others, rate: o.rate, durationS: o.durationS });
  const cleanup = new Cleanup();
  try {
    const dir = await makeTempDir('hop-bench-visits-');
    cleanup.add(() => removeDir(dir));
    const dataDir = join(dir, 'hop-data');
    const now = Date.now();
    ctx.log(
      `writing ${fmtInt(o.visits)} visits of one link and ${fmtInt(others)} of 20,000 others, then splitting`,
    );
    const seeded = await seedHopVisits(
      dataDir,
      {
        code: 'hot',
        hot: o.visits,
        others,
        otherLinks: 20_000,
        start: now - 29 * DAY,
        end: now - 60_000,
        batch: 2_000,
        unsplit: 5,
      },
      ctx.verbose,
    );
    const apiKey = randomApiKey();
    const hop = await startHopSut({ dataDir, apiKey, env: ctx.hopEnv, verbose: ctx.verbose });
    cleanup.add(() => hop.stop());
    // Hop's upkeep makes its first pass 5 s after start (it splits the raw batches left): measured
    // after it, as a Hop that has been running is.
    await new Promise((r) => setTimeout(r, 6_000));
    const headers = { 'x-api-key': apiKey };
    const pages: [string, number][] = [
      ['page 1 (newest 5,000)', 1],
      ['page 2', 2],
      [`page ${Math.floor(o.visits / PAGE / 2)} (the middle)`, Math.floor(o.visits / PAGE / 2)],
    ];
    const gets = pages.map(
      ([name, page]) => [name, `/rest/v3/short-urls/hot/visits?page=${page}&itemsPerPage=${PAGE}`] as const,
    );
    const results = await openLoopGets(ctx, hop, report, gets, headers, o.rate, o.durationS);
    report.tables.push({
      title: `A link's visits, ${fmtInt(PAGE)} a page, open-loop @ ${fmtInt(o.rate)}/s (the link has ${fmtInt(o.visits)} visits in the window)`,
      head: ['page', 'p50 (ms)', 'p99 (ms)', 'p99.9 (ms)', 'max (ms)', 'achieved/s', 'target p99 < 100 ms'],
      rows: results.map(([name, r]) => [
        name,
        fmtMs(r.latency.p50),
        fmtMs(r.latency.p99),
        fmtMs(r.latency.p999),
        fmtMs(r.latency.max),
        fmtInt(r.achievedRate),
        r.latency.p99 < 100 ? 'met' : 'NOT met',
      ]),
      note: "GET /rest/v3/short-urls/hot/visits on the embedded default: the link's own visit rows, newest first, plus the raw batches not split yet.",
    });
    report.tables.push({
      title: 'Writing and splitting the visits (in one process, on the embedded database)',
      head: ['step', 'seconds', 'clicks/s', 'rows'],
      rows: [
        [
          'write: exactly-once batches of 2,000 clicks (rollups + raw)',
          seeded.writeS.toFixed(1),
          fmtInt(seeded.events / seeded.writeS),
          '',
        ],
        [
          "split into visit rows (a link's own, or its bucket's tail)",
          seeded.splitS.toFixed(1),
          fmtInt(seeded.events / seeded.splitS),
          fmtInt(seeded.splitRows),
        ],
      ],
      note: 'The split runs after a fold (embedded) or every HOP_VISIT_SPLIT_MS (PostgreSQL), off the redirect path; its cost per click is beside the cost of writing the click.',
    });
    report.tables.push(runsTable(report.runs));
    report.data.summary = {
      ...Object.fromEntries(results.map(([n, r]) => [n, { p50: r.latency.p50, p99: r.latency.p99 }])),
      seeded,
    };
    for (const r of report.runs) noteTrouble(report, r);
    return report;
  } finally {
    await cleanup.run();
  }
}
