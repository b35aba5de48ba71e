// DELETE /api/v1/links/{code} — leaves a tombstone: the code answers 404 and is never reissued.
import type { FastifyInstance } from 'fastify';
import type { Deps } from '../deps.ts';
import { AUTHENTICATED_CHANGE, problemResponses, WITH_BODY } from '../http/openapi.ts';
import { linkKeyFor, notFound } from './find-link.ts';
import { codeParamsSchema, domainQuerySchema } from './link-view.ts';

export function registerDeleteLink(app: FastifyInstance, deps: Deps): void {
  app.delete<{ Params: { code: string }; Querystring: { domain?: string } }>(
    '/links/:code',
    {
      schema: {
        summary: 'Delete a link',
        operationId: 'deleteLink',
        tags: ['links'],
        params: codeParamsSchema,
        querystring: domainQuerySchema,
        response: {
          204: { type: 'null', description: 'Deleted' },
          ...problemResponses(...AUTHENTICATED_CHANGE, ...WITH_BODY, 'not_found', 'unknown_domain'),
        },
      },
    },
    async (req, reply) => {
      const key = await linkKeyFor(deps, req.params.code, req.query.domain);
      const deleted = await deps.store.deleteLink(key, new Date(deps.now()));
      if (!deleted) throw notFound(req.params.code);
      await deps.resolver.invalidate(key);
      return reply.code(204).send();
    },
  );
}
