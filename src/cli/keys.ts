// hop keys create|list|revoke — works on the store directly (the server must not hold the
// embedded data directory; the API's /api/v1/keys does the same while it runs).
import type { Config } from '../config.ts';
import { openStore } from '../deps.ts';
import { createApiKey } from '../keys/api-keys.ts';

export async function runKeys(
  config: Config,
  args: string[],
  name: string,
  out: (l: string) => void,
  err: (l: string) => void,
): Promise<number> {
  const [verb, target] = args;
  if (verb !== 'create' && verb !== 'list' && verb !== 'revoke') {
    err('Usage: hop keys create [--name NAME] | hop keys list | hop keys revoke <id|prefix>');
    return 2;
  }
  if (verb === 'revoke' && target === undefined) {
    err('Usage: hop keys revoke <id|prefix>');
    return 2;
  }
  const store = await openStore(config);
  try {
    if (verb === 'create') {
      const { key, record } = await createApiKey(store, name, new Date());
      out(`Created ${record.id} (${record.name}). The key is shown once:\n${key}`);
    } else if (verb === 'list') {
      for (const k of await store.listApiKeys()) {
        out(
          `${k.id}\t${k.prefix}…\t${k.name}\t${k.createdAt.toISOString()}\t${k.revokedAt ? `revoked ${k.revokedAt.toISOString()}` : 'active'}`,
        );
      }
    } else {
      if (!(await store.revokeApiKey(target!, new Date()))) {
        err(`No active key matches "${target}".`);
        return 1;
      }
      out(`Revoked ${target}.`);
    }
    return 0;
  } finally {
    await store.close();
  }
}
