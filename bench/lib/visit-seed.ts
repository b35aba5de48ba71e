// Seeds a stopped Hop's data directory with raw visits written the way Hop writes them: exactly-once
// click batches (raw events one row per batch), then split into per-link visit rows by the store's
// own split job. One hot link gets `hot` visits spread over the retention window, mixed in every
// batch with clicks on thousands of other links, as real traffic mixes them. The newest batches are
// left unsplit, as a running Hop has a few seconds of them. Prints what the writes and splits cost.
import { fileURLToPath } from 'node:url';
import { runAsSeedChild, runSeedChild } from './seed-child.ts';

export interface VisitHistory {
  code: string;
  hot: number;
  /** Clicks on other links, one batch's share beside each hot share. */
  others: number;
  otherLinks: number;
  /** Epoch ms: visits are spread over [start, end). */
  start: number;
  end: number;
  /** Events per batch. */
  batch: number;
  /** The newest batches left raw (not split). */
  unsplit: number;
}

export interface VisitSeedFigures {
  writeS: number;
  splitS: number;
  splitRows: number;
  events: number;
}

/** Seeds in a child process (like click-seed); returns the figures it printed. */
export async function seedHopVisits(
  dataDir: string,
  h: VisitHistory,
  verbose = false,
): Promise<VisitSeedFigures> {
  const line = await runSeedChild('visit-seed', fileURLToPath(import.meta.url), dataDir, h, {
    verbose,
    timeoutMs: 1_800_000,
  });
  if (line === undefined) throw new Error('visit-seed printed no figures');
  return JSON.parse(line) as VisitSeedFigures;
}

runAsSeedChild<VisitHistory>(import.meta.url, async (db, store, h) => {
  const { clickBatch, clickEvent } = await import('../../test/support/fixtures.ts');
  const agents = [
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
    'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0',
    'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
  ];
  const referers = [
    undefined,
    'https://www.google.com/',
    'https://t.co/abc',
    'https://news.ycombinator.com/item?id=1',
  ];
  const total = h.hot + h.others;
  const batches = Math.ceil(total / h.batch);
  const step = (h.end - h.start) / total;
  let hotLeft = h.hot;
  let written = 0;
  let writeMs = 0;
  let splitMs = 0;
  let splitRows = 0;
  const split = async () => {
    const t = performance.now();
    const before = Number(
      (await db.query<{ n: string }>('SELECT count(*)::text AS n FROM click_visits')).rows[0]?.n,
    );
    while ((await store.splitVisits()) > 0) {}
    const after = Number(
      (await db.query<{ n: string }>('SELECT count(*)::text AS n FROM click_visits')).rows[0]?.n,
    );
    splitRows += after - before;
    splitMs += performance.now() - t;
  };
  for (let b = 0; b < batches; b++) {
    const events = [];
    for (let i = 0; i < h.batch && written < total; i++, written++) {
      const hot = hotLeft > 0 && (i % 2 === 0 || written >= total - hotLeft);
      if (hot) hotLeft--;
      const k = written;
      events.push(
        clickEvent({
          code: hot ? h.code : `l${(k * 7919) % h.otherLinks}`,
          at: Math.floor(h.start + k * step),
          bot: k % 29 === 0,
          userAgent: agents[k % agents.length]!,
          ...(referers[k % referers.length] === undefined ? {} : { referer: referers[k % referers.length]! }),
          country: ['US', 'DE', 'FR', 'JP', 'BR'][k % 5]!,
        }),
      );
    }
    const t = performance.now();
    await store.recordClickBatch(clickBatch(events));
    writeMs += performance.now() - t;
    // Split as the splitter would, every so often; the newest batches stay raw.
    if ((b + 1) % 64 === 0 && b < batches - h.unsplit) await split();
    if (b === batches - h.unsplit - 1) {
      await split();
      // Merged and compacted as a running Hop's upkeep leaves them, so a fresh Hop starts idle.
      await store.maintainClicks(Date.now(), 30);
    }
  }
  await db.exec('ANALYZE');
  const figures: VisitSeedFigures = {
    writeS: writeMs / 1000,
    splitS: splitMs / 1000,
    splitRows,
    events: total,
  };
  process.stdout.write(`${JSON.stringify(figures)}\n`);
});
