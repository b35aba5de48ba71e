#!/usr/bin/env node
// Launcher: runs Hop from its bundle in dist/server (scripts/build-server.ts), which spares the
// process tsx's loader on both of its threads. A bundle that is missing or older than any source
// file is rebuilt first, in a child process, so there is no build step to forget and no stale
// output to run; where it cannot be built (no esbuild, a read-only install), the TypeScript runs
// through tsx as before.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return t;
}

function bundleIsFresh() {
  try {
    const built = statSync(join(root, 'dist', 'server', 'built')).mtimeMs;
    return built >= Math.max(newest(join(root, 'src')), statSync(join(root, 'package.json')).mtimeMs);
  } catch {
    return false;
  }
}

function build() {
  const run = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'scripts', 'build-server.ts')], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return run.status === 0;
}

if (bundleIsFresh() || build()) {
  await import('../dist/server/hop.js');
} else {
  process.stderr.write(
    'hop: could not bundle the server into dist/server; running the sources through tsx\n',
  );
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
