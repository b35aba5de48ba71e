// API authentication: `Authorization: Bearer <key>` or `X-Api-Key: <key>`, checked against
// the stored hash (through KeyVerifier), so a key revoked here is refused at once.
import type { FastifyRequest } from 'fastify';
import type { Deps } from '../deps.ts';
import { HopError } from '../domain/errors.ts';
import type { ApiKeyRecord } from '../storage/ports.ts';

declare module 'fastify' {
  interface FastifyRequest {
    apiKey: ApiKeyRecord | null;
  }
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

export async function authenticate(deps: Deps, req: FastifyRequest): Promise<ApiKeyRecord> {
  const key = presentedKey(req);
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
