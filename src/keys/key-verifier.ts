// Checks presented API keys. A verified key is remembered briefly so that each API request
// does not cost a database round trip; revoking through this process forgets every remembered
// key at once, and unknown or revoked keys are never remembered.
import type { ApiKeyRecord, ApiKeyStore } from '../storage/ports.ts';
import { hashApiKey } from './api-keys.ts';

export class KeyVerifier {
  private readonly store: ApiKeyStore;
  private readonly ttlMs: number;
  private readonly known = new Map<string, { record: ApiKeyRecord; until: number }>();

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

  async revoke(idOrPrefix: string, now: Date): Promise<boolean> {
    const revoked = await this.store.revokeApiKey(idOrPrefix, now);
    this.known.clear();
    return revoked;
  }
}
