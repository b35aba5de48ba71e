// Scaled-out click pipeline, producer side: the redirect appends its click to an in-memory list
// per partition and returns; once per flush interval (or when batchSize clicks wait) each list is
// cut into batches with their own ids and appended to its partition stream, all partitions'
// XADDs written back to back on one connection (pipelined). `hop worker` turns entries into
// rollups. While Redis is unreachable, or a partition's backlog is over its bound (no worker
// keeps up), batches wait in memory up to maxBuffered clicks; beyond it clicks are dropped and
// counted. A batch keeps its id across retries: an XADD that timed out but landed is appended
// twice, and the ledger counts it once.
import type { ClickEvent } from '../domain/clicks.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { RedisClient } from '../redis/connect-redis.ts';
import type { EventSink } from './click-sink.ts';
import { entryFields, MAX_EVENTS_PER_ENTRY, partitionKey, partitionOf } from './click-stream.ts';
import { uuid7 } from './uuid7.ts';

export interface StreamClickSinkOptions {
  readonly partitions: number;
  readonly flushMs: number;
  readonly batchSize: number;
  readonly maxBuffered: number;
  /** Entries a partition may hold before producers hold back (workers are away or behind). */
  readonly maxStreamEntries: number;
  readonly onClick?: (event: ClickEvent) => void;
}

interface Batch {
  readonly partition: number;
  readonly fields: string[];
  readonly events: number;
}

const LENGTH_CHECK_MS = 1_000;

export class StreamClickSink implements EventSink {
  readonly active = true;
  private readonly pending: ClickEvent[][];
  private pendingCount = 0;
  /** Cut into batches, not yet appended (failed appends come back here, ids kept). */
  private unsent: Batch[] = [];
  private unsentCount = 0;
  private sending: Promise<void> | null = null;
  /** Partitions whose backlog was over the bound at the last check. */
  private full = new Set<number>();
  private lengthsCheckedAt = 0;
  private closed = false;
  private readonly timer: NodeJS.Timeout;
  private readonly client: RedisClient;
  private readonly opts: StreamClickSinkOptions;
  private readonly metrics: Metrics;
  private readonly log: Logger;

  constructor(client: RedisClient, opts: StreamClickSinkOptions, metrics: Metrics, log: Logger) {
    this.client = client;
    this.opts = opts;
    this.metrics = metrics;
    this.log = log;
    this.pending = Array.from({ length: opts.partitions }, () => []);
    this.timer = setInterval(() => void this.send(), opts.flushMs);
    this.timer.unref();
  }

  record(event: ClickEvent): void {
    if (this.closed || this.buffered >= this.opts.maxBuffered) {
      this.metrics.clicksDropped(1);
      return;
    }
    this.pending[partitionOf(event.code, this.opts.partitions)]!.push(event);
    this.pendingCount++;
    this.metrics.clicksRecorded(1);
    this.opts.onClick?.(event);
    if (this.pendingCount >= this.opts.batchSize && this.sending === null) void this.send();
  }

  /** Clicks accepted and not yet appended to a stream. */
  get buffered(): number {
    return this.pendingCount + this.unsentCount;
  }

  /** One append pass at a time; callers during a pass share it. */
  private send(): Promise<void> {
    if (this.sending !== null) return this.sending;
    const p: Promise<void> = this.appendAll()
      .catch((err) => this.log.warn({ err }, 'click stream append failed; will retry'))
      .finally(() => {
        if (this.sending === p) this.sending = null;
      });
    this.sending = p;
    return p;
  }

  private cutBatches(): void {
    for (let partition = 0; partition < this.pending.length; partition++) {
      const events = this.pending[partition]!;
      if (events.length === 0) continue;
      this.pending[partition] = [];
      for (let i = 0; i < events.length; i += MAX_EVENTS_PER_ENTRY) {
        const chunk = events.slice(i, i + MAX_EVENTS_PER_ENTRY);
        this.unsent.push({ partition, fields: entryFields(uuid7(), chunk), events: chunk.length });
        this.unsentCount += chunk.length;
      }
    }
    this.pendingCount = 0;
  }

  private async checkLengths(): Promise<void> {
    const now = Date.now();
    if (now - this.lengthsCheckedAt < LENGTH_CHECK_MS) return;
    this.lengthsCheckedAt = now;
    const lengths = await Promise.all(
      this.pending.map((_, p) => this.client.xlen(partitionKey(p)).catch(() => 0)),
    );
    this.full = new Set(lengths.flatMap((n, p) => (n >= this.opts.maxStreamEntries ? [p] : [])));
  }

  private async appendAll(): Promise<void> {
    this.cutBatches();
    if (this.unsent.length === 0 || this.client.status !== 'ready') return;
    await this.checkLengths();
    const batches = this.unsent;
    this.unsent = [];
    const started = performance.now();
    const results = await Promise.allSettled(
      batches.map((b) =>
        this.full.has(b.partition)
          ? Promise.reject(new Error('partition backlog over its bound'))
          : this.client.xadd(partitionKey(b.partition), '*', ...b.fields),
      ),
    );
    const seconds = (performance.now() - started) / 1000;
    const kept: Batch[] = [];
    results.forEach((r, i) => {
      const b = batches[i]!;
      if (r.status === 'fulfilled') {
        this.unsentCount -= b.events;
        this.metrics.clickBatchWritten(b.events, seconds);
      } else {
        kept.push(b);
        this.metrics.clickBatchFailed();
      }
    });
    // Failed batches go first next time, so a partition's batches stay roughly in order.
    this.unsent = kept.concat(this.unsent);
  }

  async flush(): Promise<void> {
    if (this.sending !== null) await this.sending;
    // Batches cut meanwhile, or failed: one more pass, and as many as still make progress.
    for (let before = Number.POSITIVE_INFINITY; this.buffered > 0 && this.buffered < before; ) {
      before = this.buffered;
      await this.send();
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
    this.closed = true;
    if (this.buffered > 0) {
      this.log.error({ clicks: this.buffered }, 'clicks could not be appended to the stream before exit');
      this.metrics.clicksDropped(this.buffered);
    }
  }
}
