// Dashboard sessions: a stateless, HMAC-signed cookie naming the API key (by id, never the key
// itself), an expiry and a random nonce. The CSRF token is derived from the nonce with the same
// secret, so it is bound to the session and needs no server-side storage.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const SESSION_COOKIE = 'hop_session';
export const CSRF_HEADER = 'x-csrf-token';

export interface SessionClaims {
  readonly keyId: string;
  /** Expiry, ms since the epoch. */
  readonly exp: number;
  readonly nonce: string;
}

// Signed-out sessions still carry a valid signature until they expire; remembering their nonces
// (bounded) makes sign-out final in this process.
const MAX_SIGNED_OUT = 10_000;

export class Sessions {
  private readonly secret: Buffer;
  readonly ttlMs: number;
  private readonly signedOut = new Map<string, number>();

  constructor(secret: Buffer, ttlMs: number) {
    this.secret = secret;
    this.ttlMs = ttlMs;
  }

  private mac(purpose: string, data: string): string {
    return createHmac('sha256', this.secret).update(`${purpose}|${data}`).digest('base64url');
  }

  issue(keyId: string, now: number): { cookie: string; claims: SessionClaims } {
    const claims: SessionClaims = {
      keyId,
      exp: now + this.ttlMs,
      nonce: randomBytes(16).toString('base64url'),
    };
    const payload = Buffer.from(JSON.stringify([claims.keyId, claims.exp, claims.nonce])).toString(
      'base64url',
    );
    return { cookie: `${payload}.${this.mac('session', payload)}`, claims };
  }

  /** The claims of a genuine, unexpired, not signed-out cookie value; null otherwise. */
  read(value: string, now: number): SessionClaims | null {
    const dot = value.indexOf('.');
    if (dot <= 0 || value.length > 1024) return null;
    const payload = value.slice(0, dot);
    if (!equal(value.slice(dot + 1), this.mac('session', payload))) return null;
    try {
      const [keyId, exp, nonce] = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as unknown[];
      if (typeof keyId !== 'string' || typeof exp !== 'number' || typeof nonce !== 'string') return null;
      if (exp <= now || this.signedOut.has(nonce)) return null;
      return { keyId, exp, nonce };
    } catch {
      return null;
    }
  }

  csrfToken(claims: SessionClaims): string {
    return this.mac('csrf', claims.nonce);
  }

  checkCsrf(claims: SessionClaims, presented: string | undefined): boolean {
    return presented !== undefined && equal(presented, this.csrfToken(claims));
  }

  signOut(claims: SessionClaims, now: number): void {
    if (this.signedOut.size >= MAX_SIGNED_OUT) {
      for (const [nonce, exp] of this.signedOut) if (exp <= now) this.signedOut.delete(nonce);
      if (this.signedOut.size >= MAX_SIGNED_OUT) this.signedOut.clear();
    }
    this.signedOut.set(claims.nonce, claims.exp);
  }
}

function equal(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** One cookie's value from a Cookie header, or null. */
export function cookieValue(header: string | undefined, name: string): string | null {
  if (header === undefined) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

export function sessionCookieHeader(value: string, opts: { maxAgeMs: number; secure: boolean }): string {
  const maxAge = Math.max(0, Math.floor(opts.maxAgeMs / 1000));
  const expires = new Date(Date.now() + maxAge * 1000).toUTCString();
  return `${SESSION_COOKIE}=${value}; Path=/; Max-Age=${maxAge}; Expires=${expires}; HttpOnly; SameSite=Strict${opts.secure ? '; Secure' : ''}`;
}
