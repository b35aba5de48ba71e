// buildApp(deps) → a Fastify instance, not listening: tests inject requests or listen on a
// free port; main.ts listens. All routes are registered here and nowhere else.
import { createServer } from 'node:http';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import { registerFeedRoutes } from './analytics/feed-routes.ts';
import { registerStatsRoutes } from './analytics/stats-routes.ts';
import { registerDashboard } from './dashboard/dashboard-routes.ts';
import { registerSessionRoutes, registerSignIn } from './dashboard/session-routes.ts';
import { createSessions } from './dashboard/session-secret.ts';
import { registerSystemRoute } from './dashboard/system-route.ts';
import type { Deps } from './deps.ts';
import { domainSchema, registerDomainRoutes } from './domains/domain-routes.ts';
import { registerRobots } from './domains/robots-route.ts';
import { authenticate } from './http/auth.ts';
import { installConsistency } from './http/consistency.ts';
import { installErrorHandling } from './http/error-handler.ts';
import { registerHealthRoutes } from './http/health-routes.ts';
import { problemSchema } from './http/openapi.ts';
import { enforceRateLimit, policies } from './http/rate-limit.ts';
import { requestIdFor } from './http/request-id.ts';
import { nameRequestSpans, traceFastPath } from './http/request-spans.ts';
import { registerKeyRoutes } from './keys/key-routes.ts';
import { registerCreateLink } from './links/create-link.ts';
import { registerDeleteLink } from './links/delete-link.ts';
import { registerGetLink } from './links/get-link.ts';
import { registerLinkQr } from './links/link-qr.ts';
import { linkRulesSchema, registerLinkRules } from './links/link-rules.ts';
import { linkSchema, ruleSchema } from './links/link-view.ts';
import { registerListLinks } from './links/list-links.ts';
import { registerUpdateLink } from './links/update-link.ts';
import { createFastRedirect, registerRedirect } from './redirect/redirect-route.ts';
import { registerShlinkApi } from './shlink/shlink-api.ts';
import { registerWebhookRoutes } from './webhooks/webhook-routes.ts';

export const BODY_LIMIT = 16 * 1024;
/** Probes and scrapes, seconds apart forever: no traces of their own. */
const UNTRACED_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

export interface AppState {
  draining: boolean;
}

export async function buildApp(deps: Deps, state: AppState = { draining: false }): Promise<FastifyInstance> {
  const fast = traceFastPath(createFastRedirect(deps), deps.tracing);
  const app = Fastify({
    loggerInstance: deps.log as FastifyBaseLogger,
    // One log line per redirect would cost more than the redirect; API requests are logged below.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
    trustProxy: deps.config.trustProxy,
    requestIdHeader: false,
    genReqId: (req) => requestIdFor(req.headers['x-request-id']),
    // The hot path answers before the framework (see redirect-route.ts); the rest is Fastify's.
    serverFactory: (handler) => {
      // With tracing on, each request in a server span (the listener itself otherwise).
      const server = createServer(
        deps.tracing.serveHttp((req, res) => {
          // Draining: every answer closes its connection, so keep-alive clients (the balancer's
          // pooled connections too) reconnect to a process that stays.
          if (state.draining) res.setHeader('connection', 'close');
          if (fast === null || !fast(req, res)) handler(req, res);
        }, UNTRACED_PATHS),
      );
      // What Fastify would set on a server of its own: outlive typical balancer idle timeouts.
      server.keepAliveTimeout = 72_000;
      return server;
    },
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    // A request that reaches a closing server on a connection it already had is served, not
    // refused: by then the balancer has stopped sending new ones (HOP_DRAIN_DELAY_MS).
    return503OnClosing: false,
    forceCloseConnections: 'idle',
  });
  // Bodies are JSON only: without this, Fastify's built-in text parser would take text/plain and
  // the route would answer 400 for a body it never read as JSON, instead of 415.
  app.removeContentTypeParser('text/plain');
  nameRequestSpans(app, deps.tracing);
  app.decorateRequest('apiKey', null);
  app.decorateRequest('session', null);
  const sessions = createSessions(deps.config);
  installErrorHandling(app, (req, path) => {
    // A visitor's 404 on a domain Hop serves links on is an orphan visit (the API's are not), sent
    // to the domain's otherNotFoundRedirect when it has one.
    if (req.method !== 'GET' || path.startsWith('/api/')) return null;
    const domain = deps.domains.forRequest(req.headers.host);
    if (domain === null) return null;
    deps.orphans.count(
      domain.host,
      'other',
      path,
      req.headers['user-agent'],
      Date.now(),
      req.headers.referer,
    );
    return domain.otherNotFoundRedirect;
  });
  if (deps.config.databaseUrls !== null) {
    installConsistency(app, { secureCookie: deps.config.publicUrl.startsWith('https:') });
  }
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Hop',
        version: '1',
        description: 'Short links and redirects.',
        license: { name: 'MIT', identifier: 'MIT' },
      },
      servers: [{ url: deps.config.publicUrl }],
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer' },
          apiKey: { type: 'apiKey', in: 'header', name: 'X-Api-Key' },
        },
      },
      security: [{ bearer: [] }, { apiKey: [] }],
    },
    // Shared schemas keep their $id as their name (components/schemas/Link, not def-0), which is
    // what generated clients call their types.
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => String(json.$id ?? `def-${i}`) },
  });
  app.addSchema(ruleSchema);
  app.addSchema(linkRulesSchema);
  app.addSchema(linkSchema);
  app.addSchema(domainSchema);
  app.addSchema(problemSchema);

  registerDashboard(app, deps);
  registerHealthRoutes(app, deps, state);
  // Live feeds never go idle on their own; end them so closing does not wait out the timeout.
  app.addHook('preClose', async () => deps.clickFeed.close());
  registerRedirect(app, deps);
  registerRobots(app, deps);
  await registerShlinkApi(app, deps);

  const { api } = policies(deps);
  await app.register(
    async (v1) => {
      v1.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
      registerSignIn(v1, deps, sessions);
      v1.register(async (authed) => {
        authed.addHook('onRequest', async (req, reply) => {
          reply.header('x-request-id', req.id);
          const key = await authenticate(deps, req, sessions);
          await enforceRateLimit(deps, reply, api, key.id);
        });
        authed.addHook('onResponse', async (req, reply) => {
          const route = req.routeOptions.url ?? 'unknown';
          deps.metrics.httpRequest(route, req.method, reply.statusCode, reply.elapsedTime / 1000);
          req.log.info(
            {
              method: req.method,
              route,
              status: reply.statusCode,
              ms: Math.round(reply.elapsedTime * 10) / 10,
            },
            'api request',
          );
        });
        registerCreateLink(authed, deps);
        registerListLinks(authed, deps);
        registerGetLink(authed, deps);
        registerUpdateLink(authed, deps);
        registerLinkRules(authed, deps);
        registerDeleteLink(authed, deps);
        registerDomainRoutes(authed, deps);
        registerKeyRoutes(authed, deps);
        registerWebhookRoutes(authed, deps);
        registerStatsRoutes(authed, deps);
        registerFeedRoutes(authed, deps);
        // The dashboard's API: session, QR codes, system figures.
        registerSessionRoutes(authed, deps, sessions);
        registerLinkQr(authed, deps);
        registerSystemRoute(authed, deps);
      });
    },
    { prefix: '/api/v1' },
  );
  return app;
}
