// Embedded click pipeline: clicks are summed in memory per (code, hour, referrer) as they
// arrive, and the sums are written as one batch once per flush interval (or when enough clicks
// are pending). Bounded: beyond maxBuffered pending clicks, new ones are dropped and counted.
// A batch keeps its id across retries, so a write that committed but looked failed counts once.
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { ClickBatch, ClickCount, ClickEvent, ClickStore } from '../storage/ports.ts';
import type { ClickSink } from './click-sink.ts';
import { uuid7 } from './uuid7.ts';

export interface BufferedClickSinkOptions {
  readonly batchSize: number;
  readonly flushMs: number;
  readonly maxBuffered: number;
}

interface Sum {
  readonly code: string;
  readonly hourMs: number;
  readonly referrerHost: string | null;
  clicks: number;
}

const HOUR = 3600_000;
// Rows per write: a batch's transaction holds the embedded database, so lookups queued behind it
// wait for it; small batches keep that wait to a few milliseconds.
const MAX_ROWS_PER_BATCH = 500;

export class BufferedClickSink implements ClickSink {
  readonly active = true;
  private sums = new Map<string, Sum>();
  private pending = 0;
  /** A batch that failed to write; retried first, with the same id. */
  private retry: ClickBatch | null = null;
  private writing: Promise<void> | null = null;
  private closed = false;
  private readonly timer: NodeJS.Timeout;
  private readonly store: ClickStore;
  private readonly opts: BufferedClickSinkOptions;
  private readonly metrics: Metrics;
  private readonly log: Logger;

  constructor(store: ClickStore, opts: BufferedClickSinkOptions, metrics: Metrics, log: Logger) {
    this.store = store;
    this.opts = opts;
    this.metrics = metrics;
    this.log = log;
    this.timer = setInterval(() => void this.writeSome().catch(() => {}), opts.flushMs);
    this.timer.unref();
  }

  record(event: ClickEvent): void {
    if (this.closed || this.buffered >= this.opts.maxBuffered) {
      this.metrics.clicksDropped(1);
      return;
    }
    const hourMs = event.at - (event.at % HOUR);
    const key = `${event.code}\u0000${hourMs}\u0000${event.referrerHost ?? ''}`;
    const sum = this.sums.get(key);
    if (sum !== undefined) sum.clicks++;
    else this.sums.set(key, { code: event.code, hourMs, referrerHost: event.referrerHost, clicks: 1 });
    this.pending++;
    this.metrics.clicksRecorded(1);
    if (this.pending >= this.opts.batchSize && this.writing === null) void this.writeSome().catch(() => {});
  }

  /** Clicks accepted but not yet written. */
  get buffered(): number {
    return this.pending + (this.retry?.events ?? 0);
  }

  /** Takes up to MAX_ROWS_PER_BATCH sums (Map order: oldest first) as one batch. */
  private takeBatch(): ClickBatch {
    const counts: ClickCount[] = [];
    let events = 0;
    for (const [key, s] of this.sums) {
      if (counts.length >= MAX_ROWS_PER_BATCH) break;
      counts.push({ code: s.code, hour: new Date(s.hourMs), referrerHost: s.referrerHost, clicks: s.clicks });
      events += s.clicks;
      this.sums.delete(key);
    }
    this.pending -= events;
    return { id: uuid7(), counts, events };
  }

  /** Writes one batch at a time; concurrent callers share the write in progress. */
  private writeSome(): Promise<void> {
    if (this.writing !== null) return this.writing;
    if (this.retry === null && this.pending === 0) return Promise.resolve();
    // .finally runs after the assignment below, even if the write settles at once.
    const p: Promise<void> = this.writeLoop().finally(() => {
      if (this.writing === p) this.writing = null;
    });
    this.writing = p;
    return p;
  }

  private async writeLoop(): Promise<void> {
    while (this.retry !== null || this.pending > 0) {
      const batch = this.retry ?? this.takeBatch();
      this.retry = batch;
      const started = performance.now();
      try {
        await this.store.recordClickBatch(batch);
      } catch (err) {
        this.metrics.clickBatchFailed();
        this.log.warn({ err, batch: batch.id, events: batch.events }, 'click batch write failed; will retry');
        throw err;
      }
      this.retry = null;
      this.metrics.clickBatchWritten(batch.events, (performance.now() - started) / 1000);
    }
  }

  async flush(): Promise<void> {
    while (this.writing !== null) await this.writing.catch(() => {});
    while (this.retry !== null || this.pending > 0) {
      const before = this.buffered;
      await this.writeSome();
      if (this.buffered >= before) break;
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
    this.closed = true;
  }
}
