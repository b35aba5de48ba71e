// The ingest scenario's third table: the embedded click writer as a Hop runs it. Redirect-like
// requests (the clicks scenario's browsers, referrers and client addresses behind a trusted proxy)
// go to the real ThreadClickSink at a fixed rate; it hands them to the embedded database's thread,
// which enriches, sums, stores and folds them. The CPU of each thread of this process, read from
// /proc, says what a click costs that thread: the figure to set against a redirect's own CPU.
import type { ClickRequest } from '../../src/analytics/click-enricher.ts';
import { ThreadClickSink } from '../../src/events/thread-click-sink.ts';
import { type Metrics, noopMetrics } from '../../src/metrics/metrics.ts';
import type { DatabaseThread } from '../../src/storage/ports.ts';
import type { SqlStore } from '../../src/storage/sql/sql-store.ts';
import { readThreadCpuMs } from '../lib/child.ts';
import { type Distribution, randomCodes } from '../lib/links.ts';
import { fmtInt, fmtPct, type ScenarioReport, type Table } from '../lib/report.ts';
import { browserRedirects } from './clicks.ts';
import type { BenchContext } from './common.ts';

export interface ThreadIngestOptions {
  links: number;
  dist: Distribution;
  durationS: number;
}

// Clicks are taken every this many ms.
const TICK_MS = 10;
// As the clicks scenario's recording Hop: folds at least this often, so their cost falls in the run.
const FOLD_MS = 10_000;

interface Counts {
  recorded: number;
  dropped: number;
  folded: number;
  /** Time spent taking clicks and handing them over (ms): the redirect thread's part. */
  takingMs: number;
  /** In a take() loop, whose time already counts any hand-over it makes. */
  inTake: boolean;
}

/** The process's threads' CPU (ms) since `from`: the main thread, the busiest other, the rest. */
function cpuSince(from: Map<number, number>): { main: number; writer: number; rest: number } {
  const now = readThreadCpuMs(process.pid) ?? new Map<number, number>();
  let main = 0;
  let writer = 0;
  let all = 0;
  for (const [tid, ms] of now) {
    const d = ms - (from.get(tid) ?? 0);
    all += d;
    if (tid === process.pid) main = d;
    else writer = Math.max(writer, d);
  }
  return { main, writer, rest: all - main - writer };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Offers `rate` clicks/s for `seconds`, then waits until every click is folded; returns the CPU. */
async function offer(
  sink: ThreadClickSink,
  requests: () => { code: string; req: ClickRequest },
  counts: Counts,
  rate: number,
  seconds: number,
) {
  const start = { ...counts };
  const cpu0 = readThreadCpuMs(process.pid) ?? new Map<number, number>();
  const t0 = performance.now();
  let offered = 0;
  for (let tick = 1; performance.now() - t0 < seconds * 1000; tick++) {
    const due = Math.round((rate * tick * TICK_MS) / 1000);
    const tickRequests: { code: string; req: ClickRequest }[] = [];
    while (offered + tickRequests.length < due) tickRequests.push(requests());
    const taking = performance.now();
    counts.inTake = true;
    for (const { code, req } of tickRequests) sink.take(code, req);
    counts.inTake = false;
    counts.takingMs += performance.now() - taking;
    offered += tickRequests.length;
    await sleep(Math.max(0, t0 + tick * TICK_MS - performance.now()));
  }
  const loadMs = performance.now() - t0;
  const load = cpuSince(cpu0);
  const deadline = performance.now() + 120_000;
  while (counts.folded - start.folded < counts.recorded - start.recorded && performance.now() < deadline) {
    await sleep(100);
  }
  return {
    offered,
    loadMs,
    catchUpMs: performance.now() - t0 - loadMs,
    load,
    all: cpuSince(cpu0),
    recorded: counts.recorded - start.recorded,
    dropped: counts.dropped - start.dropped,
    takingMs: counts.takingMs - start.takingMs,
  };
}

export async function threadTable(
  ctx: BenchContext,
  store: SqlStore,
  o: ThreadIngestOptions,
  out: ScenarioReport,
): Promise<Table> {
  const thread = store.databaseThread;
  if (thread === null) throw new Error('the embedded store has no database thread');
  const counts: Counts = { recorded: 0, dropped: 0, folded: 0, takingMs: 0, inTake: false };
  const metrics: Metrics = {
    ...noopMetrics,
    clicksRecorded: (n) => {
      counts.recorded += n;
    },
    clicksDropped: (n) => {
      counts.dropped += n;
    },
    clicksFolded: (n) => {
      counts.folded += n;
    },
  };
  // Hand-overs are posted on the sink's own timer: their time is taken here.
  const timed: DatabaseThread = {
    call: (msg) => thread.call(msg),
    post: (msg, transfer) => {
      const t = performance.now();
      thread.post(msg, transfer);
      if (!counts.inTake) counts.takingMs += performance.now() - t;
    },
    onNotice: (listener) => thread.onNotice(listener),
    beforeHeldRead: (listener) => thread.beforeHeldRead(listener),
  };
  const sink = await ThreadClickSink.open(
    timed,
    {
      flushMs: 1_000,
      batchSize: 10_000,
      maxBuffered: 1_000_000,
      foldMs: FOLD_MS,
      foldRows: 200_000,
      trustProxy: '127.0.0.1',
      countryHeader: null,
      codeLength: 7,
      logLevel: 'silent',
    },
    metrics,
  );
  const codes = randomCodes(o.links, 7, 3);
  const factory = browserRedirects(codes, o.dist);
  let i = 0;
  const requests = () => {
    const r = factory(i++);
    const req: ClickRequest = { headers: r.headers ?? {}, socket: { remoteAddress: '127.0.0.1' } };
    return { code: r.path.slice(1), req };
  };
  const rows: string[][] = [];
  try {
    ctx.log('the click writer on its thread: warming up');
    await offer(sink, requests, counts, 10_000, ctx.quick ? 2 : 5);
    for (const rate of ctx.quick ? [5_000, 10_000] : [13_000, 26_000]) {
      const r = await offer(sink, requests, counts, rate, o.durationS);
      const perClick = (ms: number) => ((ms * 1000) / Math.max(1, r.recorded)).toFixed(1);
      ctx.log(`${fmtInt(rate)} clicks/s: writer thread ${perClick(r.all.writer)} µs per click`);
      rows.push([
        fmtInt(rate),
        fmtInt(r.recorded),
        fmtInt(r.dropped),
        fmtPct((r.load.writer / r.loadMs) * 100),
        perClick(r.load.writer),
        perClick(r.all.writer),
        (r.catchUpMs / 1000).toFixed(1),
        perClick(r.all.rest),
        perClick(r.takingMs),
      ]);
      out.data[`thread${rate}`] = {
        recorded: r.recorded,
        dropped: r.dropped,
        writerUsPerClick: (r.all.writer * 1000) / Math.max(1, r.recorded),
        otherUsPerClick: (r.all.rest * 1000) / Math.max(1, r.recorded),
        takingUsPerClick: (r.takingMs * 1000) / Math.max(1, r.recorded),
      };
    }
  } finally {
    await sink.close();
  }
  return {
    title: "The embedded click writer as a Hop runs it (the database's thread, fed at a fixed rate)",
    head: [
      'clicks/s offered',
      'recorded',
      'dropped',
      'writer thread busy while fed',
      'writer µs per click while fed',
      'writer µs per click, folds included',
      'folds after the feed (s)',
      "other threads' µs per click",
      'taking and handing over, µs per click',
    ],
    rows,
    note:
      `Requests as the clicks scenario sends them go to a ThreadClickSink, as a Hop's redirect thread takes them, ` +
      `every ${TICK_MS} ms; it hands them to the writer as in a Hop. The writer folds at least every ${FOLD_MS / 1000} s, ` +
      `as in the clicks scenario. "Folds included" counts the writer's CPU until every click fed is folded. ` +
      `Other threads are V8's (garbage collection, compilation). "Taking and handing over" is the redirect thread's ` +
      `part, timed around ThreadClickSink.take() and each hand-over's post (reading the writer's notices is left out). Recording costs at most 10% of a redirect tier's throughput only when all of ` +
      `this stays under a ninth of a redirect's CPU (the clicks scenario prints both).`,
  };
}
