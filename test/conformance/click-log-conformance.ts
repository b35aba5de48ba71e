// The embedded click log with the folding sink, on every store that has one (memory and PGlite):
// clicks count at once, exactly once before, during and after a fold, and a fold or a flush cut
// short by a crash is finished on the next start without counting anything twice.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ALL_LINKS, type ClickEvent } from '../../src/domain/clicks.ts';
import { FoldingClickSink, type FoldingClickSinkOptions } from '../../src/events/folding-click-sink.ts';
import { createLogger } from '../../src/logger.ts';
import { noopMetrics } from '../../src/metrics/metrics.ts';
import type { ClickLog, StatsQuery, Store } from '../../src/storage/ports.ts';
import { clickEvent, newLink } from '../support/fixtures.ts';

const silent = createLogger('silent');
const HOUR = Date.UTC(2032, 6, 1, 12);
// Each test clicks on a day of its own, so the all-links figures are its own.
const DAYS = { held: 0, cut: 1, kill: 2, twice: 3 } as const;
const hourOf = (prefix: keyof typeof DAYS) => HOUR + DAYS[prefix] * 86_400_000;
const query = (code: string, over: Partial<StatsQuery> = {}): StatsQuery => ({
  code,
  from: hourOf(code.split('-')[0] as keyof typeof DAYS) - 3_600_000,
  to: hourOf(code.split('-')[0] as keyof typeof DAYS) + 7_200_000,
  interval: 'hour',
  includeBots: false,
  top: 10,
  ...over,
});
const sum = (series: readonly { clicks: number }[]) => series.reduce((n, p) => n + p.clicks, 0);
// Timers out of the way: each test decides when the sink writes and folds.
const opts = (over: Partial<FoldingClickSinkOptions> = {}): FoldingClickSinkOptions => ({
  flushMs: 3_600_000,
  batchSize: 1_000_000,
  maxBuffered: 1_000_000,
  foldMs: 3_600_000,
  foldRows: 1_000_000,
  rowsPerPart: 200,
  ...over,
});

/** 60 clicks on `hot` (two referrers, a bot among them) and one on each of 300 other links. */
function clicks(prefix: keyof typeof DAYS): { events: ClickEvent[]; hot: string } {
  const hot = `${prefix}-hot`;
  const HOUR = hourOf(prefix);
  const events = [
    ...Array.from({ length: 40 }, () => clickEvent({ code: hot, at: HOUR + 60_000 })),
    ...Array.from({ length: 19 }, () =>
      clickEvent({ code: hot, at: HOUR + 3_660_000, referrerHost: 't.co' }),
    ),
    clickEvent({ code: hot, at: HOUR + 120_000, bot: true, device: 'bot' }),
    ...Array.from({ length: 300 }, (_, i) => clickEvent({ code: `${prefix}-${i}`, at: HOUR + i * 1_000 })),
  ];
  return { events, hot };
}

export function runClickLogConformance(name: string, open: () => Promise<Store & ClickLog>): void {
  describe(`Click log conformance: ${name}`, () => {
    let store: Store & ClickLog;
    before(async () => {
      store = await open();
    });
    after(async () => {
      await store.close();
    });

    /** What stats say, with a sink's held clicks counted (as the stats route does) or without. */
    const statsOf = (
      code: string,
      sink: FoldingClickSink | null,
      over: Partial<StatsQuery> = {},
      day: string = code,
    ) => {
      const q = { ...query(day, over), code };
      return store.clickStats(sink === null ? q : { ...q, pending: () => sink.heldFor(q) });
    };

    async function expectCounts(sink: FoldingClickSink | null, hot: string, others: number) {
      const s = await statsOf(hot, sink);
      assert.equal(sum(s.series), 59, 'the hot link, bots left out');
      assert.deepEqual(s.breakdowns.referrer, [
        { value: '', clicks: 40 },
        { value: 't.co', clicks: 19 },
      ]);
      assert.equal(sum((await statsOf(hot, sink, { includeBots: true })).series), 60);
      const all = await statsOf(ALL_LINKS, sink, { includeBots: true, top: 2 }, hot);
      assert.equal(sum(all.series), 60 + others);
      assert.deepEqual(all.topLinks[0], { code: hot, clicks: 60 });
      assert.equal(all.topLinks[1]?.clicks, 1);
      // The link's total as the API shows it: the stored total, then what the sink still holds.
      const stored = (await store.getLink(hot))?.clicks ?? 0;
      assert.equal(stored + (sink?.heldClicks(hot) ?? 0), 60, 'the link total');
    }

    test('held clicks count at once, and once before, during and after a fold', async () => {
      const { events, hot } = clicks('held');
      await store.createLink(newLink({ alias: hot }));
      const sink = await FoldingClickSink.open(store, opts(), noopMetrics, silent);
      for (const e of events) sink.record(e);
      await expectCounts(sink, hot, 300);
      await sink.flush();
      assert.equal(sink.buffered, 0);
      await expectCounts(sink, hot, 300);
      await sink.close();
      await expectCounts(sink, hot, 300);
      await expectCounts(null, hot, 300);
      assert.equal((await store.getLink(hot))?.clicks, 60);
      assert.deepEqual(await store.unfoldedClicks(), []);
    });

    test('a fold cut short counts once while it waits, and is finished on the next start', async () => {
      const { events, hot } = clicks('cut');
      await store.createLink(newLink({ alias: hot }));
      // The second rollup batch of the fold fails, after the first has committed.
      let writes = 0;
      const flaky: Store & ClickLog = Object.create(store, {
        recordClickBatch: {
          value: async (b: Parameters<Store['recordClickBatch']>[0]) => {
            if (++writes === 2) throw new Error('the disk went away');
            return store.recordClickBatch(b);
          },
        },
      });
      const first = await FoldingClickSink.open(flaky, opts(), noopMetrics, silent);
      for (const e of events) first.record(e);
      await first.close();
      assert.ok(writes >= 2, 'the fold got as far as its second batch');
      const [raw] = await store.unfoldedClicks();
      assert.ok(raw?.fold !== null && (raw?.fold.parts ?? 0) > 2, 'the fold is on record, in several parts');
      await expectCounts(first, hot, 300);
      // A new process: it finishes the fold from the raw batches; the part already written is not
      // written again.
      const second = await FoldingClickSink.open(store, opts(), noopMetrics, silent);
      assert.deepEqual(await store.unfoldedClicks(), []);
      await expectCounts(second, hot, 300);
      await expectCounts(null, hot, 300);
      assert.equal((await store.getLink(hot))?.clicks, 60);
      await second.close();
    });

    test('clicks stored raw but never folded (a crash) are counted after the restart', async () => {
      const { events, hot } = clicks('kill');
      await store.createLink(newLink({ alias: hot }));
      const killed = await FoldingClickSink.open(store, opts(), noopMetrics, silent);
      for (const e of events) killed.record(e);
      await killed.flush();
      // No close: the process is gone. The next one holds those clicks again until it folds them.
      const next = await FoldingClickSink.open(store, opts(), noopMetrics, silent);
      assert.equal((await store.unfoldedClicks()).length > 0, true);
      await expectCounts(next, hot, 300);
      await next.close();
      await expectCounts(null, hot, 300);
      assert.equal((await store.getLink(hot))?.clicks, 60);
    });

    test('a raw batch stored twice is stored once', async () => {
      const e = [clickEvent({ code: 'twice', at: hourOf('twice') })];
      const id = '01900000-0000-7000-8000-0000000f01d5';
      assert.equal(await store.writeRawClicks(id, e), 'applied');
      assert.equal(await store.writeRawClicks(id, e), 'duplicate');
      const mine = (await store.unfoldedClicks()).filter((b) => b.id === id);
      assert.equal(mine.length, 1);
      assert.equal(mine[0]?.events[0]?.code, 'twice');
      await store.beginFold({ id: '01900000-0000-7000-8000-0000000f01d6', parts: 1 }, [id]);
      await store.endFold('01900000-0000-7000-8000-0000000f01d6');
      assert.deepEqual(
        (await store.unfoldedClicks()).filter((b) => b.id === id),
        [],
      );
    });
  });
}
