// Liveness, readiness and metrics. Liveness never touches dependencies (a slow database must
// not get the process restarted); readiness asks the store.
import type { FastifyInstance } from 'fastify';
import type { Deps } from '../deps.ts';
import { sendProblem } from './problem.ts';

export function registerHealthRoutes(app: FastifyInstance, deps: Deps, state: { draining: boolean }): void {
  app.get('/healthz', { schema: { summary: 'Liveness', tags: ['operations'] } }, async () => ({
    status: 'ok',
  }));
  app.get(
    '/readyz',
    { schema: { summary: 'Readiness: the store answers', tags: ['operations'] } },
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
    { schema: { summary: 'Prometheus metrics', tags: ['operations'] } },
    async (_req, reply) => {
      const { contentType, body } = await deps.metrics.render();
      return reply.type(contentType).send(body);
    },
  );
}
