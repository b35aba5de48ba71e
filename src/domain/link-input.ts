// Validation of what a client asks for, into domain values. Routes check JSON types with
// their schemas; the rules that need a clock, a policy or a precise error code live here.
import { validateAlias } from './codes.ts';
import { ISO_DATE_TIME } from './date-time.ts';
import { HopError } from './errors.ts';
import { REDIRECT_TYPES, type RedirectType } from './link.ts';
import { parseRules, type RedirectRule } from './redirect-rules.ts';
import { normalizeTargetUrl, type UrlPolicy } from './url-policy.ts';

export const LIMITS = {
  maxTags: 20,
  maxTagLength: 64,
  maxTitleLength: 512,
  maxMaxClicks: 2_147_483_647,
  maxPasswordLength: 256,
} as const;

/** Fields a create or an update may set (already validated). */
export interface LinkFields {
  url: string;
  expiresAt: Date | null;
  validSince: Date | null;
  maxClicks: number | null;
  redirectType: RedirectType;
  forwardQuery: boolean;
  tags: string[];
  title: string | null;
  disabled: boolean;
  crawlable: boolean;
  rules: RedirectRule[] | null;
  expiredUrl: string | null;
  /** Set by the route from `password` (hashing is not the domain's); imports carry it as it is. */
  passwordHash: string | null;
}

export interface CreateInput {
  url?: unknown;
  alias?: unknown;
  expiresAt?: unknown;
  validSince?: unknown;
  maxClicks?: unknown;
  redirectType?: unknown;
  forwardQuery?: unknown;
  tags?: unknown;
  title?: unknown;
  rules?: unknown;
  expiredUrl?: unknown;
  password?: unknown;
  crawlable?: unknown;
  /** A registered host; absent or the default host: the default domain (checked by the route). */
  domain?: unknown;
}

export type PatchInput = Omit<CreateInput, 'alias' | 'rules' | 'domain'> & { disabled?: unknown };

function failed(field: string, detail: string): HopError {
  return new HopError('validation_failed', detail, { extra: { field } });
}

export function parseExpiry(value: unknown, now: number): Date | null {
  if (value === null || value === undefined) return null;
  const bad = (detail: string) => new HopError('invalid_expiry', detail, { extra: { field: 'expiresAt' } });
  if (typeof value !== 'string' || !ISO_DATE_TIME.test(value)) {
    throw bad('"expiresAt" must be an ISO 8601 date-time with a time zone, e.g. 2030-01-31T12:00:00Z.');
  }
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw bad('"expiresAt" is not a real date.');
  if (ms <= now) throw bad('"expiresAt" must be in the future.');
  return new Date(ms);
}

/** Any ISO 8601 date-time, past or future (a past one is simply valid already). */
export function parseValidSince(value: unknown): Date | null {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'string' || !ISO_DATE_TIME.test(value) || Number.isNaN(Date.parse(value)))
    throw failed('validSince', '"validSince" must be an ISO 8601 date-time with a time zone.');
  return new Date(Date.parse(value));
}

function parseMaxClicks(value: unknown): number | null {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > LIMITS.maxMaxClicks) {
    throw failed('maxClicks', `"maxClicks" must be an integer from 1 to ${LIMITS.maxMaxClicks}.`);
  }
  return value;
}

function parseRedirectType(value: unknown): RedirectType {
  if (value === undefined) return 302;
  if (!REDIRECT_TYPES.includes(value as RedirectType)) {
    throw failed('redirectType', '"redirectType" must be one of 301, 302, 307, 308.');
  }
  return value as RedirectType;
}

function parseBoolean(field: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw failed(field, `"${field}" must be true or false.`);
  return value;
}

function parseTags(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || value.length > LIMITS.maxTags) {
    throw failed('tags', `"tags" must be a list of at most ${LIMITS.maxTags} strings.`);
  }
  const tags: string[] = [];
  for (const tag of value) {
    if (typeof tag !== 'string' || tag.trim() === '' || tag.length > LIMITS.maxTagLength) {
      throw failed(
        'tags',
        `Each tag must be a non-empty string of at most ${LIMITS.maxTagLength} characters.`,
      );
    }
    const t = tag.trim();
    if (!tags.includes(t)) tags.push(t);
  }
  return tags;
}

function parseTitle(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string' || value.length > LIMITS.maxTitleLength) {
    throw failed('title', `"title" must be a string of at most ${LIMITS.maxTitleLength} characters.`);
  }
  return value;
}

/** `password`: absent (undefined), null (remove it), or the new password. */
export function parsePassword(value: unknown): string | null | undefined {
  if (value === undefined || value === null) return value;
  if (typeof value !== 'string' || value.length < 1 || value.length > LIMITS.maxPasswordLength)
    throw failed(
      'password',
      `"password" must be a string of 1 to ${LIMITS.maxPasswordLength} characters, or null to remove it.`,
    );
  return value;
}

function parseExpiredUrl(value: unknown, policy: UrlPolicy): string | null {
  return value === undefined || value === null ? null : normalizeTargetUrl(value, policy, 'expiredUrl');
}

/** Rules on create or import (PUT /links/{code}/rules replaces them later); none is null. */
export function parseRulesField(value: unknown, policy: UrlPolicy): RedirectRule[] | null {
  if (value === undefined || value === null) return null;
  const rules = parseRules(value, policy);
  return rules.length === 0 ? null : rules;
}

export function validateCreate(
  input: CreateInput,
  policy: UrlPolicy,
  now: number,
): { alias: string | null; fields: LinkFields } {
  const url = normalizeTargetUrl(input.url, policy);
  let alias: string | null = null;
  if (input.alias !== undefined && input.alias !== null) {
    if (typeof input.alias !== 'string') throw new HopError('invalid_alias', '"alias" must be a string.');
    alias = validateAlias(input.alias);
  }
  return {
    alias,
    fields: {
      url,
      expiresAt: parseExpiry(input.expiresAt, now),
      validSince: parseValidSince(input.validSince),
      maxClicks: parseMaxClicks(input.maxClicks),
      redirectType: parseRedirectType(input.redirectType),
      forwardQuery: parseBoolean('forwardQuery', input.forwardQuery, true),
      tags: parseTags(input.tags),
      title: parseTitle(input.title),
      disabled: false,
      crawlable: parseBoolean('crawlable', input.crawlable, false),
      rules: parseRulesField(input.rules, policy),
      expiredUrl: parseExpiredUrl(input.expiredUrl, policy),
      passwordHash: null,
    },
  };
}

/** Only the fields present are changed; `null` clears the optional ones. */
export function validatePatch(input: PatchInput, policy: UrlPolicy, now: number): Partial<LinkFields> {
  const out: Partial<LinkFields> = {};
  if ('url' in input) out.url = normalizeTargetUrl(input.url, policy);
  if ('expiresAt' in input) out.expiresAt = parseExpiry(input.expiresAt, now);
  if ('validSince' in input) out.validSince = parseValidSince(input.validSince);
  if ('maxClicks' in input) out.maxClicks = parseMaxClicks(input.maxClicks);
  if ('redirectType' in input) {
    if (input.redirectType === null) throw failed('redirectType', '"redirectType" cannot be null.');
    out.redirectType = parseRedirectType(input.redirectType);
  }
  if ('forwardQuery' in input) out.forwardQuery = parseBoolean('forwardQuery', input.forwardQuery, true);
  if ('tags' in input) out.tags = parseTags(input.tags);
  if ('title' in input) out.title = parseTitle(input.title);
  if ('disabled' in input) out.disabled = parseBoolean('disabled', input.disabled, false);
  if ('crawlable' in input) out.crawlable = parseBoolean('crawlable', input.crawlable, false);
  if ('expiredUrl' in input) out.expiredUrl = parseExpiredUrl(input.expiredUrl, policy);
  if (Object.keys(out).length === 0 && !('password' in input))
    throw failed('body', 'Nothing to change: send at least one field.');
  return out;
}
