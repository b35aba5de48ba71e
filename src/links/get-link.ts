// GET /api/v1/links/{code} — one live link with its click count.
import type { FastifyInstance } from 'fastify';
import type { Deps } from '../deps.ts';
import { AUTHENTICATED, problemResponses } from '../http/openapi.ts';
import { findLink } from './find-link.ts';
import { codeParamsSchema, domainQuerySchema, heldClicksOf, toView } from './link-view.ts';

export function registerGetLink(app: FastifyInstance, deps: Deps): void {
  app.get<{ Params: { code: string }; Querystring: { domain?: string } }>(
    '/links/:code',
    {
      schema: {
        summary: 'Get a link',
        operationId: 'getLink',
        tags: ['links'],
        params: codeParamsSchema,
        querystring: domainQuerySchema,
        response: {
          200: { $ref: 'Link#' },
          ...problemResponses(...AUTHENTICATED, 'validation_failed', 'not_found', 'unknown_domain'),
        },
      },
    },
    async (req) => {
      const link = await findLink(deps, req.params.code, req.query.domain);
      return toView(link, deps.domains, deps.now(), heldClicksOf(deps.clicks));
    },
  );
}
