// Metrics on prom-client, one registry per app so several apps can live in one test process.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DatabaseThreadMemory, StoreTopology } from '../storage/ports.ts';
import { FastHistogram, type FastHistogramChild } from './fast-histogram.ts';
import type { CacheResult, Metrics, MetricsSnapshot, RedirectOutcome } from './metrics.ts';
import { collectProcessMetrics } from './process-metrics.ts';

type Values = { value: number; labels: Partial<Record<string, string | number>>; metricName?: string }[];
const total = (values: Values, where: (l: Values[number]['labels']) => boolean = () => true) =>
  values.reduce((n, v) => (where(v.labels) ? n + v.value : n), 0);

export function createPrometheusMetrics(opts: { defaultMetrics: boolean; gauges?: () => void }): Metrics {
  const register = new Registry();
  if (opts.defaultMetrics) collectProcessMetrics(register);
  // Per-request counters are plain numbers on the hot path and reach prom-client only when
  // /metrics is scraped: a labelled inc() hashes its label set on every call.
  const pending = {
    redirect: { redirect: 0, not_found: 0, gone: 0, error: 0 } as Record<RedirectOutcome, number>,
    cache: new Map<string, number>(),
    coalesced: 0,
    storeLookups: 0,
    clicks: 0,
    dropped: 0,
  };
  const redirectsTotal = new Counter({
    name: 'hop_redirects_total',
    help: 'Redirect requests by outcome',
    labelNames: ['outcome'] as const,
    registers: [register],
    collect() {
      for (const [outcome, n] of Object.entries(pending.redirect)) {
        this.inc({ outcome }, n);
        pending.redirect[outcome as RedirectOutcome] = 0;
      }
    },
  });
  // One observation per redirect, so a FastHistogram (no label hashing); the SLO's 50 ms
  // threshold is a bucket bound. Bound at start, so the series exist before the first redirect.
  const redirectSeconds = new FastHistogram({
    name: 'hop_redirect_duration_seconds',
    help: 'Redirect requests from the handler to the answer (cache, store and click hand-over), every outcome',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [register],
  }).child({});
  const cacheTotal = new Counter({
    name: 'hop_cache_requests_total',
    help: 'Cache lookups by tier and result',
    labelNames: ['tier', 'result'] as const,
    registers: [register],
    collect() {
      for (const [k, n] of pending.cache) {
        const [tier, result] = k.split(':') as [string, string];
        this.inc({ tier, result }, n);
        pending.cache.set(k, 0);
      }
    },
  });
  new Counter({
    name: 'hop_cache_loads_coalesced_total',
    help: 'Lookups that joined a load already in flight for the same code',
    registers: [register],
    collect() {
      this.inc(pending.coalesced);
      pending.coalesced = 0;
    },
  });
  const httpDuration = new Histogram({
    name: 'hop_http_request_duration_seconds',
    help: 'API request latency by route, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [register],
  });
  const created = new Counter({
    name: 'hop_links_created_total',
    help: 'Links created',
    registers: [register],
  });
  const clicksRecordedTotal = new Counter({
    name: 'hop_clicks_recorded_total',
    help: 'Clicks accepted into the buffer',
    registers: [register],
    collect() {
      this.inc(pending.clicks);
      pending.clicks = 0;
    },
  });
  const clicksDroppedTotal = new Counter({
    name: 'hop_clicks_dropped_total',
    help: 'Clicks dropped because the buffer was full',
    registers: [register],
    collect() {
      this.inc(pending.dropped);
      pending.dropped = 0;
    },
  });
  const changeLogSyncs = new Histogram({
    name: 'hop_change_log_sync_seconds',
    help: 'Embedded: one group commit of the change log (read the new changes, append, fsync)',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [register],
  });
  const changeLogChanges = new Counter({
    name: 'hop_change_log_changes_total',
    help: 'Embedded: link changes written to the change log and fsynced',
    registers: [register],
  });
  const batches = new Histogram({
    name: 'hop_click_batch_write_seconds',
    help: 'Time to write one click batch',
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [register],
  });
  const batchEvents = new Counter({
    name: 'hop_clicks_written_total',
    help: 'Clicks written to the store (to the rollups, or raw to the embedded click log)',
    registers: [register],
  });
  const folded = new Counter({
    name: 'hop_clicks_folded_total',
    help: 'Clicks summed into rollups by the embedded writer (stored raw before, counted in written)',
    registers: [register],
  });
  const foldRows = new Counter({
    name: 'hop_click_fold_rows_total',
    help: 'Rollup rows the embedded writer folded clicks into',
    registers: [register],
  });
  const folds = new Histogram({
    name: 'hop_click_fold_seconds',
    help: 'Time to fold held clicks into the rollups, rests between its batches included',
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60],
    registers: [register],
  });
  const batchFailures = new Counter({
    name: 'hop_click_batch_failures_total',
    help: 'Click batch writes that failed (they are retried)',
    registers: [register],
  });
  const limited = new Counter({
    name: 'hop_rate_limited_total',
    help: 'Requests refused by a rate limit',
    labelNames: ['policy'] as const,
    registers: [register],
  });
  // The PostgreSQL store's servers, when there are any.
  let topology: (() => StoreTopology) | null = null;
  const servers = () =>
    (topology?.().shards ?? []).flatMap((s) => [
      {
        shard: s.shard,
        role: 'primary',
        name: s.primary.name,
        up: s.primary.up,
        pool: s.primary.pool,
        replica: null,
      },
      ...s.replicas.map((r) => ({
        shard: s.shard,
        role: 'replica',
        name: r.name,
        up: r.up,
        pool: r.pool,
        replica: r,
      })),
    ]);
  new Gauge({
    name: 'hop_db_pool_connections',
    help: 'Pooled connections per database server, by state (in_use, idle) and the pool size (max)',
    labelNames: ['server', 'state'] as const,
    registers: [register],
    collect() {
      this.reset();
      for (const s of servers()) {
        this.set({ server: s.name, state: 'in_use' }, s.pool.total - s.pool.idle);
        this.set({ server: s.name, state: 'idle' }, s.pool.idle);
        this.set({ server: s.name, state: 'max' }, s.pool.max);
      }
    },
  });
  new Gauge({
    name: 'hop_db_pool_waiting',
    help: 'Queries waiting for a pooled connection, per database server',
    labelNames: ['server'] as const,
    registers: [register],
    collect() {
      this.reset();
      for (const s of servers()) this.set({ server: s.name }, s.pool.waiting);
    },
  });
  new Gauge({
    name: 'hop_db_server_up',
    help: 'Whether the last check reached the server (1) or not (0)',
    labelNames: ['server', 'role', 'shard'] as const,
    registers: [register],
    collect() {
      this.reset();
      for (const s of servers()) this.set({ server: s.name, role: s.role, shard: s.shard }, s.up ? 1 : 0);
    },
  });
  new Gauge({
    name: 'hop_db_replica_in_rotation',
    help: 'Whether a replica serves reads (1) or is out for lag or failure (0)',
    labelNames: ['server'] as const,
    registers: [register],
    collect() {
      this.reset();
      for (const s of servers()) if (s.replica) this.set({ server: s.name }, s.replica.inRotation ? 1 : 0);
    },
  });
  new Gauge({
    name: 'hop_db_replica_lag_seconds',
    help: 'How far a replica trails its primary, in seconds',
    labelNames: ['server'] as const,
    registers: [register],
    collect() {
      this.reset();
      for (const s of servers())
        if (s.replica?.lagMs !== null && s.replica?.lagMs !== undefined)
          this.set({ server: s.name }, s.replica.lagMs / 1000);
    },
  });
  new Gauge({
    name: 'hop_db_replica_lag_bytes',
    help: 'How far a replica trails its primary, in bytes of WAL not yet replayed',
    labelNames: ['server'] as const,
    registers: [register],
    collect() {
      this.reset();
      for (const s of servers())
        if (s.replica?.lagBytes !== null && s.replica?.lagBytes !== undefined)
          this.set({ server: s.name }, s.replica.lagBytes);
    },
  });
  let databaseMemory: (() => Promise<DatabaseThreadMemory>) | null = null;
  new Gauge({
    name: 'hop_embedded_db_memory_bytes',
    help: "The embedded database thread's memory by part: wasm (PostgreSQL's memory; it never shrinks), heap_used and heap_total (the thread's V8 heap), external",
    labelNames: ['part'] as const,
    registers: [register],
    async collect() {
      this.reset();
      if (databaseMemory === null) return;
      const m = await databaseMemory().catch(() => null);
      if (m === null) return;
      this.set({ part: 'wasm' }, m.wasm);
      this.set({ part: 'heap_used' }, m.heapUsed);
      this.set({ part: 'heap_total' }, m.heapTotal);
      this.set({ part: 'external' }, m.external);
    },
  });
  const acquire = new Histogram({
    name: 'hop_db_pool_acquire_seconds',
    help: 'Time a query waited for a pooled connection, per database server',
    labelNames: ['server'] as const,
    buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [register],
  });
  const refused = new Counter({
    name: 'hop_db_pool_refused_total',
    help: 'Queries refused a connection (queue_full, timeout, down, breaker_open), per database server',
    labelNames: ['server', 'reason'] as const,
    registers: [register],
  });
  const fallbacks = new Counter({
    name: 'hop_db_primary_fallbacks_total',
    help: 'Reads a replica missed that were asked of the primary, by result (refused: over the bound)',
    labelNames: ['result'] as const,
    registers: [register],
  });
  const early = new Counter({
    name: 'hop_cache_early_refreshes_total',
    help: 'Shared-cache entries reloaded ahead of their expiry by one reader (XFetch)',
    registers: [register],
  });
  new Counter({
    name: 'hop_store_lookups_total',
    help: 'Redirect lookups that reached the store (missed every cache tier, or refreshed early)',
    registers: [register],
    collect() {
      this.inc(pending.storeLookups);
      pending.storeLookups = 0;
    },
  });
  const storeRejected = new Counter({
    name: 'hop_store_reads_rejected_total',
    help: 'Lookups refused with 503 because the most store reads allowed at once were in flight (bulkhead)',
    registers: [register],
  });
  const redisSeconds = new FastHistogram({
    name: 'hop_redis_command_seconds',
    help: 'Redis command latency by operation and outcome',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1],
    registers: [register],
  });
  const redisChildren = new Map<string, FastHistogramChild>();
  const limiterFallbacks = new Counter({
    name: 'hop_rate_limit_fallbacks_total',
    help: 'Rate-limit decisions made by the per-process limiter because Redis was unreachable',
    registers: [register],
  });
  const breakers = new Gauge({
    name: 'hop_circuit_breaker_state',
    help: 'Circuit breaker state: 0 closed, 1 half-open, 2 open',
    labelNames: ['breaker'] as const,
    registers: [register],
  });
  // Embedded backups (HOP_BACKUP_DIR). The last success is 0 until one is known, which the
  // backup-age alert reads as "none" only where the interval says backups are scheduled.
  const backupInterval = new Gauge({
    name: 'hop_backup_interval_seconds',
    help: 'Embedded: seconds between scheduled backups (0: not scheduled)',
    registers: [register],
  });
  const backupLast = new Gauge({
    name: 'hop_backup_last_success_timestamp_seconds',
    help: 'Embedded: when the newest good backup in HOP_BACKUP_DIR was taken (read from the directory at start)',
    registers: [register],
  });
  const backupSeconds = new Gauge({
    name: 'hop_backup_duration_seconds',
    help: 'Embedded: how long the last scheduled backup took (snapshot, compress, write, fsync)',
    registers: [register],
  });
  const backupBytes = new Gauge({
    name: 'hop_backup_size_bytes',
    help: 'Embedded: size of the newest good backup file',
    registers: [register],
  });
  const backupFailures = new Counter({
    name: 'hop_backup_failures_total',
    help: 'Embedded: scheduled backups that failed',
    registers: [register],
  });
  const cacheKeys = { l1: {}, l2: {} } as Record<'l1' | 'l2', Partial<Record<CacheResult, string>>>;
  return {
    redirect(o) {
      pending.redirect[o]++;
    },
    redirectAnswered(seconds) {
      redirectSeconds.observe(seconds);
    },
    cacheLookup(tier, result) {
      let k = cacheKeys[tier][result];
      if (k === undefined) {
        k = `${tier}:${result}`;
        cacheKeys[tier][result] = k;
      }
      pending.cache.set(k, (pending.cache.get(k) ?? 0) + 1);
    },
    loadCoalesced() {
      pending.coalesced++;
    },
    httpRequest: (route, method, status, seconds) =>
      httpDuration.labels(route, method, String(status)).observe(seconds),
    linkCreated: () => created.inc(),
    clicksRecorded(n) {
      pending.clicks += n;
    },
    clicksDropped(n) {
      pending.dropped += n;
    },
    clickBatchWritten(n, seconds) {
      batchEvents.inc(n);
      batches.observe(seconds);
    },
    clickBatchFailed: () => batchFailures.inc(),
    clicksFolded(clicks, rows, seconds) {
      folded.inc(clicks);
      foldRows.inc(rows);
      folds.observe(seconds);
    },
    rateLimited: (p) => limited.labels(p).inc(),
    poolAcquired: (server, seconds) => acquire.labels(server).observe(seconds),
    poolRefused: (server, reason) => refused.labels(server, reason).inc(),
    primaryFallback: (result) => fallbacks.labels(result).inc(),
    earlyRefresh: () => early.inc(),
    storeReadRejected: () => storeRejected.inc(),
    storeLookup() {
      pending.storeLookups++;
    },
    redisCommand(op, seconds, ok) {
      // One child per (op, outcome), bound once.
      const k = ok ? op : `${op}\u0000`;
      let child = redisChildren.get(k);
      if (child === undefined) {
        child = redisSeconds.child({ op, ok: ok ? 'true' : 'false' });
        redisChildren.set(k, child);
      }
      child.observe(seconds);
    },
    rateLimitFallback: () => limiterFallbacks.inc(),
    changeLogSynced(changes, seconds) {
      changeLogSyncs.observe(seconds);
      changeLogChanges.inc(changes);
    },
    backupScheduled: (interval) => backupInterval.set(interval),
    backupSucceeded(at, seconds, bytes) {
      backupLast.set(at);
      if (seconds !== null) backupSeconds.set(seconds);
      backupBytes.set(bytes);
    },
    backupFailed: () => backupFailures.inc(),
    breakerState: (name, state) =>
      breakers.labels(name).set(state === 'open' ? 2 : state === 'half-open' ? 1 : 0),
    watchStore(t) {
      topology = t;
    },
    watchDatabaseMemory(read) {
      databaseMemory = read;
    },
    async render() {
      opts.gauges?.();
      return { contentType: register.contentType, body: await register.metrics() };
    },
    async snapshot(): Promise<MetricsSnapshot> {
      // get() runs each counter's collect(), folding in the plain-number tallies first.
      const [r, c, rec, drop, lat, written, failed] = await Promise.all([
        redirectsTotal.get(),
        cacheTotal.get(),
        clicksRecordedTotal.get(),
        clicksDroppedTotal.get(),
        httpDuration.get(),
        batchEvents.get(),
        batchFailures.get(),
      ]);
      const buckets = new Map<number, number>();
      let requests = 0;
      for (const v of lat.values as Values) {
        if (v.metricName?.endsWith('_count')) requests += v.value;
        if (!v.metricName?.endsWith('_bucket')) continue;
        const le = v.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(v.labels.le);
        buckets.set(le, (buckets.get(le) ?? 0) + v.value);
      }
      const l1 = (result: string) => total(c.values, (l) => l.tier === 'l1' && l.result === result);
      return {
        redirects: total(r.values),
        apiRequests: requests,
        apiLatency: [...buckets]
          .sort(([a], [b]) => a - b)
          .map(([le, count]) => ({ le, count }))
          .concat(buckets.size === 0 ? [{ le: Number.POSITIVE_INFINITY, count: 0 }] : []),
        cache: { hits: l1('hit'), misses: l1('miss'), negative: l1('negative') },
        clicks: {
          recorded: total(rec.values),
          written: total(written.values),
          dropped: total(drop.values),
          batchFailures: total(failed.values),
        },
      };
    },
  };
}
