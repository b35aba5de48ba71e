// GET /robots.txt, per domain: crawlers may follow the domain's crawlable links and nothing else.
// Read from the store at each request (a partial index holds just the crawlable links), so a link
// made crawlable is listed at once; crawlers ask rarely.
import type { FastifyInstance } from 'fastify';
import type { Deps } from '../deps.ts';
import { HopError } from '../domain/errors.ts';

/** More than a crawler reads (Google stops at 500 KiB); the rest stay disallowed. */
const MAX_LISTED = 10_000;

export function robotsTxt(codes: readonly string[]): string {
  const lines = ['User-agent: *', ...codes.map((c) => `Allow: /${c}$`), 'Disallow: /'];
  return `${lines.join('\n')}\n`;
}

export function registerRobots(app: FastifyInstance, deps: Deps): void {
  app.get('/robots.txt', { schema: { hide: true }, exposeHeadRoute: true }, async (req, reply) => {
    const domain = deps.domains.forRequest(req.headers.host);
    if (domain === null) throw new HopError('not_found', 'Nothing is served on this host.');
    const codes = await deps.store.crawlableCodes(domain.host, MAX_LISTED);
    return reply
      .type('text/plain; charset=utf-8')
      .header('cache-control', 'public, max-age=300')
      .send(robotsTxt(codes));
  });
}
