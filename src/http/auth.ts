// API authentication: `Authorization: Bearer <key>` or `X-Api-Key: <key>`, checked against
// the stored hash (through KeyVerifier), so a key revoked here is refused at once. Without a key
// header, the dashboard's session cookie is accepted instead; its key must still be live, and a
// state-changing request must carry the session's CSRF token (a cross-site page can send the
// cookie but cannot read the token).
import type { FastifyRequest } from 'fastify';
import type { Deps } from '../deps.ts';
import { HopError } from '../domain/errors.ts';
import type { ApiKeyRecord } from '../storage/ports.ts';
import { CSRF_HEADER, cookieValue, SESSION_COOKIE, type SessionClaims, type Sessions } from './sessions.ts';

declare module 'fastify' {
  interface FastifyRequest {
    apiKey: ApiKeyRecord | null;
    /** Set when the request was authenticated by the dashboard session cookie. */
    session: SessionClaims | null;
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

async function fromSession(
  deps: Deps,
  req: FastifyRequest,
  sessions: Sessions,
  value: string,
): Promise<ApiKeyRecord> {
  const claims = sessions.read(value, deps.now());
  const record = claims === null ? null : await deps.keys.liveKey(claims.keyId);
  if (claims === null || record === null) {
    throw new HopError('unauthorized', 'The session has expired or was ended; sign in again.');
  }
  if (!SAFE_METHODS.has(req.method)) {
    const token = req.headers[CSRF_HEADER];
    if (!sessions.checkCsrf(claims, typeof token === 'string' ? token : undefined)) {
      throw new HopError('csrf_failed', `Send the session's CSRF token in the ${CSRF_HEADER} header.`);
    }
  }
  req.session = claims;
  req.apiKey = record;
  return record;
}

function presentedKey(req: FastifyRequest): string | null {
  const auth = req.headers.authorization;
  if (auth !== undefined) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    return m ? m[1]! : null;
  }
  const header = req.headers['x-api-key'];
  return typeof header === 'string' && header !== '' ? header : null;
}

export async function authenticate(
  deps: Deps,
  req: FastifyRequest,
  sessions: Sessions | null = null,
): Promise<ApiKeyRecord> {
  const key = presentedKey(req);
  const cookie = sessions === null ? null : cookieValue(req.headers.cookie, SESSION_COOKIE);
  if (key === null && sessions !== null && cookie !== null) return fromSession(deps, req, sessions, cookie);
  if (key === null) {
    throw new HopError(
      'unauthorized',
      'Send an API key as "Authorization: Bearer <key>" or "X-Api-Key: <key>".',
      {
        headers: { 'www-authenticate': 'Bearer realm="hop"' },
      },
    );
  }
  const record = await deps.keys.verify(key);
  if (record === null) {
    throw new HopError('unauthorized', 'The API key is unknown or revoked.', {
      headers: { 'www-authenticate': 'Bearer realm="hop", error="invalid_token"' },
    });
  }
  req.apiKey = record;
  return record;
}
