// The Metrics port: what Hop counts, named once. The Prometheus adapter serves /metrics;
// the noop adapter keeps unit tests free of global state.
import type { DatabaseThreadMemory, StoreTopology } from '../storage/ports.ts';

export type CacheResult = 'hit' | 'miss' | 'negative';
/** `error`: the redirect could not be decided (the store or its bounds answered 503): the availability SLI. */
export type RedirectOutcome = 'redirect' | 'not_found' | 'gone' | 'error';

/** Cumulative figures since start, for the dashboard's system page (rates come from deltas). */
export interface MetricsSnapshot {
  redirects: number;
  apiRequests: number;
  /** API latency histogram: cumulative counts per upper bound in seconds, +Inf last. */
  apiLatency: { le: number; count: number }[];
  cache: { hits: number; misses: number; negative: number };
  clicks: { recorded: number; written: number; dropped: number; batchFailures: number };
}

/** What the click writers count: all a writer on the database's own thread reports back. */
export type ClickMetrics = Pick<
  Metrics,
  'clicksRecorded' | 'clicksDropped' | 'clickBatchWritten' | 'clickBatchFailed' | 'clicksFolded'
>;

export interface Metrics {
  redirect(outcome: RedirectOutcome): void;
  /** Time from a redirect request's arrival at the handler to its answer: the latency SLI. */
  redirectAnswered(seconds: number): void;
  cacheLookup(tier: 'l1' | 'l2', result: CacheResult): void;
  loadCoalesced(): void;
  httpRequest(route: string, method: string, status: number, seconds: number): void;
  linkCreated(): void;
  clicksRecorded(n: number): void;
  clicksDropped(n: number): void;
  clickBatchWritten(events: number, seconds: number): void;
  clickBatchFailed(): void;
  /** A fold summed this many clicks (stored raw earlier) into rollup rows (the embedded writer). */
  clicksFolded(clicks: number, rows: number, seconds: number): void;
  rateLimited(policy: string): void;
  /** Time a query waited for a pooled connection to a database server. */
  poolAcquired(server: string, seconds: number): void;
  /** A query refused a connection: wait queue full, acquire timeout, the server down, or its breaker open. */
  poolRefused(server: string, reason: string): void;
  /** A read a replica missed, asked again of the primary (or refused by the bound on that). */
  primaryFallback(result: string): void;
  /** Pool, replica and shard gauges, read from the store each time metrics are scraped. */
  watchStore(topology: () => StoreTopology): void;
  /** The embedded database thread's memory, asked of it each time metrics are scraped. */
  watchDatabaseMemory(read: () => Promise<DatabaseThreadMemory>): void;
  /** An L2 entry refreshed ahead of its expiry (XFetch). */
  earlyRefresh(): void;
  /** A redirect lookup that reached the store (a miss in every cache tier, or an early refresh). */
  storeLookup(): void;
  /** A store lookup refused because too many were in flight (the bulkhead). */
  storeReadRejected(): void;
  /** One Redis command: its latency and whether it succeeded. */
  redisCommand(op: string, seconds: number, ok: boolean): void;
  /** A rate-limit decision made by the in-process fallback because Redis was unreachable. */
  rateLimitFallback(): void;
  /** Embedded: one group commit of the change log (changes appended, read + write + fsync time). */
  changeLogSynced(changes: number, seconds: number): void;
  /** A circuit breaker changed state (closed, open, half-open): `redis_cache`, `postgres_<server>`. */
  breakerState(name: string, state: string): void;
  /** Embedded: scheduled backups are on, every this many seconds (the backup-age alert's guard). */
  backupScheduled(intervalSeconds: number): void;
  /** A good backup: its time (epoch s), and for one just taken its duration and size. */
  backupSucceeded(atSeconds: number, seconds: number | null, bytes: number): void;
  backupFailed(): void;
  /** Prometheus text exposition. */
  render(): Promise<{ contentType: string; body: string }>;
  snapshot(): Promise<MetricsSnapshot>;
}

export const noopMetrics: Metrics = {
  redirect() {},
  redirectAnswered() {},
  cacheLookup() {},
  loadCoalesced() {},
  httpRequest() {},
  linkCreated() {},
  clicksRecorded() {},
  clicksDropped() {},
  clickBatchWritten() {},
  clickBatchFailed() {},
  clicksFolded() {},
  rateLimited() {},
  poolAcquired() {},
  poolRefused() {},
  primaryFallback() {},
  watchStore() {},
  watchDatabaseMemory() {},
  earlyRefresh() {},
  storeReadRejected() {},
  storeLookup() {},
  redisCommand() {},
  breakerState() {},
  backupScheduled() {},
  backupSucceeded() {},
  backupFailed() {},
  rateLimitFallback() {},
  changeLogSynced() {},
  async render() {
    return { contentType: 'text/plain; version=0.0.4', body: '' };
  },
  async snapshot() {
    return {
      redirects: 0,
      apiRequests: 0,
      apiLatency: [{ le: Number.POSITIVE_INFINITY, count: 0 }],
      cache: { hits: 0, misses: 0, negative: 0 },
      clicks: { recorded: 0, written: 0, dropped: 0, batchFailures: 0 },
    };
  },
};
