// Embedded click pipeline: a bounded in-memory buffer written in batches (by size or time).
// A batch keeps its id across retries, so a write that committed but looked failed counts once.
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { ClickBatch, ClickEvent, ClickStore } from '../storage/ports.ts';
import type { ClickSink } from './click-sink.ts';
import { uuid7 } from './uuid7.ts';

export interface BufferedClickSinkOptions {
  readonly batchSize: number;
  readonly flushMs: number;
  readonly maxBuffered: number;
}

export class BufferedClickSink implements ClickSink {
  readonly active = true;
  private buffer: ClickEvent[] = [];
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
    const held = this.buffer.length + (this.retry?.events.length ?? 0);
    if (this.closed || held >= this.opts.maxBuffered) {
      this.metrics.clicksDropped(1);
      return;
    }
    this.buffer.push(event);
    this.metrics.clicksRecorded(1);
    if (this.buffer.length >= this.opts.batchSize && this.writing === null)
      void this.writeSome().catch(() => {});
  }

  get buffered(): number {
    return this.buffer.length + (this.retry?.events.length ?? 0);
  }

  /** Writes one batch at a time; concurrent callers share the write in progress. */
  private writeSome(): Promise<void> {
    if (this.writing !== null) return this.writing;
    if (this.retry === null && this.buffer.length === 0) return Promise.resolve();
    // .finally runs after the assignment below, even if the loop settles at once.
    const p: Promise<void> = this.writeLoop().finally(() => {
      if (this.writing === p) this.writing = null;
    });
    this.writing = p;
    return p;
  }

  private async writeLoop(): Promise<void> {
    while (this.retry !== null || this.buffer.length > 0) {
      const batch = this.retry ?? { id: uuid7(), events: this.buffer.splice(0, this.opts.batchSize) };
      this.retry = batch;
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
      if (this.buffer.length < this.opts.batchSize && !this.closed) return; // the timer takes the rest
    }
  }

  async flush(): Promise<void> {
    while (this.writing !== null) await this.writing.catch(() => {});
    while (this.retry !== null || this.buffer.length > 0) {
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
