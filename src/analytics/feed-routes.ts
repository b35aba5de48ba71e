// GET /api/v1/events and GET /api/v1/links/{code}/events — the live click feed as Server-Sent
// Events (event "click", data a JSON object naming the link's code), with heartbeats.
import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Deps } from '../deps.ts';
import { linkKey } from '../domain/domains.ts';
import { AUTHENTICATED, problemResponses } from '../http/openapi.ts';
import { findLink } from '../links/find-link.ts';
import { codeParamsSchema, domainQuerySchema } from '../links/link-view.ts';

// Bytes a subscriber may have unsent before it is dropped: some hundreds of clicks.
const MAX_UNSENT_BYTES = 256 * 1024;

function stream(deps: Deps, req: FastifyRequest, reply: FastifyReply, code: string | null): void {
  reply.hijack();
  const res: ServerResponse = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    'x-accel-buffering': 'no',
    'x-request-id': req.id,
  });
  res.write('retry: 3000\n: connected\n\n');
  const unsubscribe = deps.clickFeed.subscribe({
    code,
    send: (chunk) => {
      if (res.writableLength > MAX_UNSENT_BYTES) return false;
      res.write(chunk);
      return true;
    },
    end: () => res.end(),
  });
  res.on('close', unsubscribe);
}

export function registerFeedRoutes(app: FastifyInstance, deps: Deps): void {
  const schema = (summary: string, operationId: string, ...codes: 'not_found'[]) => ({
    summary,
    operationId,
    tags: ['analytics'],
    response: {
      200: {
        description: 'Server-Sent Events: "click" events, and heartbeat comments',
        content: { 'text/event-stream': { schema: { type: 'string' } } },
      },
      ...problemResponses(...AUTHENTICATED, ...codes),
    },
  });
  app.get(
    '/events',
    { schema: schema('Live clicks on every link (Server-Sent Events)', 'streamClicks') },
    async (req, reply) => stream(deps, req, reply, null),
  );
  app.get<{ Params: { code: string }; Querystring: { domain?: string } }>(
    '/links/:code/events',
    {
      schema: {
        ...schema('Live clicks on one link (Server-Sent Events)', 'streamLinkClicks', 'not_found'),
        params: codeParamsSchema,
        querystring: domainQuerySchema,
      },
    },
    async (req, reply) => {
      const link = await findLink(deps, req.params.code, req.query.domain);
      stream(deps, req, reply, linkKey(link.domain, link.code));
    },
  );
}
