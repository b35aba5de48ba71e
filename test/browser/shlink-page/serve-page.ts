// Builds the page that mounts Shlink's web component (main.ts, bundled by esbuild, and the
// Tailwind stylesheet the component is styled by) into a temporary directory, and serves it from
// its own port: another origin than Hop's, so every API call is a cross-origin one.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { compile } from 'tailwindcss';

const HERE = fileURLToPath(new URL('./', import.meta.url));

const resolvePath = (specifier: string) => fileURLToPath(import.meta.resolve(specifier));

/**
 * The component ships no stylesheet, only Tailwind presets: its styles are the Tailwind classes
 * its code names, which the app compiles (its README's `@source` lines). Tailwind's own scanner is
 * a native package; splitting the code on quotes and spaces finds the same class names, and
 * Tailwind ignores the words that are not classes.
 */
async function shlinkStylesheet(): Promise<string> {
  const input = [
    "@import 'tailwindcss';",
    "@import '@shlinkio/shlink-frontend-kit/tailwind.preset.css';",
    "@import '@shlinkio/shlink-web-component/tailwind.preset.css';",
  ].join('\n');
  const compiler = await compile(input, {
    base: HERE,
    loadStylesheet: async (id, base) => {
      const path = id.startsWith('.')
        ? resolve(base, id)
        : resolvePath(id === 'tailwindcss' ? 'tailwindcss/index.css' : id);
      return { path, base: dirname(path), content: readFileSync(path, 'utf8') };
    },
  });
  const componentDist = dirname(resolvePath('@shlinkio/shlink-web-component'));
  const sources = [
    ...readdirSync(componentDist)
      .filter((f) => f.endsWith('.js'))
      .map((f) => join(componentDist, f)),
    resolvePath('@shlinkio/shlink-frontend-kit'),
  ];
  const candidates = new Set<string>();
  for (const file of sources) {
    for (const word of readFileSync(file, 'utf8').split(/[\s"'`\\]+/)) candidates.add(word);
  }
  return compiler.build([...candidates]);
}

export interface ShlinkPage {
  /** The page's origin, e.g. http://127.0.0.1:40123 */
  url: string;
  close(): Promise<void>;
}

/** Builds the page for one Hop (its URL and API key are written into the bundle) and serves it. */
export async function serveShlinkPage(hop: { url: string; key: string }): Promise<ShlinkPage> {
  const dir = mkdtempSync(join(tmpdir(), 'hop-shlink-page-'));
  const [, css] = await Promise.all([
    build({
      entryPoints: [join(HERE, 'main.ts')],
      outfile: join(dir, 'main.js'),
      bundle: true,
      format: 'esm',
      target: ['chrome120'],
      // React's production build: what a deployed web client runs, and quieter in the console.
      define: {
        'process.env.NODE_ENV': '"production"',
        'process.env.HOP_URL': JSON.stringify(hop.url),
        'process.env.HOP_API_KEY': JSON.stringify(hop.key),
      },
      // Leaflet's marker images (the visits map); the page never loads map tiles.
      loader: { '.png': 'dataurl', '.svg': 'dataurl' },
      logLevel: 'warning',
    }),
    shlinkStylesheet(),
  ]);
  writeFileSync(join(dir, 'main.css'), css);
  const files: Record<string, { body: Buffer; type: string }> = {
    '/main.js': { body: readFileSync(join(dir, 'main.js')), type: 'text/javascript; charset=utf-8' },
    '/main.css': { body: readFileSync(join(dir, 'main.css')), type: 'text/css; charset=utf-8' },
  };
  const index = Buffer.from(
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shlink on Hop</title>' +
      '<link rel="stylesheet" href="/main.css"><script type="module" src="/main.js"></script></head>' +
      '<body><div id="root"></div></body></html>',
  );
  const server = createServer((req, res) => {
    // Any other path is the single-page app's own route: the index, as a static host serves it.
    const file = files[(req.url ?? '/').split('?')[0]!] ?? { body: index, type: 'text/html; charset=utf-8' };
    res.writeHead(200, { 'content-type': file.type, 'cache-control': 'no-store' });
    res.end(file.body);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
