// The in-process tier (L1): bounded, with a TTL per entry. Memory is capped by the entry count,
// never by the number of links. Synchronous, so a hit costs no I/O and no await.
//
// Eviction is CLOCK (second chance), an LRU approximation: a hit only sets a flag, and a hand
// sweeping the slots evicts the first entry not used since its last pass.
//
// Entries live in slots, not in an object each: a key's slot number is all the Map holds, and the
// expiry and use flag sit in typed arrays the garbage collector never walks. An entry object per
// link (with its boxed expiry) was about a fifth of the cache's memory at 100,000 links.

const FIRST_SLOTS = 1024;

export class LruCache<V> {
  private readonly index = new Map<string, number>();
  private keys: (string | undefined)[] = [];
  private values: (V | undefined)[] = [];
  private expires = new Float64Array(0);
  private used = new Uint8Array(0);
  /** Slots emptied by delete or expiry, taken before new ones. */
  private free: number[] = [];
  /** Slots handed out so far (the arrays grow with it, up to the capacity). */
  private filled = 0;
  private hand = 0;
  readonly capacity: number;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  /** undefined: not cached (or expired). */
  get(key: string, now: number): V | undefined {
    const slot = this.index.get(key);
    if (slot === undefined) return undefined;
    if (this.expires[slot]! <= now) {
      this.remove(key, slot);
      return undefined;
    }
    this.used[slot] = 1;
    return this.values[slot];
  }

  set(key: string, value: V, ttlMs: number, now: number): void {
    if (this.capacity === 0) return;
    let slot = this.index.get(key);
    if (slot === undefined) {
      slot = this.index.size >= this.capacity ? this.evictOne() : this.emptySlot();
      this.keys[slot] = key;
      this.used[slot] = 0;
      this.index.set(key, slot);
    }
    this.values[slot] = value;
    this.expires[slot] = now + ttlMs;
  }

  delete(key: string): void {
    const slot = this.index.get(key);
    if (slot !== undefined) this.remove(key, slot);
  }

  clear(): void {
    this.index.clear();
    this.keys = [];
    this.values = [];
    this.expires = new Float64Array(0);
    this.used = new Uint8Array(0);
    this.free = [];
    this.filled = 0;
    this.hand = 0;
  }

  get size(): number {
    return this.index.size;
  }

  private remove(key: string, slot: number): void {
    this.index.delete(key);
    this.keys[slot] = undefined;
    this.values[slot] = undefined;
    this.free.push(slot);
  }

  private emptySlot(): number {
    const reused = this.free.pop();
    if (reused !== undefined) return reused;
    const slot = this.filled++;
    if (slot >= this.expires.length) {
      const size = Math.min(this.capacity, Math.max(FIRST_SLOTS, this.expires.length * 2));
      const expires = new Float64Array(size);
      expires.set(this.expires);
      this.expires = expires;
      const used = new Uint8Array(size);
      used.set(this.used);
      this.used = used;
    }
    return slot;
  }

  /** Called when every slot is taken: frees the first slot the hand finds unused since its last pass. */
  private evictOne(): number {
    for (;;) {
      const slot = this.hand;
      this.hand = slot + 1 === this.filled ? 0 : slot + 1;
      if (this.used[slot] === 1) {
        this.used[slot] = 0;
        continue;
      }
      this.index.delete(this.keys[slot]!);
      return slot;
    }
  }
}
