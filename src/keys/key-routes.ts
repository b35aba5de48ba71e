// /api/v1/keys — manage API keys over the API (the CLI does the same on a stopped server).
import type { FastifyInstance } from 'fastify';
import type { Deps } from '../deps.ts';
import { HopError } from '../domain/errors.ts';
import { AUTHENTICATED, AUTHENTICATED_CHANGE, problemResponses, WITH_BODY } from '../http/openapi.ts';
import type { ApiKeyRecord } from '../storage/ports.ts';
import { createApiKey } from './api-keys.ts';

const keySchema = {
  type: 'object',
  required: ['id', 'name', 'prefix', 'createdAt', 'revokedAt'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    prefix: { type: 'string' },
    createdAt: { type: 'string', format: 'date-time' },
    revokedAt: { anyOf: [{ type: 'string', format: 'date-time' }, { type: 'null' }] },
    key: { type: 'string', description: 'The key itself: returned once, at creation' },
  },
} as const;

const view = (k: ApiKeyRecord) => ({
  id: k.id,
  name: k.name,
  prefix: k.prefix,
  createdAt: k.createdAt.toISOString(),
  revokedAt: k.revokedAt?.toISOString() ?? null,
});

export function registerKeyRoutes(app: FastifyInstance, deps: Deps): void {
  app.post<{ Body: { name?: string } }>(
    '/keys',
    {
      schema: {
        summary: 'Create an API key (shown once)',
        operationId: 'createApiKey',
        tags: ['keys'],
        body: {
          type: 'object',
          additionalProperties: false,
          properties: { name: { type: 'string', minLength: 1, maxLength: 100 } },
        },
        response: { 201: keySchema, ...problemResponses(...AUTHENTICATED_CHANGE, ...WITH_BODY) },
      },
    },
    async (req, reply) => {
      const { key, record } = await createApiKey(deps.store, req.body?.name ?? 'api', new Date(deps.now()));
      return reply.code(201).send({ ...view(record), key });
    },
  );
  app.get(
    '/keys',
    {
      schema: {
        summary: 'List API keys (never the keys themselves)',
        operationId: 'listApiKeys',
        tags: ['keys'],
        response: {
          200: { type: 'object', properties: { items: { type: 'array', items: keySchema } } },
          ...problemResponses(...AUTHENTICATED),
        },
      },
    },
    async () => ({ items: (await deps.store.listApiKeys()).map(view) }),
  );
  app.delete<{ Params: { id: string } }>(
    '/keys/:id',
    {
      schema: {
        summary: 'Revoke an API key (by id or prefix); it is refused at once',
        operationId: 'revokeApiKey',
        tags: ['keys'],
        params: { type: 'object', required: ['id'], properties: { id: { type: 'string' } } },
        response: {
          204: { type: 'null', description: 'Revoked' },
          ...problemResponses(...AUTHENTICATED_CHANGE, ...WITH_BODY, 'not_found'),
        },
      },
    },
    async (req, reply) => {
      if (!(await deps.keys.revoke(req.params.id, new Date(deps.now())))) {
        throw new HopError('not_found', `No live API key "${req.params.id}".`);
      }
      return reply.code(204).send();
    },
  );
}
