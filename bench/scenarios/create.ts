// The create scenario: POST /api/v1/links against a fresh Hop; capacity with C connections
// back to back, then latency at half that rate, open-loop.
import { join } from 'node:path';
import { makeTempDir, removeDir } from '../lib/hop-process.ts';
import { requestOnce } from '../lib/http-client.ts';
import { randomApiKey } from '../lib/links.ts';
import type { RequestFactory } from '../lib/load.ts';
import {
  fmtInt,
  fmtMs,
  fmtPct,
  latencyRow,
  newReport,
  runsTable,
  type ScenarioReport,
} from '../lib/report.ts';
import { type BenchContext, Cleanup, closedLoop, openLoop, startHopSut, warmServer } from './common.ts';
import { noteTrouble } from './redirect.ts';

export interface CreateOptions {
  concurrency: number;
  durationS: number;
}

/** Request `i` creates https://example.com/x/<base + i>: every URL distinct, so nothing is deduplicated. */
export function createRequests(apiKey: string, base: number): RequestFactory {
  const headers = { Authorization: `Bearer ${apiKey}`, 'Content-Type': 'application/json' };
  return (i) => ({
    method: 'POST',
    path: '/api/v1/links',
    headers,
    body: `{"url":"https://example.com/x/${base + i}"}`,
    expect: 201,
    kind: 'write',
  });
}

export async function runCreate(ctx: BenchContext, o: CreateOptions): Promise<ScenarioReport> {
  const report = newReport('create', {
    concurrency: o.concurrency,
    durationS: o.durationS,
    warmupS: ctx.warmupS,
  });
  const cleanup = new Cleanup();
  try {
    const dir = await makeTempDir('hop-bench');
    cleanup.add(() => removeDir(dir));
    const apiKey = randomApiKey();
    let hop: Awaited<ReturnType<typeof startHopSut>>;
    try {
      hop = await startHopSut({
        dataDir: join(dir, 'hop-data'),
        apiKey,
        env: ctx.hopEnv,
        verbose: ctx.verbose,
      });
    } catch (err) {
      report.notes.push(`Hop could not be started: ${err instanceof Error ? err.message : String(err)}`);
      return report;
    }
    cleanup.add(() => hop.stop());
    const probe = createRequests(apiKey, 900_000_000)(0);
    const first = await requestOnce(hop.target, probe);
    if (first.status !== 201) {
      report.notes.push(
        `POST /api/v1/links answered ${first.status} (expected 201): ${first.body?.toString().slice(0, 300) ?? ''}`,
      );
      return report;
    }
    await warmServer(ctx, hop, createRequests(apiKey, 200_000_000));
    const closed = await closedLoop(ctx, hop, createRequests(apiKey, 0), o.durationS, o.concurrency);
    report.runs.push(closed);
    const rate = Math.max(1, Math.floor(closed.achievedRate / 2));
    report.settings.openLoopRate = rate;
    const open = await openLoop(ctx, hop, createRequests(apiKey, 100_000_000), rate, o.durationS);
    report.runs.push(open);
    report.tables.push({
      title: 'Creates (POST /api/v1/links)',
      head: ['', 'value'],
      rows: [
        [`links/s, closed-loop, ${o.concurrency} connections`, fmtInt(closed.achievedRate)],
        [`p99 @ ${fmtInt(rate)}/s, open-loop (ms)`, fmtMs(open.latency.p99)],
        ['p99.9 / max, open-loop (ms)', `${fmtMs(open.latency.p999)} / ${fmtMs(open.latency.max)}`],
        [
          'errors + answers other than 201',
          `${closed.errorCount + closed.unexpected} / ${open.errorCount + open.unexpected}`,
        ],
        [
          'Hop CPU closed / open',
          `${fmtPct(closed.server?.cpuPercent ?? null)} / ${fmtPct(open.server?.cpuPercent ?? null)}`,
        ],
        [
          'generator CPU closed / open',
          `${fmtPct(closed.generator.cpuPercent)} / ${fmtPct(open.generator.cpuPercent)}`,
        ],
        [
          'generator schedule lag p99 (ms)',
          open.generator.lag === null ? '-' : fmtMs(open.generator.lag.p99),
        ],
      ],
    });
    report.tables.push({
      title: 'Create latency (ms)',
      head: ['run', 'count', 'p50', 'p90', 'p99', 'p99.9', 'max'],
      rows: [
        latencyRow('closed-loop', closed.latency),
        latencyRow(`open-loop @ ${fmtInt(rate)}/s`, open.latency),
      ],
    });
    report.tables.push(runsTable(report.runs));
    report.data.summary = { linksPerS: closed.achievedRate, rate, p99: open.latency.p99 };
    for (const r of report.runs) noteTrouble(report, r);
    return report;
  } finally {
    await cleanup.run();
  }
}
