// Builds the dashboard (web/src → web/dist) with esbuild: one minified, content-hashed JS file
// and CSS file, and the index.html that names them. `npm install`, `npm start` and `npm test`
// all run it, so a fresh clone never serves a missing or stale dashboard.
// `node --import tsx scripts/build-web.ts` prints the gzipped sizes.
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const WEB = fileURLToPath(new URL('../web/', import.meta.url));

export interface BuiltFile {
  name: string;
  bytes: number;
  gzipBytes: number;
}

export async function buildWeb(outDir: string = join(WEB, 'dist')): Promise<BuiltFile[]> {
  const staging = `${outDir}.tmp-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  const result = await build({
    entryPoints: { app: join(WEB, 'src/main.tsx') },
    outdir: join(staging, 'assets'),
    entryNames: '[name]-[hash]',
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    metafile: true,
    logLevel: 'warning',
    write: true,
  });
  const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
  const js = outputs.find((n) => n.endsWith('.js'));
  const css = outputs.find((n) => n.endsWith('.css'));
  if (js === undefined || css === undefined) throw new Error(`esbuild wrote ${outputs.join(', ')}`);
  const html = readFileSync(join(WEB, 'index.html'), 'utf8').replace('{{js}}', js).replace('{{css}}', css);
  writeFileSync(join(staging, 'index.html'), html);
  // Swap in whole, so a server starting meanwhile never sees half a build.
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(join(outDir, '..'), { recursive: true });
  renameSync(staging, outDir);
  return [js, css].map((name) => {
    const body = readFileSync(join(outDir, 'assets', name));
    return { name, bytes: body.length, gzipBytes: gzipSync(body, { level: 9 }).length };
  });
}

/** Builds only when web/dist is missing or older than a source file (tests share one build). */
export async function ensureWebBuilt(outDir: string = join(WEB, 'dist')): Promise<void> {
  const index = join(outDir, 'index.html');
  const newestSource = (dir: string): number =>
    Math.max(
      0,
      ...readdirSync(dir, { withFileTypes: true }).map((e) =>
        e.isDirectory() ? newestSource(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs,
      ),
    );
  const sources = Math.max(newestSource(join(WEB, 'src')), statSync(join(WEB, 'index.html')).mtimeMs);
  if (!existsSync(index) || statSync(index).mtimeMs < sources) await buildWeb(outDir);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const files = await buildWeb();
  const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`;
  for (const f of files)
    process.stdout.write(`dashboard: ${f.name} ${kb(f.bytes)} (${kb(f.gzipBytes)} gzipped)\n`);
}
