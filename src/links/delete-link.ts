// DELETE /api/v1/links/{code} — leaves a tombstone: the code answers 404 and is never reissued.
import type { FastifyInstance } from 'fastify';
import type { Deps } from '../deps.ts';
import { HopError } from '../domain/errors.ts';
import { AUTHENTICATED_CHANGE, problemResponses, WITH_BODY } from '../http/openapi.ts';
import { codeParamsSchema } from './link-view.ts';

export function registerDeleteLink(app: FastifyInstance, deps: Deps): void {
  app.delete<{ Params: { code: string } }>(
    '/links/:code',
    {
      schema: {
        summary: 'Delete a link',
        operationId: 'deleteLink',
        tags: ['links'],
        params: codeParamsSchema,
        response: {
          204: { type: 'null', description: 'Deleted' },
          ...problemResponses(...AUTHENTICATED_CHANGE, ...WITH_BODY, 'not_found'),
        },
      },
    },
    async (req, reply) => {
      const deleted = await deps.store.deleteLink(req.params.code, new Date(deps.now()));
      if (!deleted) throw new HopError('not_found', `No link with code "${req.params.code}".`);
      await deps.resolver.invalidate(req.params.code);
      return reply.code(204).send();
    },
  );
}
