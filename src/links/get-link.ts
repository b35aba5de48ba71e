// GET /api/v1/links/{code} — one live link with its click count.
import type { FastifyInstance } from 'fastify';
import type { Deps } from '../deps.ts';
import { HopError } from '../domain/errors.ts';
import { codeParamsSchema, errorResponses, toView } from './link-view.ts';

export function registerGetLink(app: FastifyInstance, deps: Deps): void {
  app.get<{ Params: { code: string } }>(
    '/links/:code',
    {
      schema: {
        summary: 'Get a link',
        tags: ['links'],
        params: codeParamsSchema,
        response: { 200: { $ref: 'Link#' }, ...errorResponses },
      },
    },
    async (req) => {
      const link = await deps.store.getLink(req.params.code);
      if (link === null) throw new HopError('not_found', `No link with code "${req.params.code}".`);
      return toView(link, deps.config.publicUrl, deps.now());
    },
  );
}
