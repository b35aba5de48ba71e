// Builds a real Hop app (embedded PGlite in memory, the memory store, or PostgreSQL servers when
// HOP_DATABASE_URLS is given) for HTTP tests, with a known admin key; closes everything it opened.
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.ts';
import { type Config, loadConfig } from '../../src/config.ts';
import { buildDeps, closeDeps, type Deps } from '../../src/deps.ts';
import { createApiKey, hashApiKey } from '../../src/keys/api-keys.ts';
import { createLogger } from '../../src/logger.ts';
import { openEmbeddedStore } from '../../src/storage/embedded/open-embedded-store.ts';
import { MemoryStore } from '../../src/storage/memory/memory-store.ts';
import type { Store } from '../../src/storage/ports.ts';
import type { ResolveHost } from '../../src/webhooks/target-guard.ts';

export const TEST_KEY = 'hop_testkeytestkeytestkeytestkey0';

export interface Harness {
  app: FastifyInstance;
  deps: Deps;
  config: Config;
  key: string;
  auth: Record<string, string>;
  close(): Promise<void>;
}

export async function startHarness(
  env: Record<string, string> = {},
  opts: { store?: 'embedded' | 'memory'; listen?: boolean; resolveHost?: ResolveHost } = {},
): Promise<Harness> {
  const config = loadConfig(
    {},
    {
      HOP_DATA_DIR: ':memory:',
      HOP_PUBLIC_URL: 'http://hop.test',
      HOP_RATE_LIMITS: 'off',
      HOP_LOG_LEVEL: 'silent',
      ...env,
    },
  );
  const store: Store | undefined =
    opts.store === 'memory'
      ? new MemoryStore()
      : config.databaseUrls !== null
        ? undefined
        : await openEmbeddedStore({ dataDir: null, codeLength: config.codeLength });
  const deps = await buildDeps(config, {
    ...(store === undefined ? {} : { store }),
    log: createLogger('silent'),
    ...(opts.resolveHost === undefined ? {} : { resolveHost: opts.resolveHost }),
  });
  // Several harnesses may share one PostgreSQL database (standing for several processes).
  if ((await deps.store.findApiKeyByHash(hashApiKey(TEST_KEY))) === null) {
    await createApiKey(deps.store, 'test', new Date(), TEST_KEY);
  }
  const app = await buildApp(deps);
  if (opts.listen) await app.listen({ port: 0, host: '127.0.0.1' });
  else await app.ready();
  return {
    app,
    deps,
    config,
    key: TEST_KEY,
    auth: { authorization: `Bearer ${TEST_KEY}` },
    async close() {
      // A client that aborted a stream may leave a fresh connection with no request on it, which
      // the server never counts as idle; tests do not wait out its timeout.
      const force = setTimeout(() => app.server.closeAllConnections(), 1_000);
      await app.close();
      clearTimeout(force);
      await closeDeps(deps);
    },
  };
}

export function baseUrl(app: FastifyInstance): string {
  const addr = app.server.address();
  if (addr === null || typeof addr === 'string') throw new Error('not listening');
  return `http://127.0.0.1:${addr.port}`;
}
