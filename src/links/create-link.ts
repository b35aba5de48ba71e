// POST /api/v1/links — create a link, with Idempotency-Key support (24 h, per API key).
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Deps } from '../deps.ts';
import { linkKey } from '../domain/domains.ts';
import { HopError } from '../domain/errors.ts';
import type { Link } from '../domain/link.ts';
import { type CreateInput, parsePassword, validateCreate } from '../domain/link-input.ts';
import { AUTHENTICATED_CHANGE, problemResponses, WITH_BODY } from '../http/openapi.ts';
import { enforceRateLimit, policies } from '../http/rate-limit.ts';
import type { StoredIdempotency } from '../storage/ports.ts';
import { hashPassword } from './link-password.ts';
import { linkFieldSchemas, passwordSchema, toView } from './link-view.ts';

const IDEMPOTENCY_WINDOW_MS = 24 * 3600_000;
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/** Key order must not matter: the same request written twice hashes the same. */
function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

function replay(stored: StoredIdempotency, requestHash: string): Link {
  if (stored.requestHash !== requestHash) {
    throw new HopError(
      'idempotency_conflict',
      'This Idempotency-Key was already used with a different request body.',
    );
  }
  if (stored.outcome.kind === 'alias_taken') throw aliasTaken();
  return stored.outcome.link;
}

const aliasTaken = () =>
  new HopError('alias_taken', 'That alias is already in use (or was used by a deleted link).', {
    extra: { field: 'alias' },
  });

export async function createLink(
  deps: Deps,
  input: CreateInput,
  ctx: { scope: string; idempotencyKey: string | null },
): Promise<{ link: Link; replayed: boolean }> {
  const now = deps.now();
  const { alias, fields: checked } = validateCreate(input, deps.urlPolicy, now);
  const domain = await deps.domains.storedDomain(input.domain);
  const password = parsePassword(input.password);
  let idempotency = null;
  if (ctx.idempotencyKey !== null) {
    const requestHash = createHash('sha256').update(canonicalJson(input)).digest('hex');
    const stored = await deps.store.getIdempotency(
      ctx.scope,
      ctx.idempotencyKey,
      new Date(now - IDEMPOTENCY_WINDOW_MS),
    );
    if (stored !== null) return { link: replay(stored, requestHash), replayed: true };
    idempotency = { scope: ctx.scope, key: ctx.idempotencyKey, requestHash };
  }
  const fields =
    typeof password === 'string' ? { ...checked, passwordHash: await hashPassword(password) } : checked;
  const outcome = await deps.store.createLink({
    alias,
    domain,
    fields,
    createdAt: new Date(now),
    idempotency,
  });
  switch (outcome.kind) {
    case 'created':
      // A negative cache entry for this code (someone tried it before) must not hide the new link.
      await deps.resolver.invalidate(linkKey(domain, outcome.link.code));
      deps.metrics.linkCreated();
      return { link: outcome.link, replayed: false };
    case 'alias_taken':
      throw aliasTaken();
    case 'replayed':
      return { link: replay(outcome.stored, idempotency!.requestHash), replayed: true };
  }
}

export function registerCreateLink(app: FastifyInstance, deps: Deps): void {
  const { create } = policies(deps);
  app.post<{ Body: CreateInput; Headers: { 'idempotency-key'?: string } }>(
    '/links',
    {
      schema: {
        summary: 'Create a short link',
        operationId: 'createLink',
        tags: ['links'],
        headers: {
          type: 'object',
          properties: {
            'idempotency-key': {
              type: 'string',
              description: 'Same key + same body within 24 h replays the first answer',
            },
          },
        },
        body: {
          type: 'object',
          required: ['url'],
          additionalProperties: false,
          properties: {
            ...linkFieldSchemas,
            password: passwordSchema,
            alias: { type: 'string', description: '3-64 of A-Z a-z 0-9 _ -, case-sensitive, not reserved' },
            domain: {
              type: 'string',
              minLength: 1,
              maxLength: 253,
              description:
                'A registered domain (default: the default domain); the same code may exist on several',
            },
          },
        },
        response: {
          201: { $ref: 'Link#' },
          ...problemResponses(
            ...AUTHENTICATED_CHANGE,
            ...WITH_BODY,
            'invalid_url',
            'invalid_alias',
            'reserved_alias',
            'invalid_expiry',
            'alias_taken',
            'idempotency_conflict',
            'unknown_domain',
          ),
        },
      },
    },
    async (req, reply) => {
      await enforceRateLimit(deps, reply, create, req.ip);
      const key = req.headers['idempotency-key'] ?? null;
      if (key !== null && !IDEMPOTENCY_KEY.test(key)) {
        throw new HopError('validation_failed', 'Idempotency-Key must be 1-255 visible ASCII characters.', {
          extra: { field: 'Idempotency-Key' },
        });
      }
      const { link, replayed } = await createLink(deps, req.body, {
        scope: req.apiKey!.id,
        idempotencyKey: key,
      });
      if (replayed) reply.header('idempotent-replayed', 'true');
      return reply
        .code(201)
        .header(
          'location',
          `/api/v1/links/${link.code}${link.domain === '' ? '' : `?domain=${encodeURIComponent(link.domain)}`}`,
        )
        .send(toView({ ...link, clicks: 0 }, deps.domains, deps.now()));
    },
  );
}
