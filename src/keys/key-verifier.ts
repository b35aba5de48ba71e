// Checks presented API keys. A verified key is remembered briefly so that each API request
// does not cost a database round trip; revoking through this process forgets every remembered
// key at once, and unknown or revoked keys are never remembered.
import type { ApiKeyRecord, ApiKeyStore } from '../storage/ports.ts';
import { hashApiKey } from './api-keys.ts';

export class KeyVerifier {
  private readonly store: ApiKeyStore;
  private readonly ttlMs: number;
  private readonly known = new Map<string, { record: ApiKeyRecord; until: number }>();
  /** Live keys by id, for dashboard sessions (which carry the key's id, never the key). */
  private liveById: { byId: Map<string, ApiKeyRecord>; until: number } | null = null;

  constructor(store: ApiKeyStore, ttlMs: number) {
    this.store = store;
    this.ttlMs = ttlMs;
  }

  async verify(key: string): Promise<ApiKeyRecord | null> {
    const hash = hashApiKey(key);
    const now = Date.now();
    const hit = this.known.get(hash);
    if (hit !== undefined && hit.until > now) return hit.record;
    const record = await this.store.findApiKeyByHash(hash);
    if (record === null) {
      this.known.delete(hash);
      return null;
    }
    if (this.ttlMs > 0) {
      if (this.known.size >= 10_000) this.known.clear(); // bounded: keys are few, guesses are not cached
      this.known.set(hash, { record, until: now + this.ttlMs });
    }
    return record;
  }

  /**
   * The live key with this id. Keys are few, so the whole list is remembered for the cache
   * lifetime; an id missing from it is looked up afresh (a key made since), so only sessions of
   * revoked keys pay that lookup.
   */
  async liveKey(id: string): Promise<ApiKeyRecord | null> {
    const now = Date.now();
    const cached =
      this.liveById !== null && this.liveById.until > now ? this.liveById.byId.get(id) : undefined;
    if (cached !== undefined) return cached;
    const live = (await this.store.listApiKeys()).filter((k) => k.revokedAt === null);
    this.liveById = { byId: new Map(live.map((k) => [k.id, k])), until: now + this.ttlMs };
    return this.liveById.byId.get(id) ?? null;
  }

  async revoke(idOrPrefix: string, now: Date): Promise<boolean> {
    const revoked = await this.store.revokeApiKey(idOrPrefix, now);
    this.known.clear();
    this.liveById = null;
    return revoked;
  }
}
