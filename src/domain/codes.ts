// Short codes (DESIGN §3): generated ones are CSPRNG base62, so nothing is enumerable and no
// process needs to coordinate; a custom alias is just a chosen code with stricter rules.
import { randomBytes } from 'node:crypto';
import { HopError } from './errors.ts';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Draws `length` base62 characters without modulo bias (rejection sampling on bytes). */
export function generateCode(length: number): string {
  let out = '';
  while (out.length < length) {
    const bytes = randomBytes(length * 2);
    for (let i = 0; i < bytes.length && out.length < length; i++) {
      const b = bytes[i]!;
      if (b < 248) out += BASE62[b % 62];
    }
  }
  return out;
}

/** Any code Hop could ever have issued: generated or alias. Cheap check for the redirect path. */
const CODE_SHAPE = /^[A-Za-z0-9_-]{1,64}$/;
export function looksLikeCode(s: string): boolean {
  return CODE_SHAPE.test(s);
}

const ALIAS_SHAPE = /^[A-Za-z0-9_-]{3,64}$/;

/**
 * Paths Hop serves itself, or may serve later (dashboard, assets): no alias may take them.
 * Compared case-insensitively so that `API` cannot shadow `api` in a proxy that folds case.
 */
export const RESERVED_WORDS: ReadonlySet<string> = new Set([
  'api',
  'rest',
  'healthz',
  'readyz',
  'metrics',
  'assets',
  'static',
  'dashboard',
  'login',
  'logout',
  'signin',
  'signout',
  'session',
  'links',
  'stats',
  'analytics',
  'settings',
  'system',
  'admin',
  'docs',
  'openapi',
  'favicon.ico',
  'robots.txt',
  'app',
  'ui',
  'web',
  'well-known',
  '_hop',
]);

export function validateAlias(alias: string): string {
  if (!ALIAS_SHAPE.test(alias)) {
    throw new HopError('invalid_alias', 'An alias is 3 to 64 characters of A-Z, a-z, 0-9, "_" and "-".', {
      extra: { field: 'alias' },
    });
  }
  if (RESERVED_WORDS.has(alias.toLowerCase())) {
    throw new HopError('reserved_alias', `"${alias}" is reserved by Hop and cannot be used as an alias.`, {
      extra: { field: 'alias' },
    });
  }
  return alias;
}
