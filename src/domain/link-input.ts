// Validation of what a client asks for, into domain values. Routes check JSON types with
// their schemas; the rules that need a clock, a policy or a precise error code live here.
import { validateAlias } from './codes.ts';
import { HopError } from './errors.ts';
import { REDIRECT_TYPES, type RedirectType } from './link.ts';
import { normalizeTargetUrl, type UrlPolicy } from './url-policy.ts';

export const LIMITS = {
  maxTags: 20,
  maxTagLength: 64,
  maxTitleLength: 512,
  maxMaxClicks: 2_147_483_647,
} as const;

/** Fields a create or an update may set (already validated). */
export interface LinkFields {
  url: string;
  expiresAt: Date | null;
  maxClicks: number | null;
  redirectType: RedirectType;
  forwardQuery: boolean;
  tags: string[];
  title: string | null;
  disabled: boolean;
}

export interface CreateInput {
  url?: unknown;
  alias?: unknown;
  expiresAt?: unknown;
  maxClicks?: unknown;
  redirectType?: unknown;
  forwardQuery?: unknown;
  tags?: unknown;
  title?: unknown;
}

export type PatchInput = Omit<CreateInput, 'alias'> & { disabled?: unknown };

// RFC 3339 / ISO 8601 date-time with an explicit offset; anything else is ambiguous.
const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/i;

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
      maxClicks: parseMaxClicks(input.maxClicks),
      redirectType: parseRedirectType(input.redirectType),
      forwardQuery: parseBoolean('forwardQuery', input.forwardQuery, true),
      tags: parseTags(input.tags),
      title: parseTitle(input.title),
      disabled: false,
    },
  };
}

/** Only the fields present are changed; `null` clears the optional ones. */
export function validatePatch(input: PatchInput, policy: UrlPolicy, now: number): Partial<LinkFields> {
  const out: Partial<LinkFields> = {};
  if ('url' in input) out.url = normalizeTargetUrl(input.url, policy);
  if ('expiresAt' in input) out.expiresAt = parseExpiry(input.expiresAt, now);
  if ('maxClicks' in input) out.maxClicks = parseMaxClicks(input.maxClicks);
  if ('redirectType' in input) {
    if (input.redirectType === null) throw failed('redirectType', '"redirectType" cannot be null.');
    out.redirectType = parseRedirectType(input.redirectType);
  }
  if ('forwardQuery' in input) out.forwardQuery = parseBoolean('forwardQuery', input.forwardQuery, true);
  if ('tags' in input) out.tags = parseTags(input.tags);
  if ('title' in input) out.title = parseTitle(input.title);
  if ('disabled' in input) out.disabled = parseBoolean('disabled', input.disabled, false);
  if (Object.keys(out).length === 0) throw failed('body', 'Nothing to change: send at least one field.');
  return out;
}
