// Server spans are made around the whole node:http listener (Tracing.serveHttp in app.ts), since the
// redirect's fast path answers before Fastify sees a request; these name each span by its route.
// With tracing off neither is installed: no hook, no wrapper, nothing per request.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { Tracing } from '../tracing/tracing.ts';

type FastPath = (req: IncomingMessage, res: ServerResponse) => boolean;

/** Fastify's routes: the span takes the route's pattern (`POST /api/v1/links`). */
export function nameRequestSpans(app: FastifyInstance, tracing: Tracing): void {
  if (!tracing.enabled) return;
  app.addHook('onRequest', (req, _reply, done) => {
    const route = req.routeOptions.url;
    if (route !== undefined) tracing.nameRoute(req.raw, route);
    done();
  });
}

/** The redirect's fast path: a request it answers is `GET /:code`, as on the Fastify route. */
export function traceFastPath(fast: FastPath | null, tracing: Tracing): FastPath | null {
  if (!tracing.enabled || fast === null) return fast;
  return (req, res) => {
    const answered = fast(req, res);
    if (answered) tracing.nameRoute(req, '/:code');
    return answered;
  };
}
