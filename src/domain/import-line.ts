// One line of a JSON Lines import, checked into a Link. Imports keep codes and timestamps as
// they were (moving data must not change a mapping), so an expiry may lie in the past.
import { bucketOf } from './bucket.ts';
import { looksLikeCode, RESERVED_WORDS } from './codes.ts';
import { DEFAULT_DOMAIN, normalizeHost } from './domains.ts';
import { HopError } from './errors.ts';
import type { Link } from './link.ts';
import { type CreateInput, validateCreate } from './link-input.ts';
import type { UrlPolicy } from './url-policy.ts';

function optionalDate(v: unknown, field: string): Date | null {
  if (v === undefined || v === null) return null;
  const d = typeof v === 'string' ? new Date(v) : new Date(Number.NaN);
  if (Number.isNaN(d.getTime()))
    throw new HopError('validation_failed', `"${field}" must be an ISO 8601 date-time.`);
  return d;
}

/**
 * `defaultHost`: a line naming the default domain's host is on the default domain (stored as ''),
 * whatever the host was where it was exported.
 */
export function parseImportLine(line: string, policy: UrlPolicy, now: number, defaultHost = ''): Link {
  let obj: Record<string, unknown>;
  try {
    obj = JSON.parse(line) as Record<string, unknown>;
  } catch {
    throw new HopError('validation_failed', 'The line is not valid JSON.');
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
    throw new HopError('validation_failed', 'Each line must be a JSON object.');
  }
  const code = obj.code;
  if (typeof code !== 'string' || !looksLikeCode(code)) {
    throw new HopError('invalid_alias', '"code" must be 1-64 characters of A-Z, a-z, 0-9, "_" and "-".');
  }
  if (RESERVED_WORDS.has(code.toLowerCase())) throw new HopError('reserved_alias', `"${code}" is reserved.`);
  const expiresAt = optionalDate(obj.expiresAt, 'expiresAt');
  // Reuse the create rules for every field but the expiry (checked above, past allowed).
  const { fields } = validateCreate(
    { ...(obj as CreateInput), alias: undefined, expiresAt: undefined },
    policy,
    now,
  );
  const createdAt = optionalDate(obj.createdAt, 'createdAt') ?? new Date(now);
  const usedClicks =
    typeof obj.usedClicks === 'number' && Number.isInteger(obj.usedClicks) ? Math.max(0, obj.usedClicks) : 0;
  return {
    ...fields,
    expiresAt,
    disabled: obj.disabled === true,
    code,
    domain: lineDomain(obj.domain, defaultHost),
    bucket: bucketOf(code),
    usedClicks,
    deletedAt: optionalDate(obj.deletedAt, 'deletedAt'),
    passwordHash: optionalPasswordHash(obj.passwordHash),
    createdAt,
    updatedAt: optionalDate(obj.updatedAt, 'updatedAt') ?? createdAt,
  };
}

function lineDomain(value: unknown, defaultHost: string): string {
  if (value === undefined || value === null || value === '') return DEFAULT_DOMAIN;
  const host = normalizeHost(value, 'domain');
  return host === defaultHost ? DEFAULT_DOMAIN : host;
}

// What Hop's own export writes (links/link-password.ts): scrypt$N$r$p$salt$key.
const PASSWORD_HASH = /^scrypt\$\d{1,10}\$\d{1,3}\$\d{1,3}\$[A-Za-z0-9_-]{1,64}\$[A-Za-z0-9_-]{1,128}$/;

/** A password hash carried by an export line, as it is (the password itself is never exported). */
function optionalPasswordHash(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string' || !PASSWORD_HASH.test(value))
    throw new HopError('validation_failed', '"passwordHash" is not a password hash Hop wrote.', {
      extra: { field: 'passwordHash' },
    });
  return value;
}
