// Scaled-out click pipeline, producer side: the redirect appends its click to an in-memory list
// per partition and returns; once per flush interval (or when batchSize clicks wait) each list is
// cut into batches with their own ids and appended to its partition stream, all partitions'
// XADDs written back to back on one connection (pipelined). `hop worker` turns entries into
// rollups. While Redis is unreachable, or a partition's backlog is over its bound (no worker
// keeps up), batches wait in memory up to maxBuffered clicks; beyond it clicks are dropped and
// counted. A batch keeps its id across retries: an XADD that timed out but landed is appended
// twice, and the ledger counts it once. With tracing on, a click taken in a sampled redirect keeps
// that redirect's context: its batch is appended under a producer span (a child of the first such
// redirect, linked to the others), whose traceparent goes into the entry for the worker to link to.
// With replicaWaitMs, appended batches stay in memory until a replica confirms it holds them (Redis
// WAIT after each pass): a primary that dies before its replica has them (a Sentinel failover, with
// the replica lagging or cut off) would otherwise lose them with it. When the connection that appended
// them closes first, they are appended again, to whichever primary there is then (same batch ids, so
// the ledger counts them once). Unconfirmed batches are bounded by half the buffer: past it the oldest
// are let go (they are on the primary, only not known to be on a replica).
import type { ClickEvent } from '../domain/clicks.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { RedisClient } from '../redis/connect-redis.ts';
import { ReplicaAck } from '../redis/replica-ack.ts';
import { NO_TRACING, type Tracing } from '../tracing/tracing.ts';
import type { EventSink } from './click-sink.ts';
import { entryFields, MAX_EVENTS_PER_ENTRY, partitionKey, partitionOf, TRACE_FIELD } from './click-stream.ts';
import { uuid7 } from './uuid7.ts';

export interface StreamClickSinkOptions {
  readonly partitions: number;
  readonly flushMs: number;
  readonly batchSize: number;
  readonly maxBuffered: number;
  /** Entries a partition may hold before producers hold back (workers are away or behind). */
  readonly maxStreamEntries: number;
  /** After each pass, wait up to this long for a replica to hold its appends; 0 or absent: off. */
  readonly replicaWaitMs?: number;
  readonly onClick?: (event: ClickEvent) => void;
}

interface Batch {
  readonly partition: number;
  readonly fields: string[];
  readonly events: number;
  /** The traced redirects among its clicks (W3C traceparents), at most MAX_TRACED_PER_BATCH. */
  readonly traced: readonly string[];
}

/** A click's place in its partition's pending list and the sampled redirect that took it. */
interface TracedClick {
  readonly at: number;
  readonly traceparent: string;
}

const LENGTH_CHECK_MS = 1_000;
/** A batch's span links to this many of its traced redirects at most. */
const MAX_TRACED_PER_BATCH = 32;

export class StreamClickSink implements EventSink {
  readonly active = true;
  private readonly pending: ClickEvent[][];
  /** Per partition, the pending clicks that sampled redirects took (tracing on only). */
  private readonly pendingTraced: TracedClick[][];
  private pendingCount = 0;
  /** Cut into batches, not yet appended (failed appends come back here, ids kept). */
  private unsent: Batch[] = [];
  private unsentCount = 0;
  /** Appended, and not yet confirmed by a replica (replicaWaitMs only), oldest first. */
  private unconfirmed: Batch[] = [];
  private unconfirmedCount = 0;
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
  private readonly tracing: Tracing;
  private readonly replicas: ReplicaAck;

  constructor(
    client: RedisClient,
    opts: StreamClickSinkOptions,
    metrics: Metrics,
    log: Logger,
    tracing: Tracing = NO_TRACING,
  ) {
    this.client = client;
    this.opts = opts;
    this.metrics = metrics;
    this.log = log;
    this.tracing = tracing;
    this.replicas = new ReplicaAck(client, opts.replicaWaitMs ?? 0);
    // WAIT speaks for the writes of one connection: once it has closed, what it appended and no
    // replica confirmed is appended again.
    if (this.replicas.enabled) client.on('close', () => this.appendAgain());
    this.pending = Array.from({ length: opts.partitions }, () => []);
    this.pendingTraced = Array.from({ length: opts.partitions }, () => []);
    this.timer = setInterval(() => void this.send(), opts.flushMs);
    this.timer.unref();
  }

  record(event: ClickEvent): void {
    if (this.closed || this.buffered >= this.opts.maxBuffered) {
      this.metrics.clicksDropped(1);
      return;
    }
    const partition = partitionOf(event.code, this.opts.partitions);
    const list = this.pending[partition]!;
    if (this.tracing.enabled) this.noteTrace(partition, list.length);
    list.push(event);
    this.pendingCount++;
    this.metrics.clicksRecorded(1);
    this.opts.onClick?.(event);
    if (this.pendingCount >= this.opts.batchSize && this.sending === null) void this.send();
  }

  /** Remembers the sampled redirect (if any) taking the click about to be pending at `at`. */
  private noteTrace(partition: number, at: number): void {
    const traced = this.pendingTraced[partition]!;
    // Enough for every batch the list can be cut into; past that, clicks go unlinked.
    if (traced.length >= MAX_TRACED_PER_BATCH * Math.ceil((at + 1) / MAX_EVENTS_PER_ENTRY)) return;
    const traceparent = this.tracing.currentTraceparent();
    if (traceparent !== null) traced.push({ at, traceparent });
  }

  /** Clicks accepted and not yet appended to a stream, or appended and not yet confirmed by a replica. */
  get buffered(): number {
    return this.pendingCount + this.unsentCount + this.unconfirmedCount;
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
      const traced = this.pendingTraced[partition]!;
      if (traced.length > 0) this.pendingTraced[partition] = [];
      for (let i = 0; i < events.length; i += MAX_EVENTS_PER_ENTRY) {
        const chunk = events.slice(i, i + MAX_EVENTS_PER_ENTRY);
        const end = i + chunk.length;
        this.unsent.push({
          partition,
          fields: entryFields(uuid7(), chunk),
          events: chunk.length,
          traced: traced
            .filter((t) => t.at >= i && t.at < end)
            .slice(0, MAX_TRACED_PER_BATCH)
            .map((t) => t.traceparent),
        });
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
    if (this.client.status !== 'ready') return;
    if (this.unsent.length === 0) {
      // Nothing new: ask again about what a replica has not confirmed yet.
      if (this.unconfirmed.length > 0 && (await this.replicas.held()) === 'held') this.release([], 0);
      return;
    }
    await this.checkLengths();
    const batches = this.unsent;
    this.unsent = [];
    const started = performance.now();
    const results = await Promise.allSettled(
      batches.map((b) =>
        this.full.has(b.partition)
          ? Promise.reject(new Error('partition backlog over its bound'))
          : this.append(b),
      ),
    );
    const appended = batches.filter((_, i) => results[i]!.status === 'fulfilled');
    const kept = batches.filter((_, i) => results[i]!.status === 'rejected');
    for (const _ of kept) this.metrics.clickBatchFailed();
    // WAIT covers every write of this connection so far: one for the whole pass.
    const answer = appended.length === 0 ? 'held' : await this.replicas.held();
    const seconds = (performance.now() - started) / 1000;
    if (answer === 'held') this.release(appended, seconds);
    else if (answer === 'unconfirmed') {
      this.unsentCount -= count(appended);
      this.unconfirmed.push(...appended);
      this.unconfirmedCount += count(appended);
      this.letGoOfOldest();
    } else {
      // The connection failed after the appends: they may have died with the primary.
      kept.push(...appended);
      for (const _ of appended) this.metrics.clickBatchFailed();
    }
    // Failed batches go first next time, so a partition's batches stay roughly in order.
    this.unsent = kept.concat(this.unsent);
  }

  /** These appends and every earlier unconfirmed one are held (or the wait is off): done with them. */
  private release(appended: readonly Batch[], seconds: number): void {
    this.unsentCount -= count(appended);
    for (const b of appended) this.metrics.clickBatchWritten(b.events, seconds);
    for (const b of this.unconfirmed) this.metrics.clickBatchWritten(b.events, seconds);
    this.unconfirmed = [];
    this.unconfirmedCount = 0;
  }

  /** Unconfirmed batches past half the buffer: the oldest are let go, to leave room for new clicks. */
  private letGoOfOldest(): void {
    let released = 0;
    while (this.unconfirmedCount > this.opts.maxBuffered / 2 && this.unconfirmed.length > 0) {
      const b = this.unconfirmed.shift()!;
      this.unconfirmedCount -= b.events;
      this.metrics.clickBatchWritten(b.events, 0);
      released += b.events;
    }
    if (released > 0) {
      this.log.warn(
        { clicks: released },
        'no Redis replica confirmed these clicks in time; kept on the primary only (a failover now would lose them)',
      );
    }
  }

  /** The connection closed: what it appended and no replica confirmed goes out again. */
  private appendAgain(): void {
    if (this.unconfirmed.length === 0) return;
    this.unsent = this.unconfirmed.concat(this.unsent);
    this.unsentCount += this.unconfirmedCount;
    this.unconfirmed = [];
    this.unconfirmedCount = 0;
  }

  /** One batch's XADD; under a producer span when sampled redirects took some of its clicks. */
  private append(b: Batch): Promise<unknown> {
    const key = partitionKey(b.partition);
    if (b.traced.length === 0) return this.client.xadd(key, '*', ...b.fields);
    const opts = {
      kind: 'producer',
      parent: b.traced[0]!,
      links: b.traced.slice(1),
      attributes: {
        'messaging.system': 'redis',
        'messaging.operation.type': 'send',
        'messaging.destination.name': key,
        'messaging.batch.message_count': b.events,
        'hop.click_batch.id': b.fields[1]!,
      },
    } as const;
    return this.tracing.withSpan(`send ${key}`, opts, (span) => {
      const traceparent = span.traceparent();
      const fields = traceparent === null ? b.fields : [...b.fields, TRACE_FIELD, traceparent];
      return this.client.xadd(key, '*', ...fields);
    });
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
    // Appended, only not confirmed: nothing more to do for them here.
    this.release([], 0);
    if (this.buffered > 0) {
      this.log.error({ clicks: this.buffered }, 'clicks could not be appended to the stream before exit');
      this.metrics.clicksDropped(this.buffered);
    }
  }
}

const count = (batches: readonly Batch[]): number => batches.reduce((n, b) => n + b.events, 0);
