// What `hop worker` exposes on /metrics: its throughput, retries, failures and dead letters, the
// click-to-rollup delay, and each partition's length, lag and pending entries as Redis reports
// them at scrape time (so every worker shows the group's view, not only its own share).
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ChangeRelayObserver } from '../events/change-relay.ts';
import { DEAD_LETTER_KEY, partitionKey, ROLLUP_GROUP } from '../events/click-stream.ts';
import { collectProcessMetrics } from '../metrics/process-metrics.ts';
import type { RedisClient } from '../redis/connect-redis.ts';
import { fieldMap } from '../redis/field-map.ts';
import type { ClickWorkerObserver } from './click-worker.ts';

export interface PartitionStatus {
  readonly partition: number;
  readonly length: number;
  /** Entries not yet delivered to the rollup group (null: Redis could not tell). */
  readonly lag: number | null;
  /** Delivered, not yet acknowledged. */
  readonly pending: number;
}

export async function partitionStatus(client: RedisClient, partitions: number): Promise<PartitionStatus[]> {
  return Promise.all(
    Array.from({ length: partitions }, async (_, partition) => {
      const key = partitionKey(partition);
      const [length, groups] = await Promise.all([
        client.xlen(key),
        (client.xinfo('GROUPS', key) as Promise<unknown[][]>).catch(() => [] as unknown[][]),
      ]);
      let lag: number | null = null;
      let pending = 0;
      for (const g of groups) {
        const info = fieldMap(g);
        if (info.get('name') !== ROLLUP_GROUP) continue;
        pending = Number(info.get('pending') ?? 0);
        const l = info.get('lag');
        lag = l === null || l === undefined ? null : Number(l);
      }
      // No group yet: no worker has started, and everything in the stream is lag.
      if (groups.length === 0) lag = length;
      return { partition, length, lag, pending };
    }),
  );
}

const STATUS_REUSE_MS = 1_000;

export interface WorkerMetrics {
  readonly observer: ClickWorkerObserver;
  readonly relayObserver: ChangeRelayObserver;
  render(): Promise<{ contentType: string; body: string }>;
}

export function createWorkerMetrics(client: RedisClient, partitions: number): WorkerMetrics {
  const register = new Registry();
  collectProcessMetrics(register);
  const clicks = new Counter({
    name: 'hop_worker_clicks_total',
    help: 'Clicks this worker wrote into rollups (duplicate: a batch its ledger had already counted)',
    labelNames: ['partition', 'result'] as const,
    registers: [register],
  });
  const entries = new Counter({
    name: 'hop_worker_entries_total',
    help: 'Stream entries (batches) this worker wrote and acknowledged',
    labelNames: ['partition'] as const,
    registers: [register],
  });
  const retries = new Counter({
    name: 'hop_worker_retries_total',
    help: 'Batch writes retried after a transient database error',
    registers: [register],
  });
  const failures = new Counter({
    name: 'hop_worker_failed_deliveries_total',
    help: 'Deliveries that ended without a commit (the entry is retried later or dead-lettered)',
    registers: [register],
  });
  const dead = new Counter({
    name: 'hop_worker_dead_lettered_total',
    help: 'Entries this worker moved to the dead-letter stream',
    registers: [register],
  });
  const delay = new Histogram({
    name: 'hop_click_to_rollup_seconds',
    help: 'From a click to the commit of its rollups, per click',
    buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300],
    registers: [register],
  });
  // Three gauges read the same partition status: one round of Redis reads per scrape serves all.
  let statusRead: { at: number; value: Promise<PartitionStatus[]> } | null = null;
  const status = () => {
    const now = Date.now();
    if (statusRead === null || now - statusRead.at > STATUS_REUSE_MS) {
      statusRead = {
        at: now,
        value: partitionStatus(client, partitions).catch(() => [] as PartitionStatus[]),
      };
    }
    return statusRead.value;
  };
  new Gauge({
    name: 'hop_click_stream_length',
    help: 'Entries in each click stream partition',
    labelNames: ['partition'] as const,
    registers: [register],
    async collect() {
      this.reset();
      for (const s of await status()) this.set({ partition: s.partition }, s.length);
    },
  });
  new Gauge({
    name: 'hop_click_stream_lag',
    help: 'Entries of each partition not yet delivered to the rollup workers (consumer lag)',
    labelNames: ['partition'] as const,
    registers: [register],
    async collect() {
      this.reset();
      for (const s of await status()) if (s.lag !== null) this.set({ partition: s.partition }, s.lag);
    },
  });
  new Gauge({
    name: 'hop_click_stream_pending',
    help: 'Entries of each partition delivered to a worker and not yet acknowledged',
    labelNames: ['partition'] as const,
    registers: [register],
    async collect() {
      this.reset();
      for (const s of await status()) this.set({ partition: s.partition }, s.pending);
    },
  });
  new Gauge({
    name: 'hop_click_dead_letters',
    help: 'Entries in the dead-letter stream',
    registers: [register],
    async collect() {
      this.set(await client.xlen(DEAD_LETTER_KEY).catch(() => 0));
    },
  });
  const observer: ClickWorkerObserver = {
    written(partition, n, times, duplicate) {
      const p = String(partition);
      clicks.labels(p, duplicate ? 'duplicate' : 'written').inc(n);
      entries.labels(p).inc();
      if (duplicate) return;
      const now = Date.now();
      for (const t of times) delay.observe((now - t) / 1000);
    },
    retried: () => retries.inc(),
    failed: () => failures.inc(),
    deadLettered: () => dead.inc(),
  };
  const relayed = new Counter({
    name: 'hop_change_relay_published_total',
    help: "Outbox changes this worker's relay appended to the shard's change stream",
    labelNames: ['shard'] as const,
    registers: [register],
  });
  const relayedSeq = new Gauge({
    name: 'hop_change_relay_last_seq',
    help: "The last seq in each shard's change stream, as this worker's relay last saw it",
    labelNames: ['shard'] as const,
    registers: [register],
  });
  const relayObserver: ChangeRelayObserver = {
    published(shard, n, last) {
      relayed.labels(String(shard)).inc(n);
      relayedSeq.labels(String(shard)).set(last);
    },
  };
  return {
    observer,
    relayObserver,
    async render() {
      return { contentType: register.contentType, body: await register.metrics() };
    },
  };
}
