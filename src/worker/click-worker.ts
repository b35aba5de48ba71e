// `hop worker`'s loop (DESIGN §7): a member of the rollup consumer group on every partition.
// Per partition it reads entries in batches on a connection of its own (reads block), writes each
// entry's clicks into rollups on the links' shards as one exactly-once batch (the entry's batch
// id goes into each shard's ledger), and acknowledges only after that commit. Transient database
// errors are retried within a delivery with full-jitter backoff, for a while (a failover). An entry left unacknowledged
// (its worker died, or its write failed) is taken over once idle longer than claimIdleMs; one
// that failed maxDeliveries deliveries is copied to the dead-letter stream and then acknowledged
// (a crash in between duplicates it there, the ledger makes a replay count once). With tracing on,
// each delivery is a consumer span linked to the producer span the entry names (producer → stream
// → worker), so a traced redirect's trace leads to the write of its click.
import { summarizeClicks } from '../domain/clicks.ts';
import {
  type ClickEntry,
  compareStreamIds,
  DEAD_LETTER_KEY,
  nextStreamId,
  parseEntry,
  partitionKey,
  ROLLUP_GROUP,
} from '../events/click-stream.ts';
import type { Logger } from '../logger.ts';
import type { RedisClient } from '../redis/connect-redis.ts';
import { fieldMap } from '../redis/field-map.ts';
import { fullJitterMs, sleep } from '../resilience/backoff.ts';
import type { ClickStore } from '../storage/ports.ts';
import { NO_TRACING, type Span, type Tracing } from '../tracing/tracing.ts';

export interface ClickWorkerOptions {
  readonly partitions: number;
  /** This worker's name in the group; unique per process. */
  readonly consumer: string;
  readonly readCount: number;
  readonly blockMs: number;
  readonly claimIdleMs: number;
  readonly maxDeliveries: number;
  /** Attempts per delivery for transient errors, and their backoff. */
  readonly attempts: number;
  /**
   * A transient error is retried for at least this long within the delivery, however many attempts
   * that takes: a primary's failover (seconds) then delays the entry's clicks by the failover, not
   * by claimIdleMs, and does not use up a delivery. Keep it below claimIdleMs, or another worker
   * claims the entry meanwhile.
   */
  readonly transientRetryMs: number;
  readonly retryBaseMs: number;
  readonly retryCapMs: number;
  /** How often acknowledged entries are trimmed from the partitions. */
  readonly trimMs: number;
  /** Whether an error is worth retrying at once (a server down, a pool full) or fails the delivery. */
  readonly transient: (err: unknown) => boolean;
}

export interface ClickWorkerObserver {
  /** An entry's clicks committed: its events' timestamps, for the click-to-rollup delay. */
  written(partition: number, clicks: number, eventTimes: readonly number[], duplicate: boolean): void;
  retried(): void;
  failed(): void;
  deadLettered(): void;
}

interface StreamReply {
  0: string;
  1: [string, string[] | null][];
}

export class ClickWorker {
  private running = false;
  private loops: Promise<void>[] = [];
  private readonly readers: RedisClient[] = [];
  private readonly client: RedisClient;
  private readonly connectReader: () => RedisClient;
  private readonly store: Pick<ClickStore, 'recordClickBatch'>;
  private readonly opts: ClickWorkerOptions;
  private readonly observer: ClickWorkerObserver;
  private readonly log: Logger;
  private readonly tracing: Tracing;

  constructor(
    client: RedisClient,
    connectReader: () => RedisClient,
    store: Pick<ClickStore, 'recordClickBatch'>,
    opts: ClickWorkerOptions,
    observer: ClickWorkerObserver,
    log: Logger,
    tracing: Tracing = NO_TRACING,
  ) {
    this.tracing = tracing;
    this.client = client;
    this.connectReader = connectReader;
    this.store = store;
    this.opts = opts;
    this.observer = observer;
    this.log = log;
  }

  async start(): Promise<void> {
    for (let p = 0; p < this.opts.partitions; p++) await this.ensureGroup(partitionKey(p));
    this.running = true;
    for (let p = 0; p < this.opts.partitions; p++) {
      const reader = this.connectReader();
      this.readers.push(reader);
      this.loops.push(this.runPartition(p, reader));
    }
  }

  /** Finishes the entry in hand, then stops; what is unacknowledged is reclaimed by others. */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    for (const r of this.readers) r.disconnect();
  }

  // From id 0: entries appended before the first worker started are processed too.
  private async ensureGroup(key: string): Promise<void> {
    try {
      await this.client.xgroup('CREATE', key, ROLLUP_GROUP, '0', 'MKSTREAM');
    } catch (err) {
      if (!String(err).includes('BUSYGROUP')) throw err;
    }
  }

  private async runPartition(p: number, reader: RedisClient): Promise<void> {
    const key = partitionKey(p);
    // Spread the housekeeping of partitions and workers over time.
    let claimAt = Date.now() + Math.random() * this.opts.claimIdleMs;
    let trimAt = Date.now() + Math.random() * this.opts.trimMs;
    let failures = 0;
    while (this.running) {
      try {
        if (Date.now() >= claimAt) {
          await this.reclaim(p, key);
          claimAt = Date.now() + this.opts.claimIdleMs / 2;
        }
        if (Date.now() >= trimAt) {
          await this.trim(key);
          trimAt = Date.now() + this.opts.trimMs;
        }
        const reply = (await reader.xreadgroup(
          'GROUP',
          ROLLUP_GROUP,
          this.opts.consumer,
          'COUNT',
          this.opts.readCount,
          'BLOCK',
          this.opts.blockMs,
          'STREAMS',
          key,
          '>',
        )) as StreamReply[] | null;
        for (const [id, fields] of reply?.[0]?.[1] ?? []) {
          await this.handle(p, key, id, fields, 1);
        }
        failures = 0;
      } catch (err) {
        if (!this.running) break;
        if (String(err).includes('NOGROUP')) await this.ensureGroup(key).catch(() => {});
        this.log.warn({ err, partition: p }, 'click stream read failed; retrying');
        await sleep(fullJitterMs(failures++, this.opts.retryBaseMs, this.opts.retryCapMs));
      }
    }
  }

  /** Entries idle too long in the group (a worker died on them, or their write failed). */
  private async reclaim(p: number, key: string): Promise<void> {
    let cursor = '0-0';
    do {
      const [next, entries] = (await this.client.xautoclaim(
        key,
        ROLLUP_GROUP,
        this.opts.consumer,
        this.opts.claimIdleMs,
        cursor,
        'COUNT',
        100,
      )) as [string, [string, string[] | null][]];
      cursor = next;
      for (const [id, fields] of entries) {
        if (!this.running) return;
        const pending = (await this.client.xpending(key, ROLLUP_GROUP, id, id, 1)) as [
          string,
          string,
          number,
          number,
        ][];
        const deliveries = pending[0]?.[3] ?? 1;
        if (deliveries > this.opts.maxDeliveries) {
          // Every delivery failed without a word: the entry may be what kills its workers.
          await this.deadLetter(key, id, fields, deliveries - 1, 'no delivery finished (its workers died)');
        } else {
          await this.handle(p, key, id, fields, deliveries);
        }
      }
    } while (cursor !== '0-0' && this.running);
  }

  private async handle(
    p: number,
    key: string,
    id: string,
    fields: string[] | null,
    deliveries: number,
  ): Promise<void> {
    // Deleted from the stream while pending (trimmed by hand): nothing left to write.
    if (fields === null) {
      await this.client.xack(key, ROLLUP_GROUP, id);
      return;
    }
    let entry: ClickEntry;
    try {
      entry = parseEntry(id, fields);
    } catch (err) {
      return this.failed(key, id, fields, deliveries, err);
    }
    const opts = {
      kind: 'consumer',
      parent: null,
      links: entry.traceparent === null ? [] : [entry.traceparent],
      attributes: {
        'messaging.system': 'redis',
        'messaging.operation.type': 'process',
        'messaging.destination.name': key,
        'messaging.consumer.group.name': ROLLUP_GROUP,
        'messaging.message.id': id,
        'messaging.batch.message_count': entry.events.length,
        'hop.click_batch.id': entry.batchId,
        'hop.delivery': deliveries,
      },
    } as const;
    return this.tracing.withSpan(`process ${key}`, opts, (span) =>
      this.write(p, key, fields, deliveries, entry, span),
    );
  }

  /** The entry's clicks into rollups, retried on transient errors, then acknowledged. */
  private async write(
    p: number,
    key: string,
    fields: string[],
    deliveries: number,
    entry: ClickEntry,
    span: Span,
  ): Promise<void> {
    const id = entry.id;
    const began = Date.now();
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await this.store.recordClickBatch({
          id: entry.batchId,
          events: entry.events,
          ...summarizeClicks(entry.events),
        });
        await this.client.xack(key, ROLLUP_GROUP, id);
        span.setAttribute('hop.click_batch.result', result);
        this.observer.written(
          p,
          entry.events.length,
          entry.events.map((e) => e.at),
          result === 'duplicate',
        );
        return;
      } catch (err) {
        const retryable =
          this.opts.transient(err) &&
          (attempt < this.opts.attempts || Date.now() - began < this.opts.transientRetryMs);
        if (!retryable || !this.running) {
          span.fail(err);
          return this.failed(key, id, fields, deliveries, err);
        }
        this.observer.retried();
        await sleep(fullJitterMs(attempt, this.opts.retryBaseMs, this.opts.retryCapMs));
      }
    }
  }

  /** A failed delivery: left pending (reclaimed later), or dead-lettered when it was the last. */
  private async failed(
    key: string,
    id: string,
    fields: string[],
    deliveries: number,
    err: unknown,
  ): Promise<void> {
    this.observer.failed();
    const why = err instanceof Error ? err.message : String(err);
    if (deliveries >= this.opts.maxDeliveries) {
      await this.deadLetter(key, id, fields, deliveries, why);
    } else {
      this.log.warn({ stream: key, id, deliveries, err: why }, 'click entry failed; it will be retried');
    }
  }

  private async deadLetter(
    key: string,
    id: string,
    fields: string[] | null,
    deliveries: number,
    why: string,
  ): Promise<void> {
    await this.client.xadd(
      DEAD_LETTER_KEY,
      '*',
      'stream',
      key,
      'entry',
      id,
      'deliveries',
      String(deliveries),
      'error',
      why.slice(0, 1_000),
      'failedAt',
      new Date().toISOString(),
      ...(fields ?? []),
    );
    await this.client.xack(key, ROLLUP_GROUP, id);
    this.observer.deadLettered();
    this.log.error({ stream: key, id, deliveries, err: why }, 'click entry moved to the dead-letter stream');
  }

  /** Drops entries every group is done with: older than each group's oldest pending or next new one. */
  private async trim(key: string): Promise<void> {
    const groups = (await this.client.xinfo('GROUPS', key)) as unknown[][];
    let keep: string | null = null;
    for (const g of groups) {
      const info = fieldMap(g);
      const name = String(info.get('name'));
      const summary = (await this.client.xpending(key, name)) as [number, string | null, ...unknown[]];
      const oldest =
        summary[0] > 0 && summary[1] !== null
          ? summary[1]
          : nextStreamId(String(info.get('last-delivered-id')));
      if (keep === null || compareStreamIds(oldest, keep) < 0) keep = oldest;
    }
    if (keep !== null) await this.client.xtrim(key, 'MINID', keep);
  }
}
