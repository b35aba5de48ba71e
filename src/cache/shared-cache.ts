// The shared tier (L2) port. Embedded Hop has none (one process); the Redis tier implements it.
// It also carries invalidations between processes: a change made through any process reaches
// every other process's in-process tier.
import type { RedirectRecord } from '../domain/link.ts';

export interface SharedEntry {
  /** null: a cached "no such code". */
  readonly record: RedirectRecord | null;
  /** When the entry expires (epoch ms). */
  readonly expiresAt: number;
  /** How long the store took to load it (ms): the cost an early refresh weighs (XFetch). */
  readonly loadMs: number;
}

export interface SharedCache {
  /** undefined: a miss, or the tier is unavailable (the caller reads through to the store). */
  get(code: string): Promise<SharedEntry | undefined>;
  set(code: string, record: RedirectRecord | null, loadMs: number): Promise<void>;
  /** Drops the entry and tells every process (invalidation), this one included. */
  invalidate(code: string): Promise<void>;
  /**
   * Called with each invalidated code, and with null whenever invalidations may have been missed
   * (the subscription was down): then everything held in process must be dropped.
   */
  onInvalidate(handler: (code: string | null) => void): void;
  /** False while the tier is failing (its breaker is open): in-process copies then live briefly. */
  readonly healthy: boolean;
  close(): Promise<void>;
}
