// The in-process tier (L1): a bounded LRU with a TTL per entry. Memory is capped by its
// entry count, never by the number of links. Synchronous, so a hit costs no I/O and no await.

interface Entry<V> {
  value: V;
  expiresAt: number;
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
    // Re-insert to mark as most recently used (Map keeps insertion order).
    this.map.delete(key);
    this.map.set(key, e);
    return e.value;
  }

  set(key: string, value: V, ttlMs: number, now: number): void {
    if (this.capacity === 0) return;
    this.map.delete(key);
    this.map.set(key, { value, expiresAt: now + ttlMs });
    if (this.map.size > this.capacity) {
      const oldest = this.map.keys().next().value as string;
      this.map.delete(oldest);
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
