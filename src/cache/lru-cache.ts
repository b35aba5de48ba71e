// The in-process tier (L1): bounded, with a TTL per entry. Memory is capped by the entry count,
// never by the number of links. Synchronous, so a hit costs no I/O and no await.
//
// Eviction is "second chance" (CLOCK), an LRU approximation: a hit only sets a flag instead of
// re-inserting into the Map, which keeps the hot path free of Map mutations.

interface Entry<V> {
  value: V;
  expiresAt: number;
  used: boolean;
}

export class LruCache<V> {
  private readonly map = new Map<string, Entry<V>>();
  readonly capacity: number;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  /** undefined: not cached (or expired). */
  get(key: string, now: number): V | undefined {
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    if (e.expiresAt <= now) {
      this.map.delete(key);
      return undefined;
    }
    e.used = true;
    return e.value;
  }

  set(key: string, value: V, ttlMs: number, now: number): void {
    if (this.capacity === 0) return;
    const existing = this.map.get(key);
    if (existing !== undefined) {
      existing.value = value;
      existing.expiresAt = now + ttlMs;
      return;
    }
    if (this.map.size >= this.capacity) this.evictOne();
    this.map.set(key, { value, expiresAt: now + ttlMs, used: false });
  }

  /** Oldest entries that were used since their last pass get moved to the back once. */
  private evictOne(): void {
    for (let spins = 0; spins <= this.map.size; spins++) {
      const oldest = this.map.entries().next().value;
      if (oldest === undefined) return;
      const [k, e] = oldest;
      this.map.delete(k);
      if (!e.used) return;
      e.used = false;
      this.map.set(k, e);
    }
  }

  delete(key: string): void {
    this.map.delete(key);
  }

  clear(): void {
    this.map.clear();
  }

  get size(): number {
    return this.map.size;
  }
}
