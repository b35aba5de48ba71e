// How a link looks in the API, and the JSON Schema that documents it (OpenAPI is generated
// from these schemas, and responses are serialized through them).
import { linkKey } from '../domain/domains.ts';
import { type Link, linkStatus } from '../domain/link.ts';
import { LIMITS } from '../domain/link-input.ts';
import { CONDITION_TYPES, RULE_LIMITS } from '../domain/redirect-rules.ts';
import type { ClickSink } from '../events/click-sink.ts';
import type { LinkWithClicks } from '../storage/ports.ts';

export interface LinkView {
  code: string;
  domain: string;
  shortUrl: string;
  url: string;
  createdAt: string;
  updatedAt: string;
  expiresAt: string | null;
  validSince: string | null;
  maxClicks: number | null;
  redirectType: number;
  forwardQuery: boolean;
  tags: string[];
  title: string | null;
  disabled: boolean;
  clicks: number;
  status: string;
  hasRules: boolean;
  expiredUrl: string | null;
  passwordProtected: boolean;
  crawlable: boolean;
}

/** How links are addressed: the domain directory (domains/domain-directory.ts). */
export interface LinkUrls {
  shortUrl(domain: string, code: string): string;
  hostOf(domain: string): string;
}

/** The click sink's held clicks, when it holds any (the embedded writer between folds). */
export function heldClicksOf(clicks: ClickSink): ((code: string) => number) | undefined {
  return clicks.heldClicks === undefined ? undefined : (code) => clicks.heldClicks!(code);
}

/** `held`: clicks this process holds that the stored total lacks yet (see ClickSink.heldClicks). */
export function toView(
  link: Link | LinkWithClicks,
  urls: LinkUrls,
  now: number,
  held?: (key: string) => number,
): LinkView {
  return {
    code: link.code,
    domain: urls.hostOf(link.domain),
    shortUrl: urls.shortUrl(link.domain, link.code),
    url: link.url,
    createdAt: link.createdAt.toISOString(),
    updatedAt: link.updatedAt.toISOString(),
    expiresAt: link.expiresAt?.toISOString() ?? null,
    validSince: link.validSince?.toISOString() ?? null,
    maxClicks: link.maxClicks,
    redirectType: link.redirectType,
    forwardQuery: link.forwardQuery,
    tags: [...link.tags],
    title: link.title,
    disabled: link.disabled,
    // A limited link counts its redirects exactly; the rollups may trail by one flush.
    clicks: Math.max(
      ('clicks' in link ? link.clicks : 0) + (held?.(linkKey(link.domain, link.code)) ?? 0),
      link.maxClicks === null ? 0 : link.usedClicks,
    ),
    status: linkStatus(link, now),
    hasRules: link.rules !== null,
    expiredUrl: link.expiredUrl,
    passwordProtected: link.passwordHash !== null,
    crawlable: link.crawlable,
  };
}

const nullable = (schema: object) => ({ anyOf: [schema, { type: 'null' }] });

export const linkSchema = {
  $id: 'Link',
  type: 'object',
  required: [
    'code',
    'domain',
    'shortUrl',
    'url',
    'createdAt',
    'updatedAt',
    'expiresAt',
    'validSince',
    'maxClicks',
    'redirectType',
    'forwardQuery',
    'tags',
    'title',
    'disabled',
    'clicks',
    'status',
    'hasRules',
    'expiredUrl',
    'passwordProtected',
    'crawlable',
  ],
  properties: {
    code: { type: 'string' },
    domain: { type: 'string', description: 'The host the link answers on' },
    shortUrl: { type: 'string', format: 'uri' },
    url: { type: 'string', format: 'uri' },
    createdAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
    expiresAt: nullable({ type: 'string', format: 'date-time' }),
    validSince: nullable({ type: 'string', format: 'date-time' }),
    maxClicks: nullable({ type: 'integer' }),
    redirectType: { type: 'integer', enum: [301, 302, 307, 308] },
    forwardQuery: { type: 'boolean' },
    tags: { type: 'array', items: { type: 'string' } },
    title: nullable({ type: 'string' }),
    disabled: { type: 'boolean' },
    clicks: { type: 'integer' },
    status: { type: 'string', enum: ['active', 'scheduled', 'expired', 'disabled', 'used_up'] },
    hasRules: { type: 'boolean', description: 'Whether redirect rules may send visitors elsewhere' },
    expiredUrl: nullable({ type: 'string', format: 'uri' }),
    passwordProtected: { type: 'boolean', description: 'Visitors must give a password (it is never shown)' },
    crawlable: { type: 'boolean', description: "Whether the domain's robots.txt lets crawlers follow it" },
  },
} as const;

/** One redirect rule (the domain checks each condition's value: domain/redirect-rules.ts). */
export const ruleSchema = {
  $id: 'RedirectRule',
  type: 'object',
  required: ['url', 'conditions'],
  additionalProperties: false,
  properties: {
    url: { type: 'string', description: 'Where a visitor matching every condition goes' },
    conditions: {
      type: 'array',
      minItems: 1,
      maxItems: RULE_LIMITS.maxConditions,
      items: {
        type: 'object',
        required: ['type'],
        additionalProperties: false,
        properties: {
          type: { type: 'string', enum: [...CONDITION_TYPES] },
          key: { type: 'string', description: 'query: the parameter name' },
          value: { type: 'string' },
        },
      },
    },
  },
} as const;

export const passwordSchema = nullable({
  type: 'string',
  minLength: 1,
  maxLength: LIMITS.maxPasswordLength,
  writeOnly: true,
  description: 'Visitors must give it to be redirected (stored as a hash; null removes it)',
});

/** Fields shared by create and update bodies; the domain checks what schemas cannot. */
export const linkFieldSchemas = {
  url: { type: 'string', description: 'Absolute http(s) URL, at most 8,192 characters' },
  expiresAt: nullable({ type: 'string', format: 'date-time', description: 'ISO 8601, in the future' }),
  validSince: nullable({
    type: 'string',
    format: 'date-time',
    description: 'Before this time the link answers as unknown (404); status "scheduled"',
  }),
  maxClicks: nullable({ type: 'integer', minimum: 1 }),
  redirectType: { type: 'integer', enum: [301, 302, 307, 308], default: 302 },
  forwardQuery: { type: 'boolean', default: true },
  tags: { type: 'array', maxItems: 20, items: { type: 'string', minLength: 1, maxLength: 64 } },
  title: nullable({ type: 'string', maxLength: 512 }),
  crawlable: { type: 'boolean', default: false, description: "Whether the domain's robots.txt allows it" },
  expiredUrl: nullable({
    type: 'string',
    description: 'Where the link sends visitors once it is expired, used up or disabled (instead of 410)',
  }),
  rules: nullable({
    type: 'array',
    maxItems: RULE_LIMITS.maxRules,
    items: { $ref: 'RedirectRule#' },
    description: 'Redirect rules in order: the first whose conditions all match wins',
  }),
} as const;

/** `?domain=`: which domain's link a route names (absent: the default domain). */
export const domainQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    domain: {
      type: 'string',
      minLength: 1,
      maxLength: 253,
      description: "The link's domain (default: the default domain)",
    },
  },
} as const;

export const codeParamsSchema = {
  type: 'object',
  required: ['code'],
  properties: { code: { type: 'string' } },
} as const;
