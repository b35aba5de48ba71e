// Shlink's REST API (v3, and the same at v2) over Hop's store, so Shlink's clients work unchanged:
// its web client, its JS SDK, scripts. Authenticated by X-Api-Key with Hop's API keys; errors and
// CORS answered as Shlink answers them.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Deps } from '../deps.ts';
import { enforceRateLimit, policies } from '../http/rate-limit.ts';
import { registerCatalogRoutes, registerHealth } from './catalog-routes.ts';
import {
  invalidApiKey,
  missingAuthentication,
  sendShlinkProblem,
  toShlinkProblem,
} from './shlink-problem.ts';
import { registerShortUrlRoutes } from './short-url-routes.ts';
import { registerVisitRoutes } from './visit-routes.ts';

const ALLOWED_METHODS = 'GET,POST,PUT,PATCH,DELETE';

/** Shlink's CORS: any origin (echoed, with credentials), the requested headers echoed back. */
function cors(req: FastifyRequest, reply: FastifyReply): void {
  const origin = req.headers.origin;
  if (origin === undefined) return;
  reply.header('access-control-allow-origin', origin);
  reply.header('access-control-allow-credentials', 'true');
  reply.header('vary', 'Origin');
  if (req.method === 'OPTIONS') {
    reply.header('access-control-allow-methods', ALLOWED_METHODS);
    const asked = req.headers['access-control-request-headers'];
    if (typeof asked === 'string') reply.header('access-control-allow-headers', asked);
    reply.header('access-control-max-age', '1000');
  }
}

export async function registerShlinkApi(app: FastifyInstance, deps: Deps): Promise<void> {
  const { api: limit } = policies(deps);
  await app.register(async (rest) => {
    // Shlink's API is documented by Shlink; Hop's OpenAPI document describes Hop's own.
    rest.addHook('onRoute', (route) => {
      route.schema = { ...(route.schema ?? {}), hide: true };
    });
    rest.addHook('onRequest', async (req, reply) => cors(req, reply));
    // Shlink's Node client sends Content-Type: application/json on every request, bodiless ones too.
    rest.removeContentTypeParser('application/json');
    rest.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
      if (body === '') return done(null, undefined);
      try {
        done(null, JSON.parse(body as string));
      } catch (err) {
        done(Object.assign(err as Error, { statusCode: 400 }), undefined);
      }
    });
    rest.setErrorHandler((err, req, reply) => sendShlinkProblem(reply, toShlinkProblem(err, req)));
    // Preflights answer before authentication, like Shlink's.
    rest.options('/rest/*', async (_req, reply) => reply.code(204).send());
    await rest.register(async (r) => registerHealth(r, deps), { prefix: '/rest' });
    for (const version of ['v3', 'v2']) {
      await rest.register(
        async (v) => {
          v.setNotFoundHandler((req, reply) =>
            sendShlinkProblem(reply, {
              problem: {
                type: 'https://shlink.io/api/error/not-found',
                title: 'Not found',
                detail: `Requested route ${req.method} ${req.url.split('?')[0]} does not exist.`,
                status: 404,
              },
              headers: {},
            }),
          );
          registerHealth(v, deps);
          v.register(async (authed) => {
            authed.addHook('onRequest', async (req, reply) => {
              const key = req.headers['x-api-key'];
              if (typeof key !== 'string' || key === '') throw missingAuthentication();
              const record = await deps.keys.verify(key);
              if (record === null) throw invalidApiKey();
              req.apiKey = record;
              await enforceRateLimit(deps, reply, limit, record.id);
            });
            registerShortUrlRoutes(authed, deps);
            registerCatalogRoutes(authed, deps);
            registerVisitRoutes(authed, deps);
          });
        },
        { prefix: `/rest/${version}` },
      );
    }
  });
}
