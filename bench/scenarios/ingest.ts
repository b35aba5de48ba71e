// The ingest scenario: how many clicks per second the embedded click writer sums and writes into
// rollups, measured in process against a real PGlite data directory. Each round is one flush's worth
// of clicks (summed, split into bounded batches, each batch one exactly-once transaction), as the
// buffered sink does it (HOP_CLICK_FOLD_MS=0); a second table folds longer windows of clicks as the
// embedded default does. The generator builds the clicks before the clock starts.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { ClickEvent } from '../../src/domain/clicks.ts';
import { batchesOf } from '../../src/events/buffered-click-sink.ts';
import { FoldingClickSink } from '../../src/events/folding-click-sink.ts';
import { uuid7 } from '../../src/events/uuid7.ts';
import { createLogger } from '../../src/logger.ts';
import { noopMetrics } from '../../src/metrics/metrics.ts';
import { openEmbeddedStore } from '../../src/storage/embedded/open-embedded-store.ts';
import type { SqlStore } from '../../src/storage/sql/sql-store.ts';
import { makeTempDir, removeDir } from '../lib/hop-process.ts';
import { type Distribution, indexSampler, randomCodes, seededRandom } from '../lib/links.ts';
import { fmtInt, fmtMs, newReport, type ScenarioReport, type Table } from '../lib/report.ts';
import type { BenchContext } from './common.ts';
import { threadTable } from './ingest-thread.ts';

export interface IngestOptions {
  links: number;
  dist: Distribution;
  durationS: number;
}

const pick = <T>(rnd: () => number, xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;

function eventMaker(o: IngestOptions): () => ClickEvent {
  const codes = randomCodes(o.links);
  const next = indexSampler(codes.length, o.dist);
  const rnd = seededRandom(5);
  const visitors = Array.from({ length: 50_000 }, (_, i) =>
    createHash('sha256').update(String(i)).digest('hex').slice(0, 16),
  );
  const refs = [null, null, 'www.google.com', 't.co', 'news.ycombinator.com', 'www.reddit.com'];
  const countries = ['US', 'DE', 'GB', 'FR', 'IN', 'BR', 'JP', null];
  const agents: [string, string, string][] = [
    ['Chrome', 'Windows', 'desktop'],
    ['Safari', 'iOS', 'mobile'],
    ['Chrome', 'Android', 'mobile'],
    ['Firefox', 'Linux', 'desktop'],
    ['Safari', 'macOS', 'desktop'],
  ];
  return () => {
    const [browser, os, device] = pick(rnd, agents);
    const at = Date.now();
    return {
      id: uuid7(at),
      code: codes[next()]!,
      at,
      referrerHost: pick(rnd, refs),
      country: pick(rnd, countries),
      browser,
      os,
      device,
      bot: rnd() < 0.05,
      visitor: pick(rnd, visitors),
    };
  };
}

/**
 * The embedded default: clicks stored raw every flush, folded into the rollups over longer windows.
 * Each round records a window's clicks into a fresh FoldingClickSink (summing, as redirects do) and
 * closes it, which stores them raw and folds them (without the writer's rests).
 */
async function foldTable(
  ctx: BenchContext,
  store: SqlStore,
  make: () => ClickEvent,
  out: ScenarioReport,
): Promise<Table> {
  const rows: string[][] = [];
  const off = { flushMs: 3_600_000, batchSize: 10_000_000, maxBuffered: 10_000_000 };
  for (const window of ctx.quick ? [20_000, 100_000] : [20_000, 130_000, 780_000]) {
    const events = Array.from({ length: window }, make);
    const folds: number[] = [];
    const t0 = performance.now();
    const sink = await FoldingClickSink.open(
      store,
      { ...off, foldMs: 3_600_000, foldRows: 10_000_000 },
      { ...noopMetrics, clicksFolded: (_c, r) => folds.push(r) },
      createLogger('silent'),
    );
    for (const e of events) sink.record(e);
    const summed = performance.now();
    await sink.close();
    const ms = performance.now() - t0;
    const foldRows = folds.reduce((a, b) => a + b, 0);
    ctx.log(`${fmtInt(window)} clicks per fold: ${fmtInt((window / ms) * 1000)} clicks/s`);
    rows.push([
      fmtInt(window),
      `${(window / 13_000).toFixed(0)} s`,
      fmtInt((window / ms) * 1000),
      ((ms * 1000) / window).toFixed(1),
      (((summed - t0) * 1000) / window).toFixed(1),
      (foldRows / window).toFixed(2),
    ]);
    out.data[`fold${window}`] = { clicksPerS: (window / ms) * 1000, rowsPerClick: foldRows / window };
  }
  return {
    title: 'Embedded click ingest, stored raw and folded (the default pipeline)',
    head: [
      'clicks per fold',
      'at 13,000 clicks/s',
      'clicks/s',
      'µs per click',
      'of which summing',
      'increments per click',
    ],
    rows,
    note:
      'Summing, storing raw (one row per 2,000 clicks) and folding the sums into the rollups, as one fold. ' +
      "A fold of more clicks sums more of a link's clicks into one row.",
  };
}

export async function runIngest(ctx: BenchContext, o: IngestOptions): Promise<ScenarioReport> {
  const report = newReport('ingest', { links: o.links, dist: o.dist, durationS: o.durationS });
  const dir = await makeTempDir('hop-bench-ingest-');
  const store = await openEmbeddedStore({ dataDir: join(dir, 'hop-data'), codeLength: 7 });
  try {
    const make = eventMaker(o);
    const rows: string[][] = [];
    for (const flush of ctx.quick ? [5_000, 20_000] : [5_000, 20_000, 50_000]) {
      let events = 0;
      let rollupRows = 0;
      let batches = 0;
      let busyMs = 0;
      let worst = 0;
      const deadline = performance.now() + o.durationS * 1000;
      while (performance.now() < deadline) {
        const pending = Array.from({ length: flush }, make);
        const t0 = performance.now();
        for (const b of batchesOf(pending)) {
          const t1 = performance.now();
          await store.recordClickBatch(b);
          worst = Math.max(worst, performance.now() - t1);
          rollupRows += b.rollups.length + b.visitors.length;
          batches++;
        }
        busyMs += performance.now() - t0;
        events += flush;
      }
      const perS = (events / busyMs) * 1000;
      ctx.log(`${fmtInt(flush)} clicks per flush: ${fmtInt(perS)} clicks/s`);
      rows.push([
        fmtInt(flush),
        fmtInt(perS),
        fmtInt((rollupRows / busyMs) * 1000),
        (rollupRows / events).toFixed(2),
        fmtInt(batches),
        fmtMs(worst),
      ]);
      report.data[`flush${flush}`] = {
        clicksPerS: perS,
        rowsPerS: (rollupRows / busyMs) * 1000,
        worstBatchMs: worst,
      };
    }
    report.tables.push({
      title: `Embedded click ingest (${fmtInt(o.links)} links, ${o.dist})`,
      head: [
        'clicks per flush',
        'clicks/s written',
        'increments/s',
        'increments per click',
        'batches',
        'slowest batch (ms)',
      ],
      rows,
      note:
        'Time counts summing (main thread) and writing (PGlite worker thread), not building the clicks. ' +
        'An increment is one (link, hour, value) count or one visitor register; the database stores a ' +
        "link's increments of one hour and batch as one row. Bigger flushes sum more clicks into each.",
    });
    report.tables.push(await foldTable(ctx, store, make, report));
    report.tables.push(await threadTable(ctx, store, o, report));
    return report;
  } finally {
    await store.close();
    await removeDir(dir);
  }
}
