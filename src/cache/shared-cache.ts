// The shared tier (L2) port. Embedded Hop has none (one process); the Redis tier implements it.
import type { RedirectRecord } from '../domain/link.ts';

export interface SharedCache {
  /** undefined: miss; null: a cached "no such code". */
  get(code: string): Promise<RedirectRecord | null | undefined>;
  set(code: string, record: RedirectRecord | null): Promise<void>;
  delete(code: string): Promise<void>;
}
