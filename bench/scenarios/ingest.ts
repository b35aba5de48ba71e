// The ingest scenario: how many clicks per second the embedded click writer sums and writes into
// rollups, measured in process against a real PGlite data directory. Each round is one flush's worth
// of clicks (summed, split into bounded batches, each batch one exactly-once transaction), as the
// buffered sink does it; the generator builds the clicks before the clock starts.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { ClickEvent } from '../../src/domain/clicks.ts';
import { batchesOf } from '../../src/events/buffered-click-sink.ts';
import { uuid7 } from '../../src/events/uuid7.ts';
import { openEmbeddedStore } from '../../src/storage/embedded/open-embedded-store.ts';
import { makeTempDir, removeDir } from '../lib/hop-process.ts';
import { type Distribution, indexSampler, randomCodes, seededRandom } from '../lib/links.ts';
import { fmtInt, fmtMs, newReport, type ScenarioReport } from '../lib/report.ts';
import type { BenchContext } from './common.ts';

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
        'rollup rows/s',
        'rows per click',
        'batches',
        'slowest batch (ms)',
      ],
      rows,
      note:
        'Time counts summing (main thread) and writing (PGlite worker thread), not building the clicks. ' +
        'Bigger flushes sum more clicks of a link into one row.',
    });
    return report;
  } finally {
    await store.close();
    await removeDir(dir);
  }
}
