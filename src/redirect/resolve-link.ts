// Tiered read path (DESIGN §5): L1 → L2 (when configured) → store. One in-flight load per
// code; lower-tier fills happen off the response path; a hot L2 entry is refreshed early by one
// reader (XFetch) instead of expiring under load; store reads are capped (a bulkhead), so an L2
// outage cannot stampede the database; invalidations from other processes drop L1 entries.
import type { LruCache } from '../cache/lru-cache.ts';
import type { SharedCache } from '../cache/shared-cache.ts';
import { shouldRefreshEarly } from '../cache/xfetch.ts';
import { HopError } from '../domain/errors.ts';
import type { RedirectRecord } from '../domain/link.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { LinkStore } from '../storage/ports.ts';

export interface ResolverOptions {
  readonly l1: LruCache<RedirectRecord | null> | null;
  readonly l2: SharedCache | null;
  readonly ttlMs: number;
  /** Unknown codes are remembered for less time, so a new link is never hidden for long. */
  readonly negativeTtlMs: number;
  /**
   * While L2 is failing, invalidations from other processes cannot arrive: L1 entries then live
   * at most this long.
   */
  readonly degradedTtlMs?: number;
  /** Store loads in flight at most (distinct codes); beyond it, 503 with Retry-After. */
  readonly maxStoreLoads?: number;
  /** false: no shared loads and no early refresh (only to measure what they save). */
  readonly stampedeControl?: boolean;
}

export class LinkResolver {
  private readonly inflight = new Map<string, Promise<RedirectRecord | null>>();
  private readonly refreshing = new Set<string>();
  // Bumped by every invalidation: a load that started before it must not fill L1 with what it read.
  private epoch = 0;
  private storeLoads = 0;
  private readonly store: Pick<LinkStore, 'getRedirect'>;
  private readonly opts: ResolverOptions;
  private readonly metrics: Metrics;

  constructor(store: Pick<LinkStore, 'getRedirect'>, opts: ResolverOptions, metrics: Metrics) {
    this.store = store;
    this.opts = opts;
    this.metrics = metrics;
    opts.l2?.onInvalidate((code) => {
      this.epoch++;
      if (code === null) opts.l1?.clear();
      else opts.l1?.delete(code);
    });
  }

  /** Synchronous on an L1 hit; otherwise one shared load per code. */
  resolve(code: string): RedirectRecord | null | Promise<RedirectRecord | null> {
    const l1 = this.opts.l1;
    if (l1 !== null) {
      const hit = l1.get(code, Date.now());
      if (hit !== undefined) {
        this.metrics.cacheLookup('l1', hit === null ? 'negative' : 'hit');
        return hit;
      }
      this.metrics.cacheLookup('l1', 'miss');
    }
    if (this.opts.stampedeControl === false) return this.load(code);
    const pending = this.inflight.get(code);
    if (pending !== undefined) {
      this.metrics.loadCoalesced();
      return pending;
    }
    const load = this.load(code, true);
    this.inflight.set(code, load);
    return load;
  }

  /**
   * L2, then the store. Plain promise chaining (no async frames): an L2 hit costs one promise
   * beyond the Redis client's own, which shows at tens of thousands of lookups a second. With
   * `shared`, the load is the one in `inflight` and takes itself out when it settles.
   */
  private load(code: string, shared = false): Promise<RedirectRecord | null> {
    const epoch = this.epoch;
    const l2 = this.opts.l2;
    const done = shared ? () => this.settled(code, load) : null;
    const load: Promise<RedirectRecord | null> =
      l2 === null
        ? this.fromStore(code, epoch, done)
        : l2.get(code).then((hit) => {
            if (hit === undefined) {
              this.metrics.cacheLookup('l2', 'miss');
              return this.fromStore(code, epoch, done);
            }
            done?.();
            this.metrics.cacheLookup('l2', hit.record === null ? 'negative' : 'hit');
            if (epoch === this.epoch) this.fillL1(code, hit.record);
            if (
              this.opts.stampedeControl !== false &&
              shouldRefreshEarly(Date.now(), hit.expiresAt, hit.loadMs)
            ) {
              this.refreshEarly(code);
            }
            return hit.record;
          }, this.failed(done));
    return load;
  }

  /** A shared load settled: later readers start their own (an invalidation may have removed it already). */
  private settled(code: string, load: Promise<RedirectRecord | null>): void {
    if (this.inflight.get(code) === load) this.inflight.delete(code);
  }

  private fromStore(code: string, epoch: number, done: (() => void) | null): Promise<RedirectRecord | null> {
    const p = this.loadFromStore(code, epoch);
    if (done === null) return p;
    return p.then((r) => {
      done();
      return r;
    }, this.failed(done));
  }

  private failed(done: (() => void) | null): (err: unknown) => never {
    return (err) => {
      done?.();
      throw err;
    };
  }

  private async loadFromStore(code: string, epoch: number): Promise<RedirectRecord | null> {
    const max = this.opts.maxStoreLoads ?? Number.POSITIVE_INFINITY;
    if (this.storeLoads >= max) {
      this.metrics.storeReadRejected();
      throw new HopError('unavailable', 'Too many lookups are waiting for the store; try again shortly.', {
        headers: { 'retry-after': '1' },
      });
    }
    this.storeLoads++;
    this.metrics.storeLookup();
    const started = performance.now();
    let record: RedirectRecord | null;
    try {
      record = await this.store.getRedirect(code);
    } finally {
      this.storeLoads--;
    }
    const loadMs = performance.now() - started;
    if (epoch !== this.epoch) return record;
    this.fillL1(code, record);
    const l2 = this.opts.l2;
    if (l2 !== null) queueMicrotask(() => void l2.set(code, record, loadMs).catch(() => {}));
    return record;
  }

  /** One background reload per code, while readers keep the entry they have. */
  private refreshEarly(code: string): void {
    if (this.refreshing.has(code)) return;
    this.refreshing.add(code);
    this.metrics.earlyRefresh();
    void this.loadFromStore(code, this.epoch)
      .catch(() => {})
      .finally(() => this.refreshing.delete(code));
  }

  private fillL1(code: string, record: RedirectRecord | null): void {
    const l1 = this.opts.l1;
    if (l1 === null) return;
    let ttl = record === null ? this.opts.negativeTtlMs : this.opts.ttlMs;
    if (this.opts.l2 !== null && !this.opts.l2.healthy) ttl = Math.min(ttl, this.opts.degradedTtlMs ?? ttl);
    // Keyed by the record's own code when that is the key's text, the entry holds one string, not two.
    l1.set(record !== null && record.code === code ? record.code : code, record, ttl, Date.now());
  }

  /** Another process changed this link: drop this process's copy only (L2 is theirs to clear). */
  forget(code: string): void {
    this.epoch++;
    this.inflight.delete(code);
    this.opts.l1?.delete(code);
  }

  /** After a change: drop every cached copy, here and (through L2) in every other process. */
  async invalidate(code: string): Promise<void> {
    this.epoch++;
    this.inflight.delete(code);
    this.opts.l1?.delete(code);
    await this.opts.l2?.invalidate(code).catch(() => {});
  }
}
