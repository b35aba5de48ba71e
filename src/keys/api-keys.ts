// API keys: high-entropy random strings, shown once, stored only as SHA-256 hashes (a slow
// password hash buys nothing for 190 random bits and would cost every API request).
import { createHash, randomBytes } from 'node:crypto';
import { generateCode } from '../domain/codes.ts';
import type { ApiKeyRecord, ApiKeyStore } from '../storage/ports.ts';

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export function newApiKeyString(): string {
  return `hop_${generateCode(32)}`;
}

/** Stores a key (a given one, or a fresh one) and returns it with its record: the only time it is seen. */
export async function createApiKey(
  store: ApiKeyStore,
  name: string,
  now: Date,
  key: string = newApiKeyString(),
): Promise<{ key: string; record: ApiKeyRecord }> {
  const record: ApiKeyRecord = {
    id: `key_${randomBytes(9).toString('base64url')}`,
    name,
    prefix: key.slice(0, 12),
    createdAt: now,
    revokedAt: null,
  };
  await store.createApiKey(record, hashApiKey(key));
  return { key, record };
}

/**
 * First start: when no key exists, create the configured initial key, or a fresh one that the
 * caller shows once. Returns the new key only when it was generated here.
 */
export async function ensureInitialKey(
  store: ApiKeyStore,
  initialKey: string | null,
  now: Date,
): Promise<{ created: boolean; generatedKey: string | null }> {
  if ((await store.countApiKeys()) > 0) return { created: false, generatedKey: null };
  if (initialKey !== null) {
    try {
      await createApiKey(store, 'initial', now, initialKey);
    } catch (err) {
      // A fleet's processes start at once with the same initial key: all saw no key, one stored
      // it, and the others' inserts hit the unique hash. The key exists, which is all they need.
      if ((await store.findApiKeyByHash(hashApiKey(initialKey))) !== null) {
        return { created: false, generatedKey: null };
      }
      throw err;
    }
    return { created: true, generatedKey: null };
  }
  const { key } = await createApiKey(store, 'admin', now);
  return { created: true, generatedKey: key };
}
