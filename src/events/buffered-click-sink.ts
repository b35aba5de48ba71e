// Embedded click pipeline: the redirect adds its click to in-memory sums (per link, hour and
// value, so a hot link costs one row, not one per click) and returns. Once per flush interval (or
// when batchSize clicks are pending) the sums are swapped out and written in chunks of bounded
// size, each an exactly-once batch with its own id. Beyond maxBuffered clicks new ones are dropped
// and counted. A batch keeps its id across retries, so a write that committed but looked failed
// counts once.
import { type ClickEvent, ClickSums } from '../domain/clicks.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { ClickBatch, ClickStore } from '../storage/ports.ts';
import type { EventSink } from './click-sink.ts';
import { uuid7 } from './uuid7.ts';

export interface BufferedClickSinkOptions {
  readonly batchSize: number;
  readonly flushMs: number;
  readonly maxBuffered: number;
  /** Told of every click as it is accepted (the live feed). */
  readonly onClick?: (event: ClickEvent) => void;
}

// A chunk's transaction holds the embedded database, so lookups queued behind it wait for it;
// small chunks keep that wait to a few milliseconds.
const MAX_ROWS_PER_BATCH = 500;
// Under load the writer rests at least this many times as long as its last pass took, so it uses
// at most a third of a core: clicks then wait longer and sum into fewer rows, and redirects keep
// the CPU. Analytics trail behind under overload; redirects never do.
const REST_FACTOR = 2;
const MAX_EVENTS_PER_BATCH = 2_000;

/** Splits a set of clicks into batches of bounded size, each with its own id. */
export function batchesOf(events: readonly ClickEvent[]): ClickBatch[] {
  const sums = new ClickSums();
  for (const e of events) sums.add(e);
  const out: ClickBatch[] = [];
  for (
    let c = sums.take(MAX_ROWS_PER_BATCH, MAX_EVENTS_PER_BATCH);
    c !== null;
    c = sums.take(MAX_ROWS_PER_BATCH, MAX_EVENTS_PER_BATCH)
  ) {
    out.push({ id: uuid7(), ...c });
  }
  return out;
}

export class BufferedClickSink implements EventSink {
  readonly active = true;
  /** Clicks arriving now. */
  private current = new ClickSums();
  /** Sums being written, chunk by chunk. */
  private draining: ClickSums | null = null;
  /** A batch whose write failed: retried first, as it is (same id). */
  private retry: ClickBatch | null = null;
  private writing: Promise<void> | null = null;
  private closed = false;
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;
  /** No pass starts before this (performance.now() ms): the writer's rest after a long pass. */
  private restUntil = 0;
  private readonly store: Pick<ClickStore, 'recordClickBatch'>;
  private readonly opts: BufferedClickSinkOptions;
  private readonly metrics: Metrics;
  private readonly log: Logger;

  constructor(
    store: Pick<ClickStore, 'recordClickBatch'>,
    opts: BufferedClickSinkOptions,
    metrics: Metrics,
    log: Logger,
  ) {
    this.store = store;
    this.opts = opts;
    this.metrics = metrics;
    this.log = log;
    this.schedule(opts.flushMs);
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.writeSome()
        .catch(() => {})
        .finally(() => {
          if (!this.stopped) this.schedule(Math.max(this.opts.flushMs, this.restUntil - performance.now()));
        });
    }, ms);
    this.timer.unref();
  }

  record(event: ClickEvent): void {
    if (this.closed || this.buffered >= this.opts.maxBuffered) {
      this.metrics.clicksDropped(1);
      return;
    }
    this.current.add(event);
    this.metrics.clicksRecorded(1);
    this.opts.onClick?.(event);
    if (
      this.current.remaining >= this.opts.batchSize &&
      this.writing === null &&
      performance.now() >= this.restUntil
    ) {
      void this.writeSome().catch(() => {});
    }
  }

  /** Clicks accepted but not yet written. */
  get buffered(): number {
    return this.current.remaining + (this.draining?.remaining ?? 0) + (this.retry?.events.length ?? 0);
  }

  /** Writes one batch at a time; concurrent callers share the write in progress. */
  private writeSome(): Promise<void> {
    if (this.writing !== null) return this.writing;
    if (this.buffered === 0) return Promise.resolve();
    // .finally runs after the assignment below, even if the write settles at once.
    const p: Promise<void> = this.writeLoop().finally(() => {
      if (this.writing === p) this.writing = null;
    });
    this.writing = p;
    return p;
  }

  private async writeLoop(): Promise<void> {
    const started = performance.now();
    try {
      await this.writeAll();
    } finally {
      this.restUntil = performance.now() + REST_FACTOR * (performance.now() - started);
    }
  }

  /** Writes what is pending when the pass starts; clicks arriving meanwhile wait for the next. */
  private async writeAll(): Promise<void> {
    if (this.draining === null && this.retry === null) {
      this.draining = this.current;
      this.current = new ClickSums();
    }
    for (;;) {
      let batch = this.retry;
      if (batch === null) {
        const chunk = this.draining?.take(MAX_ROWS_PER_BATCH, MAX_EVENTS_PER_BATCH) ?? null;
        if (chunk === null) break;
        batch = { id: uuid7(), ...chunk };
        this.retry = batch;
      }
      const started = performance.now();
      try {
        await this.store.recordClickBatch(batch);
      } catch (err) {
        this.metrics.clickBatchFailed();
        this.log.warn(
          { err, batch: batch.id, events: batch.events.length },
          'click batch write failed; will retry',
        );
        throw err;
      }
      this.retry = null;
      this.metrics.clickBatchWritten(batch.events.length, (performance.now() - started) / 1000);
    }
    this.draining = null;
  }

  async flush(): Promise<void> {
    while (this.writing !== null) await this.writing.catch(() => {});
    while (this.buffered > 0) {
      const before = this.buffered;
      await this.writeSome();
      if (this.buffered >= before) break;
    }
  }

  async close(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    await this.flush();
    this.closed = true;
  }
}
