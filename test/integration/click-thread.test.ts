// The embedded click writer on the database's thread (click-thread-host.ts), reached as a Hop
// reaches it: through the ThreadClickSink and the real PGlite worker.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type CapturedClicks, captureColumn, readColumn } from '../../src/events/click-thread-protocol.ts';
import { ThreadClickSink } from '../../src/events/thread-click-sink.ts';
import { type Metrics, noopMetrics } from '../../src/metrics/metrics.ts';
import { openEmbeddedStore } from '../../src/storage/embedded/open-embedded-store.ts';
import type { SqlStore } from '../../src/storage/sql/sql-store.ts';

const CHROME =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36';

describe('the click writer on the database thread', () => {
  let store: SqlStore;
  let sink: ThreadClickSink;
  const counts = { recorded: 0, dropped: 0 };

  before(async () => {
    store = await openEmbeddedStore({ dataDir: null, codeLength: 7 });
    const metrics: Metrics = {
      ...noopMetrics,
      clicksRecorded: (n) => {
        counts.recorded += n;
      },
      clicksDropped: (n) => {
        counts.dropped += n;
      },
    };
    sink = await ThreadClickSink.open(
      store.databaseThread!,
      {
        flushMs: 1_000,
        batchSize: 1_000,
        maxBuffered: 10_000,
        foldMs: 60_000,
        foldRows: 10_000,
        trustProxy: false,
        countryHeader: null,
        codeLength: 7,
        logLevel: 'silent',
      },
      metrics,
    );
  });

  after(async () => {
    await sink.close();
    await store.close();
  });

  const handOver = (seq: number, codes: (string | undefined)[], agents: (string | undefined)[]) => {
    const none = codes.map(() => undefined);
    const batch: CapturedClicks = {
      seq,
      count: codes.length,
      codes: captureColumn(codes),
      at: Float64Array.from(codes, () => Date.now()),
      peers: captureColumn(codes.map((_, i) => `203.0.113.${i + 1}`)),
      forwarded: captureColumn(none),
      agents: captureColumn(agents),
      referers: captureColumn(none),
      countries: null,
      echo: false,
    };
    store.databaseThread!.post({ op: 'clicks', batch });
  };
  const hour = Math.floor(Date.now() / 3_600_000) * 3_600_000;
  const clicksOf = async (code: string) => {
    const stats = await sink.clickStats({
      code,
      from: hour - 3_600_000,
      to: hour + 3_600_000,
      interval: 'hour',
      includeBots: true,
      top: 10,
    });
    return stats.series.reduce((n, s) => n + s.clicks, 0);
  };

  test('a click that cannot be recorded is counted as dropped, and the rest of its hand-over is kept', async () => {
    // A hand-over as the redirect thread makes it, but with a broken middle click (no link code).
    handOver(1_000_000, ['aaaaaaa', undefined, 'ccccccc'], [CHROME, CHROME, undefined]);
    await sink.flush();
    assert.deepEqual(counts, { recorded: 2, dropped: 1 });
    assert.equal(await clicksOf('ccccccc'), 1);
  });

  test('a hand-over whose columns disagree is dropped whole and counted; the next one is kept', async () => {
    const before = { ...counts };
    const batch: CapturedClicks = {
      seq: 1_000_001,
      count: 2,
      codes: captureColumn(['ddddddd', 'eeeeeee']),
      at: Float64Array.from([Date.now(), Date.now()]),
      peers: captureColumn(['203.0.113.1']),
      forwarded: captureColumn([undefined, undefined]),
      agents: captureColumn([CHROME, CHROME]),
      referers: captureColumn([undefined, undefined]),
      countries: null,
      echo: false,
    };
    store.databaseThread!.post({ op: 'clicks', batch });
    handOver(1_000_002, ['fffffff'], [CHROME]);
    await sink.flush();
    assert.deepEqual(counts, { recorded: before.recorded + 1, dropped: before.dropped + 2 });
    assert.equal(await clicksOf('ddddddd'), 0);
    assert.equal(await clicksOf('fffffff'), 1);
  });

  test('header values come through as the request had them, Latin-1 bytes included', () => {
    const values = ['a', undefined, '', 'Mozilla/5.0 (\u00e9t\u00e9) caf\u00e9', 'x'.repeat(300)];
    assert.deepEqual(readColumn(captureColumn(values), values.length), [
      'a',
      undefined,
      undefined,
      'Mozilla/5.0 (\u00e9t\u00e9) caf\u00e9',
      'x'.repeat(300),
    ]);
    assert.equal(readColumn(captureColumn(values), values.length + 1), null);
    assert.equal(readColumn(captureColumn(values), values.length - 1), null);
  });
});
