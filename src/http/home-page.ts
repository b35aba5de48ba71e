// GET / — a short page saying what this is, until the dashboard takes the root.
import type { FastifyInstance } from 'fastify';

const PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Hop</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:15vh auto;padding:0 1rem;color:#1d2430}
code{background:#eef1f5;padding:.1em .3em;border-radius:4px}</style></head>
<body><main><h1>Hop</h1><p>A URL shortener. The API is described at
<a href="/api/v1/openapi.json"><code>/api/v1/openapi.json</code></a>.</p></main></body></html>`;

export function registerHomePage(app: FastifyInstance): void {
  app.get('/', { schema: { hide: true } }, async (_req, reply) =>
    reply
      .type('text/html; charset=utf-8')
      .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'")
      .send(PAGE),
  );
}
