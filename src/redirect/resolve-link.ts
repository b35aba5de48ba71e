// Tiered read path (DESIGN §5): L1 → L2 (when configured) → store. One in-flight load per
// code, and lower-tier fills happen off the response path.
import type { LruCache } from '../cache/lru-cache.ts';
import type { SharedCache } from '../cache/shared-cache.ts';
import type { RedirectRecord } from '../domain/link.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { LinkStore } from '../storage/ports.ts';

export interface ResolverOptions {
  readonly l1: LruCache<RedirectRecord | null> | null;
  readonly l2: SharedCache | null;
  readonly ttlMs: number;
  /** Unknown codes are remembered for less time, so a new link is never hidden for long. */
  readonly negativeTtlMs: number;
}

export class LinkResolver {
  private readonly inflight = new Map<string, Promise<RedirectRecord | null>>();
  // Bumped by every invalidation: a load that started before it must not fill L1 with what it read.
  private epoch = 0;
  private readonly store: Pick<LinkStore, 'getRedirect'>;
  private readonly opts: ResolverOptions;
  private readonly metrics: Metrics;

  constructor(store: Pick<LinkStore, 'getRedirect'>, opts: ResolverOptions, metrics: Metrics) {
    this.store = store;
    this.opts = opts;
    this.metrics = metrics;
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
    const pending = this.inflight.get(code);
    if (pending !== undefined) {
      this.metrics.loadCoalesced();
      return pending;
    }
    const load = this.load(code).finally(() => this.inflight.delete(code));
    this.inflight.set(code, load);
    return load;
  }

  private async load(code: string): Promise<RedirectRecord | null> {
    const epoch = this.epoch;
    const l2 = this.opts.l2;
    if (l2 !== null) {
      const hit = await l2.get(code).catch(() => undefined);
      if (hit !== undefined) {
        if (epoch === this.epoch) this.fillL1(code, hit);
        return hit;
      }
    }
    const record = await this.store.getRedirect(code);
    if (epoch !== this.epoch) return record;
    this.fillL1(code, record);
    if (l2 !== null) queueMicrotask(() => void l2.set(code, record).catch(() => {}));
    return record;
  }

  private fillL1(code: string, record: RedirectRecord | null): void {
    this.opts.l1?.set(code, record, record === null ? this.opts.negativeTtlMs : this.opts.ttlMs, Date.now());
  }

  /** After a change in this process: drop every cached copy (and any stale negative entry). */
  async invalidate(code: string): Promise<void> {
    this.epoch++;
    this.inflight.delete(code);
    this.opts.l1?.delete(code);
    await this.opts.l2?.delete(code).catch(() => {});
  }
}
