// Read-your-writes for API clients (DESIGN §8): the token a request presents (header
// Hop-Consistency or cookie hop_ct) scopes its reads; a request that wrote gets the new token
// back in both forms. Only the PostgreSQL store reads it; the embedded store has no replicas.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  CONSISTENCY_COOKIE,
  CONSISTENCY_HEADER,
  decodeToken,
  encodeToken,
  openConsistency,
  RequestConsistency,
} from '../storage/consistency.ts';
import { cookieValue } from './sessions.ts';

// Long enough for any replica in rotation to catch up; after that the token is moot.
const COOKIE_MAX_AGE_S = 300;

export function installConsistency(app: FastifyInstance, opts: { secureCookie: boolean }): void {
  const byRequest = new WeakMap<FastifyRequest, RequestConsistency>();
  app.addHook('onRequest', (req, reply, done) => {
    const header = req.headers[CONSISTENCY_HEADER];
    const raw =
      (typeof header === 'string' ? header : null) ?? cookieValue(req.headers.cookie, CONSISTENCY_COOKIE);
    // A read without a token may use any replica, and reads write nothing to hand back: no scope,
    // so a process busy with redirects and lookups keeps the storage switched off.
    if (raw === null && (req.method === 'GET' || req.method === 'HEAD')) return done();
    const ctx = new RequestConsistency(raw === null ? null : decodeToken(raw));
    byRequest.set(req, ctx);
    const scope = openConsistency(ctx);
    // 'close' comes once the answer is sent or the client is gone, whichever is first.
    reply.raw.once('close', scope.end);
    scope.run(done);
  });
  app.addHook('onSend', async (req, reply, payload) => {
    const token = byRequest.get(req)?.tokenToReturn() ?? null;
    if (token === null) return payload;
    const value = encodeToken(token);
    reply.header(CONSISTENCY_HEADER, value);
    reply.header(
      'set-cookie',
      `${CONSISTENCY_COOKIE}=${value}; Path=/; Max-Age=${COOKIE_MAX_AGE_S}; HttpOnly; SameSite=Lax${opts.secureCookie ? '; Secure' : ''}`,
    );
    return payload;
  });
}
