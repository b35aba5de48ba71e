// Liveness, readiness and metrics. Liveness never touches dependencies (a slow database must
// not get the process restarted); readiness asks the store.
import type { FastifyInstance } from 'fastify';
import type { Deps } from '../deps.ts';
import { problemResponses } from './openapi.ts';
import { sendProblem } from './problem.ts';

// Probes take no credentials and no input: nothing a client sends can make them answer 4xx
// (.redocly.lint-ignore.yaml records that for the linter).
const probe = (summary: string, operationId: string) =>
  ({ summary, operationId, tags: ['operations'], security: [] }) as const;

export function registerHealthRoutes(app: FastifyInstance, deps: Deps, state: { draining: boolean }): void {
  app.get(
    '/healthz',
    {
      schema: {
        ...probe('Liveness', 'getLiveness'),
        response: {
          200: {
            type: 'object',
            required: ['status'],
            properties: { status: { type: 'string', enum: ['ok'] } },
          },
        },
      },
    },
    async () => ({ status: 'ok' }),
  );
  app.get(
    '/readyz',
    {
      schema: {
        ...probe('Readiness: the store answers', 'getReadiness'),
        response: {
          200: {
            type: 'object',
            required: ['status', 'store', 'degraded'],
            properties: {
              status: { type: 'string', enum: ['ready', 'degraded'] },
              store: { type: 'string' },
              degraded: {
                type: 'array',
                items: { type: 'string' },
                description: 'Parts that fail while Hop still serves (the shared cache: "redis")',
              },
            },
          },
          ...problemResponses('unavailable'),
        },
      },
    },
    async (req, reply) => {
      if (state.draining)
        return sendProblem(req, reply, 'unavailable', 'Shutting down.', {}, { 'retry-after': '1' });
      try {
        await deps.store.ping();
      } catch (err) {
        req.log.warn({ err }, 'readiness check failed');
        return sendProblem(
          req,
          reply,
          'unavailable',
          'The store does not answer.',
          {},
          { 'retry-after': '1' },
        );
      }
      // Still ready without the shared cache (lookups read through to the store), but say so.
      const degraded = deps.sharedCache !== null && !deps.sharedCache.healthy ? ['redis'] : [];
      return { status: degraded.length > 0 ? 'degraded' : 'ready', store: deps.store.kind, degraded };
    },
  );
  app.get(
    '/metrics',
    {
      schema: {
        ...probe('Prometheus metrics', 'getMetrics'),
        response: {
          200: {
            description: 'The Prometheus text exposition format',
            content: { 'text/plain': { schema: { type: 'string' } } },
          },
          ...problemResponses('internal_error'),
        },
      },
    },
    async (_req, reply) => {
      const { contentType, body } = await deps.metrics.render();
      return reply.type(contentType).send(body);
    },
  );
}
