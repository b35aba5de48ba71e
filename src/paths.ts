// Where Hop's own files are. Found from the package root (the nearest folder up with a
// package.json), not from each module's folder, so the same code works run from src/ through tsx
// and bundled into dist/ (scripts/build-server.ts), where every module shares one file's URL.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function packageRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

export const PACKAGE_ROOT = packageRoot(dirname(fileURLToPath(import.meta.url)));

/** Whether this code runs from the bundle in dist/ rather than the TypeScript sources. */
export const BUNDLED = !import.meta.url.endsWith('.ts');

export const MIGRATIONS_DIR = join(PACKAGE_ROOT, 'src', 'storage', 'migrations');
export const WEB_DIST_DIR = join(PACKAGE_ROOT, 'web', 'dist');
/** The database thread's entry: plain JavaScript, loaded as it is in both shapes. */
export const PGLITE_WORKER = join(PACKAGE_ROOT, 'src', 'storage', 'embedded', 'pglite-worker.mjs');
/** The embedded database's data-directory template (storage/embedded/data-template.ts). */
export const DB_TEMPLATE_DIR = join(PACKAGE_ROOT, 'src', 'storage', 'embedded', 'template');
export const DIST_DIR = join(PACKAGE_ROOT, 'dist', 'server');
/** The embedded click writer the database thread loads: bundled, or the TypeScript through tsx. */
export const CLICK_THREAD_HOST = BUNDLED
  ? join(DIST_DIR, 'click-thread-host.js')
  : join(PACKAGE_ROOT, 'src', 'storage', 'embedded', 'click-thread-host.ts');
