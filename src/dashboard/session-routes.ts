// /api/v1/session — the dashboard exchanges an API key for a session cookie (the key never
// stays in the browser), reads the session back (with its CSRF token) and signs out.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Deps } from '../deps.ts';
import { HopError } from '../domain/errors.ts';
import { AUTHENTICATED, AUTHENTICATED_CHANGE, problemResponses, WITH_BODY } from '../http/openapi.ts';
import { enforceRateLimit } from '../http/rate-limit.ts';
import { type SessionClaims, type Sessions, sessionCookieHeader } from '../http/sessions.ts';
import type { ApiKeyRecord } from '../storage/ports.ts';

// Sign-in guesses per client IP: a few tries are fine, a key search is not.
const SIGN_IN_POLICY = { name: 'signin', perSecond: 0.5, burst: 10 };

const sessionSchema = {
  type: 'object',
  required: ['keyId', 'keyName', 'expiresAt', 'csrfToken'],
  properties: {
    keyId: { type: 'string' },
    keyName: { type: 'string' },
    expiresAt: { anyOf: [{ type: 'string', format: 'date-time' }, { type: 'null' }] },
    csrfToken: {
      anyOf: [{ type: 'string' }, { type: 'null' }],
      description: `Send as X-CSRF-Token on every state-changing request made with the cookie`,
    },
  },
} as const;

function view(key: ApiKeyRecord, claims: SessionClaims | null, sessions: Sessions) {
  return {
    keyId: key.id,
    keyName: key.name,
    expiresAt: claims === null ? null : new Date(claims.exp).toISOString(),
    csrfToken: claims === null ? null : sessions.csrfToken(claims),
  };
}

function secureCookie(deps: Deps, req: FastifyRequest): boolean {
  return deps.config.publicUrl.startsWith('https:') || req.protocol === 'https';
}

/** A sign-in posted from another site's page (login CSRF) names a foreign Origin. */
function sameOrigin(req: FastifyRequest): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === req.host;
  } catch {
    return false;
  }
}

/** Sign-in is outside the authenticated scope: the key arrives in the body. */
export function registerSignIn(app: FastifyInstance, deps: Deps, sessions: Sessions): void {
  app.post<{ Body: { key: string } }>(
    '/session',
    {
      schema: {
        summary: 'Sign in: exchange an API key for a session cookie',
        operationId: 'signIn',
        tags: ['session'],
        security: [],
        body: {
          type: 'object',
          required: ['key'],
          additionalProperties: false,
          properties: { key: { type: 'string', minLength: 1, maxLength: 256 } },
        },
        // Outside authentication, yet it answers alike: an unknown key is 401, sign-ins are rate
        // limited per client IP, and a page on another site (a foreign Origin) gets csrf_failed.
        response: { 200: sessionSchema, ...problemResponses(...AUTHENTICATED_CHANGE, ...WITH_BODY) },
      },
    },
    async (req, reply) => {
      reply.header('x-request-id', req.id).header('cache-control', 'no-store');
      await enforceRateLimit(deps, reply, SIGN_IN_POLICY, req.ip);
      if (!sameOrigin(req)) throw new HopError('csrf_failed', 'Sign in from Hop’s own dashboard.');
      const key = await deps.keys.verify(req.body.key.trim());
      if (key === null) {
        throw new HopError('unauthorized', 'That API key is unknown or revoked.', {
          extra: { field: 'key' },
        });
      }
      const { cookie, claims } = sessions.issue(key.id, deps.now());
      reply.header(
        'set-cookie',
        sessionCookieHeader(cookie, { maxAgeMs: sessions.ttlMs, secure: secureCookie(deps, req) }),
      );
      return view(key, claims, sessions);
    },
  );
}

export function registerSessionRoutes(app: FastifyInstance, deps: Deps, sessions: Sessions): void {
  app.get(
    '/session',
    {
      schema: {
        summary: 'Who is signed in, and the CSRF token of the session',
        operationId: 'getSession',
        tags: ['session'],
        response: { 200: sessionSchema, ...problemResponses(...AUTHENTICATED) },
      },
    },
    async (req, reply) => {
      reply.header('cache-control', 'no-store');
      return view(req.apiKey!, req.session, sessions);
    },
  );
  app.delete(
    '/session',
    {
      schema: {
        summary: 'Sign out: end the session and clear its cookie',
        operationId: 'signOut',
        tags: ['session'],
        response: {
          204: { type: 'null', description: 'Signed out' },
          ...problemResponses(...AUTHENTICATED_CHANGE, ...WITH_BODY),
        },
      },
    },
    async (req, reply) => {
      if (req.session !== null) sessions.signOut(req.session, deps.now());
      return reply
        .code(204)
        .header('set-cookie', sessionCookieHeader('', { maxAgeMs: 0, secure: secureCookie(deps, req) }))
        .send();
    },
  );
}
