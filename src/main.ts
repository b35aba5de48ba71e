// serve: load config → build deps → build app → listen. SIGTERM/SIGINT drain: readiness turns 503
// (for HOP_DRAIN_DELAY_MS, still serving), then stop accepting, finish in-flight requests (each
// answered with Connection: close), flush buffered clicks, close the store.
import { createServer } from 'node:net';
import { buildApp } from './app.ts';
import type { Config } from './config.ts';
import { buildDeps, closeDeps } from './deps.ts';
import { ensureInitialKey } from './keys/api-keys.ts';

/** PORT=0 asks for any free port; the public URL must name the real one, so pick it first. */
async function resolvePort(config: Config, publicUrlGiven: boolean): Promise<Config> {
  if (config.port !== 0) return config;
  const port = await new Promise<number>((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, config.host, () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
  return {
    ...config,
    port,
    publicUrl: publicUrlGiven ? config.publicUrl : config.publicUrl.replace(/:0$/, `:${port}`),
  };
}

export async function serve(
  initial: Config,
  publicUrlGiven: boolean,
  out: (line: string) => void,
): Promise<void> {
  const config = await resolvePort(initial, publicUrlGiven);
  const deps = await buildDeps(config);
  const state = { draining: false };
  const app = await buildApp(deps, state);
  const first = await ensureInitialKey(deps.store, config.initialApiKey, new Date());
  await app.listen({ port: config.port, host: config.host });
  // `hop backup`'s control socket, and scheduled backups when HOP_BACKUP_DIR is set.
  await deps.backups?.start();
  deps.log.info(
    { url: config.publicUrl, listen: `${config.host}:${config.port}`, store: deps.store.kind },
    'hop listening',
  );
  out(`Hop is running at ${config.publicUrl}`);
  if (first.generatedKey !== null) {
    out(`Admin API key (shown once, keep it safe): ${first.generatedKey}`);
  } else if (first.created) {
    out('Created the admin API key from HOP_INITIAL_API_KEY.');
  }

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    state.draining = true;
    deps.log.info({ signal }, 'draining');
    const force = setTimeout(
      () => {
        deps.log.error('shutdown timed out; closing anyway');
        process.exit(1);
      },
      config.drainDelayMs + config.shutdownTimeoutMs + 5_000,
    );
    force.unref();
    try {
      // Not ready, still serving: the balancer's checks see 503 and take this process out of
      // rotation before it stops listening, so no request meets a closed port.
      if (config.drainDelayMs > 0) await new Promise((r) => setTimeout(r, config.drainDelayMs));
      deps.log.info('closing');
      await Promise.race([app.close(), new Promise((r) => setTimeout(r, config.shutdownTimeoutMs).unref())]);
      await closeDeps(deps);
      deps.log.info('stopped cleanly');
      process.exitCode = 0;
      // Everything is closed; should a library still hold the loop open, leave anyway.
      setTimeout(() => process.exit(), 200).unref();
    } catch (err) {
      deps.log.error({ err }, 'shutdown failed');
      process.exitCode = 1;
    }
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}
