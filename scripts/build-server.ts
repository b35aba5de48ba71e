// Bundles Hop's server into dist/server with esbuild: the `hop` command and the click writer the
// database thread loads, as plain JavaScript. Running it spares every process tsx's loader on both
// threads (about 45 MB resident, measured by `npm run bench -- memory`). bin/hop.js builds it when
// it is missing or older than a source file, so there is still no step to forget; `npm start` and
// the Docker image build it up front. `node --import tsx scripts/build-server.ts`
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { DIST_DIR, PACKAGE_ROOT } from '../src/paths.ts';

const SRC = join(PACKAGE_ROOT, 'src');
export async function buildServer(): Promise<void> {
  const staging = `${DIST_DIR}.tmp-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  await build({
    entryPoints: {
      hop: join(SRC, 'cli', 'main.ts'),
      'click-thread-host': join(SRC, 'storage', 'embedded', 'click-thread-host.ts'),
    },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // Packages stay in node_modules; chunks keep what is imported on demand (the Redis and
    // PostgreSQL clients, each command's code) out of a process that never asks for it.
    packages: 'external',
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    outdir: staging,
    sourcemap: 'linked',
    logLevel: 'warning',
  });
  // Its time is when the bundle was made from the sources then present (bin/hop.js compares).
  writeFileSync(join(staging, 'built'), `${new Date().toISOString()}\n`);
  // Swapped in whole: a process starting meanwhile sees the old bundle or the new, never half.
  const old = `${DIST_DIR}.old-${process.pid}`;
  try {
    renameSync(DIST_DIR, old);
  } catch {}
  renameSync(staging, DIST_DIR);
  rmSync(old, { recursive: true, force: true });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await buildServer();
  process.stdout.write(`server bundled into ${DIST_DIR}\n`);
}
