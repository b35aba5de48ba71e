// GET /api/v1/links — newest first, keyset pagination (stable while links are added), with
// tag filter and substring search over code, URL and title.
import type { FastifyInstance } from 'fastify';
import type { Deps } from '../deps.ts';
import { HopError } from '../domain/errors.ts';
import { AUTHENTICATED, problemResponses } from '../http/openapi.ts';
import type { ListCursor } from '../storage/ports.ts';
import { domainQuerySchema, heldClicksOf, toView } from './link-view.ts';

export function encodeCursor(c: ListCursor): string {
  return Buffer.from(JSON.stringify([c.createdAt.toISOString(), c.code, c.domain])).toString('base64url');
}

export function decodeCursor(s: string): ListCursor {
  try {
    const [at, code, domain = ''] = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as unknown[];
    const createdAt = new Date(String(at));
    if (
      typeof code !== 'string' ||
      typeof at !== 'string' ||
      typeof domain !== 'string' ||
      Number.isNaN(createdAt.getTime())
    )
      throw new Error();
    return { createdAt, code, domain };
  } catch {
    throw new HopError('invalid_cursor', 'The cursor is not one this API returned.', {
      extra: { field: 'cursor' },
    });
  }
}

interface ListQuerystring {
  limit?: string;
  cursor?: string;
  tag?: string;
  q?: string;
  domain?: string;
}

export function registerListLinks(app: FastifyInstance, deps: Deps): void {
  app.get<{ Querystring: ListQuerystring }>(
    '/links',
    {
      schema: {
        summary: 'List links, newest first',
        operationId: 'listLinks',
        tags: ['links'],
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            limit: { type: 'string', pattern: '^(100|[1-9][0-9]?)$', description: '1 to 100 (default 20)' },
            cursor: { type: 'string', maxLength: 512, description: 'nextCursor of the previous page' },
            tag: { type: 'string', minLength: 1, maxLength: 64 },
            q: {
              type: 'string',
              minLength: 1,
              maxLength: 256,
              description: 'Substring of code, URL or title',
            },
            ...domainQuerySchema.properties,
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['items', 'nextCursor'],
            properties: {
              items: { type: 'array', items: { $ref: 'Link#' } },
              nextCursor: { anyOf: [{ type: 'string' }, { type: 'null' }] },
            },
          },
          ...problemResponses(...AUTHENTICATED, 'validation_failed', 'invalid_cursor', 'unknown_domain'),
        },
      },
    },
    async (req) => {
      const q = req.query;
      const page = await deps.store.listLinks({
        limit: q.limit === undefined ? 20 : Number(q.limit),
        cursor: q.cursor === undefined ? null : decodeCursor(q.cursor),
        tag: q.tag ?? null,
        q: q.q ?? null,
        domain: q.domain === undefined ? null : await deps.domains.storedDomain(q.domain),
      });
      const now = deps.now();
      return {
        items: page.items.map((l) => toView(l, deps.domains, now, heldClicksOf(deps.clicks))),
        nextCursor: page.next === null ? null : encodeCursor(page.next),
      };
    },
  );
}
