// Serves the built dashboard (web/dist, made by `npm run build:web`, which install, start and
// test all run) from this process: its pages under a strict CSP, its hashed assets cached for
// good. `/` is the dashboard unless HOP_HOME_REDIRECT sends it elsewhere.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Deps } from '../deps.ts';
import { HopError } from '../domain/errors.ts';
import { WEB_DIST_DIR } from '../paths.ts';

/** Client-side pages, each answered with the app's HTML; all are reserved words (domain/codes.ts). */
export const DASHBOARD_PAGES = ['signin', 'links', 'analytics', 'settings', 'system'] as const;

// No inline script or style and no eval: a stored title cannot become code even if it escaped.
export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': DASHBOARD_CSP,
  'cache-control': 'no-cache',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'x-frame-options': 'DENY',
} as const;

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
};

const NOT_BUILT = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Hop</title></head>
<body><main><h1>Hop</h1><p>The dashboard is not built. Run <code>npm run build:web</code> (npm install
and npm start do it) and restart Hop. The API is at <a href="/api/v1/openapi.json">/api/v1/openapi.json</a>.</p>
</main></body></html>`;

interface Built {
  html: string | null;
  assets: Map<string, { body: Buffer; type: string }>;
}

function loadBuilt(dir: string): Built {
  const assets = new Map<string, { body: Buffer; type: string }>();
  const index = join(dir, 'index.html');
  if (!existsSync(index)) return { html: null, assets };
  try {
    for (const name of readdirSync(join(dir, 'assets'))) {
      const type = TYPES[extname(name)];
      if (type !== undefined) assets.set(name, { body: readFileSync(join(dir, 'assets', name)), type });
    }
    return { html: readFileSync(index, 'utf8'), assets };
  } catch {
    // A build swapped the directory out from under us: serve "not built" rather than fail to boot.
    return { html: null, assets: new Map() };
  }
}

export function registerDashboard(app: FastifyInstance, deps: Deps, dir: string = WEB_DIST_DIR): void {
  const built = loadBuilt(dir);
  if (built.html === null) deps.log.warn({ dir }, 'dashboard not built: run npm run build:web');
  const page = (reply: FastifyReply) =>
    reply
      .headers(PAGE_HEADERS)
      .code(built.html === null ? 503 : 200)
      .send(built.html ?? NOT_BUILT);

  // A domain's root: its rootRedirect; else, on the default domain, HOP_HOME_REDIRECT or the
  // dashboard; else nothing (404). Anything but the dashboard is an orphan visit.
  app.get('/', { schema: { hide: true }, exposeHeadRoute: true }, async (req, reply) => {
    const domain = deps.domains.forRequest(req.headers.host);
    if (domain === null) throw new HopError('not_found', 'Nothing is served on this host.');
    const target = domain.rootRedirect ?? (domain.host === '' ? deps.config.homeRedirect : null);
    if (target === null && domain.host === '') return page(reply);
    if (req.method === 'GET')
      deps.orphans.count(
        domain.host,
        'root',
        '/',
        req.headers['user-agent'],
        Date.now(),
        req.headers.referer,
      );
    if (target === null) throw new HopError('not_found', 'There is nothing at the root of this domain.');
    return reply.code(302).header('location', target).header('cache-control', 'no-store').send();
  });
  for (const name of DASHBOARD_PAGES)
    app.get(`/${name}`, { schema: { hide: true } }, async (_req, reply) => page(reply));

  app.get<{ Params: { file: string } }>('/assets/:file', { schema: { hide: true } }, async (req, reply) => {
    const asset = built.assets.get(req.params.file);
    if (asset === undefined) throw new HopError('not_found', `No dashboard asset "${req.params.file}".`);
    return reply
      .type(asset.type)
      .header('cache-control', 'public, max-age=31536000, immutable')
      .header('x-content-type-options', 'nosniff')
      .send(asset.body);
  });
}
