// GET and PUT /api/v1/links/{code}/rules — a link's redirect rules, read and replaced as a whole.
// A change is an update of the link (outbox event, webhooks, cache invalidation everywhere).
import type { FastifyInstance } from 'fastify';
import type { Deps } from '../deps.ts';
import { parseRulesField } from '../domain/link-input.ts';
import { chooseRule, compileRules, RULE_LIMITS } from '../domain/redirect-rules.ts';
import { normalizeTargetUrl } from '../domain/url-policy.ts';
import { AUTHENTICATED, AUTHENTICATED_CHANGE, problemResponses, WITH_BODY } from '../http/openapi.ts';
import { type DescribedVisitor, describedVisit } from '../redirect/visit-facts.ts';
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

const visitorSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    userAgent: { type: 'string', maxLength: 1024 },
    acceptLanguage: { type: 'string', maxLength: 512, description: 'e.g. fr-CA,fr;q=0.9' },
    country: { type: 'string', pattern: '^([A-Za-z]{2})?$' },
    query: { type: 'string', maxLength: 2048, description: 'The query string the visitor arrives with' },
    ip: { type: 'string', maxLength: 64 },
    bucket: {
      type: 'integer',
      minimum: 0,
      maximum: 99,
      description: "Where the visitor falls in a sample's split",
    },
    at: { type: 'string', format: 'date-time', description: 'When (default: now)' },
  },
} as const;

export function registerLinkRules(app: FastifyInstance, deps: Deps): void {
  // The rules editor's preview: where would this visitor go? The redirect's own rule code decides.
  app.post<{ Body: { url: unknown; rules: unknown; visitor: DescribedVisitor & { at?: string } } }>(
    '/rules/preview',
    {
      schema: {
        summary: 'Where redirect rules would send a described visitor (nothing is saved)',
        operationId: 'previewRules',
        tags: ['links'],
        body: {
          type: 'object',
          required: ['url', 'rules', 'visitor'],
          additionalProperties: false,
          properties: {
            url: { type: 'string', description: "The link's own URL (where nobody matching goes)" },
            rules: { type: 'array', maxItems: RULE_LIMITS.maxRules, items: { $ref: 'RedirectRule#' } },
            visitor: visitorSchema,
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['url', 'rule'],
            properties: {
              url: { type: 'string' },
              rule: { type: 'integer', description: 'The matching rule (1-based), or 0 when none matched' },
            },
          },
          ...problemResponses(...AUTHENTICATED_CHANGE, ...WITH_BODY, 'invalid_url'),
        },
      },
    },
    async (req) => {
      const url = normalizeTargetUrl(req.body.url, deps.urlPolicy);
      const rules = parseRulesField(req.body.rules, deps.urlPolicy) ?? [];
      const { at, ...visitor } = req.body.visitor;
      const now = at === undefined ? deps.now() : Date.parse(at);
      const i = chooseRule(compileRules(rules), describedVisit(visitor, now));
      return { url: i === -1 ? url : rules[i]!.url, rule: i + 1 };
    },
  );

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
