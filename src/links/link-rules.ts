// GET and PUT /api/v1/links/{code}/rules — a link's redirect rules, read and replaced as a whole.
// A change is an update of the link (outbox event, webhooks, cache invalidation everywhere).
import type { FastifyInstance } from 'fastify';
import type { Deps } from '../deps.ts';
import { parseRulesField } from '../domain/link-input.ts';
import { RULE_LIMITS } from '../domain/redirect-rules.ts';
import { AUTHENTICATED, AUTHENTICATED_CHANGE, problemResponses, WITH_BODY } from '../http/openapi.ts';
import { findLink, linkKeyFor, notFound } from './find-link.ts';
import { codeParamsSchema, domainQuerySchema } from './link-view.ts';

export const linkRulesSchema = {
  $id: 'LinkRules',
  type: 'object',
  required: ['rules'],
  additionalProperties: false,
  properties: {
    rules: {
      type: 'array',
      maxItems: RULE_LIMITS.maxRules,
      items: { $ref: 'RedirectRule#' },
      description: 'In order: the first rule whose conditions all match wins; none, the link URL',
    },
  },
} as const;

export function registerLinkRules(app: FastifyInstance, deps: Deps): void {
  app.get<{ Params: { code: string }; Querystring: { domain?: string } }>(
    '/links/:code/rules',
    {
      schema: {
        summary: "Get a link's redirect rules",
        operationId: 'getLinkRules',
        tags: ['links'],
        params: codeParamsSchema,
        querystring: domainQuerySchema,
        response: {
          200: { $ref: 'LinkRules#' },
          ...problemResponses(...AUTHENTICATED, 'validation_failed', 'not_found', 'unknown_domain'),
        },
      },
    },
    async (req) => {
      const link = await findLink(deps, req.params.code, req.query.domain);
      return { rules: link.rules ?? [] };
    },
  );

  app.put<{ Params: { code: string }; Querystring: { domain?: string }; Body: { rules: unknown } }>(
    '/links/:code/rules',
    {
      schema: {
        summary: "Replace a link's redirect rules",
        description:
          'Condition types: device (ios, android, mobile, desktop, windows, macos, linux, chromeos), browser, ' +
          'language (fr matches fr-CA), country (ISO 3166 alpha-2), query (key present, or key=value), ip ' +
          '(address or CIDR), before and after (ISO 8601), sample (1-99: that share of visitors, sticky per ' +
          'visitor; rules are tried in order, so sample 33 then sample 66 splits in thirds). An empty list removes them.',
        operationId: 'putLinkRules',
        tags: ['links'],
        params: codeParamsSchema,
        querystring: domainQuerySchema,
        body: { $ref: 'LinkRules#' },
        response: {
          200: { $ref: 'LinkRules#' },
          ...problemResponses(
            ...AUTHENTICATED_CHANGE,
            ...WITH_BODY,
            'invalid_url',
            'not_found',
            'unknown_domain',
          ),
        },
      },
    },
    async (req) => {
      const rules = parseRulesField(req.body.rules, deps.urlPolicy);
      const key = await linkKeyFor(deps, req.params.code, req.query.domain);
      const link = await deps.store.updateLink(key, { rules }, new Date(deps.now()));
      if (link === null) throw notFound(req.params.code);
      await deps.resolver.invalidate(key);
      return { rules: link.rules ?? [] };
    },
  );
}
