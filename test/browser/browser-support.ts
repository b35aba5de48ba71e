// What the dashboard's browser tests stand on: Hop listening on a real port (so short URLs
// work in the browser), a local target site to land on, and Debian's Chromium through
// playwright-core with a fresh profile (installed from apt when missing; never downloaded).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { type BrowserContext, chromium } from 'playwright-core';
import { buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { buildDeps, closeDeps, type Deps } from '../../src/deps.ts';
import { createApiKey } from '../../src/keys/api-keys.ts';
import { createLogger } from '../../src/logger.ts';
import { openEmbeddedStore } from '../../src/storage/embedded/open-embedded-store.ts';
import { TEST_KEY } from '../support/harness.ts';
import { freePort } from '../support/hop-process.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CHROMIUM = '/usr/bin/chromium';
export const ARTIFACTS = join(ROOT, 'test-artifacts');

export interface LiveHop {
  url: string;
  key: string;
  app: FastifyInstance;
  deps: Deps;
  close(): Promise<void>;
}

export async function startLiveHop(env: Record<string, string> = {}): Promise<LiveHop> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const config = loadConfig(
    {},
    {
      PORT: String(port),
      HOST: '127.0.0.1',
      HOP_PUBLIC_URL: url,
      HOP_DATA_DIR: ':memory:',
      HOP_RATE_LIMITS: 'off',
      HOP_LOG_LEVEL: 'silent',
      // Clicks reach the rollups quickly, so the analytics page can show them within seconds.
      HOP_CLICK_FLUSH_MS: '200',
      ...env,
    },
  );
  const store = await openEmbeddedStore({ dataDir: null, codeLength: config.codeLength });
  const deps = await buildDeps(config, { store, log: createLogger('silent') });
  await createApiKey(deps.store, 'browser-test', new Date(), TEST_KEY);
  const app = await buildApp(deps);
  await app.listen({ port, host: '127.0.0.1' });
  return {
    url,
    key: TEST_KEY,
    app,
    deps,
    async close() {
      await app.close();
      await closeDeps(deps);
    },
  };
}

/**
 * A site for short links to land on. Its URLs use the name `localhost` (it listens on
 * 127.0.0.1): Hop refuses links to its own host, 127.0.0.1, as loops.
 */
export async function startTargetSite(): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const name = (req.url ?? '/').split('?')[0]!.slice(1) || 'home';
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><html lang="en"><title>Target ${name}</title><h1>Target ${name}</h1></html>`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  return {
    url: `http://localhost:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export function ensureChromium(): void {
  if (existsSync(CHROMIUM)) return;
  execFileSync('bash', [join(ROOT, 'scripts/ensure-chromium.sh')], { stdio: 'inherit' });
}

export async function launchBrowser(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  ensureChromium();
  const profile = mkdtempSync(join(tmpdir(), 'hop-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--headless',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1280, height: 800 },
    // Headless Chromium names itself HeadlessChrome, which Hop rightly counts as a bot; the
    // tests play a person using a desktop browser.
    userAgent:
      'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36',
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
