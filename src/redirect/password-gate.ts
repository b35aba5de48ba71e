// The door of a password-protected link: open with a valid unlock cookie, or with the right
// password (X-Link-Password, or the page's form); every wrong or right attempt counts against a
// budget per client address and link, so guessing is slow. Nothing here reveals the target.

import type { IncomingMessage } from 'node:http';
import { sessionSecret } from '../dashboard/session-secret.ts';
import type { Deps } from '../deps.ts';
import { linkKey } from '../domain/domains.ts';
import type { RedirectRecord } from '../domain/link.ts';
import { LIMITS } from '../domain/link-input.ts';
import { cookieValue } from '../http/sessions.ts';
import { clientAddress, compileTrust, type TrustProxy } from '../http/trust-proxy.ts';
import { UnlockCookies, verifyPassword } from '../links/link-password.ts';
import type { RatePolicy } from '../ratelimit/rate-limiter.ts';

/** What a locked link answers: the page or problem says why, `action` is where the form posts. */
export type LockedAnswer = {
  readonly status: 401 | 403 | 429;
  readonly code: 'password_required' | 'password_incorrect' | 'rate_limited';
  readonly detail: string;
  readonly action: string;
  readonly retryAfter?: number;
};

// Five tries at once, then one every ten seconds, per client address and link. Applied even when
// HOP_RATE_LIMITS=off: it guards the password, not the server's capacity.
const ATTEMPTS: RatePolicy = { name: 'link_password', perSecond: 0.1, burst: 5 };

export class PasswordGate {
  private readonly cookies: UnlockCookies;
  private readonly trust: TrustProxy;
  private readonly deps: Deps;
  readonly secureCookies: boolean;

  constructor(deps: Deps) {
    this.deps = deps;
    this.cookies = new UnlockCookies(sessionSecret(deps.config));
    this.trust = compileTrust(deps.config.trustProxy);
    this.secureCookies = deps.config.publicUrl.startsWith('https:');
  }

  /** Where the form posts: the short link itself, with the query it was asked with. */
  static actionFor(code: string, url: string): string {
    const q = url.indexOf('?');
    return q === -1 ? `/${code}` : `/${code}${url.slice(q)}`;
  }

  /** null: this request may pass. Synchronous unless it carries a password to check. */
  check(
    link: RedirectRecord,
    url: string,
    req: IncomingMessage,
  ): LockedAnswer | null | Promise<LockedAnswer | null> {
    const hash = link.passwordHash!;
    const cookie = cookieValue(req.headers.cookie, UnlockCookies.nameFor(link.code));
    if (this.cookies.valid(link.code, hash, cookie, Date.now())) return null;
    const given = req.headers['x-link-password'];
    const action = PasswordGate.actionFor(link.code, url);
    if (typeof given === 'string') return this.attempt(link, given, req, action);
    return { status: 401, code: 'password_required', detail: 'This link needs its password.', action };
  }

  /** One try at the password: null when right. */
  async attempt(
    link: RedirectRecord,
    password: string,
    req: IncomingMessage,
    action: string,
  ): Promise<LockedAnswer | null> {
    const take = await this.deps.rateLimiter.take(
      ATTEMPTS,
      `${clientAddress(req, this.trust)}|${linkKey(link.domain, link.code)}`,
    );
    if (!take.allowed) {
      this.deps.metrics.rateLimited(ATTEMPTS.name);
      const detail = `Too many password attempts; retry in ${take.retryAfterSeconds} s.`;
      return { status: 429, code: 'rate_limited', detail, action, retryAfter: take.retryAfterSeconds };
    }
    // A longer one cannot be right, and must not make the server hash megabytes.
    if (password.length <= LIMITS.maxPasswordLength && (await verifyPassword(password, link.passwordHash!)))
      return null;
    return { status: 403, code: 'password_incorrect', detail: 'That password is not right.', action };
  }

  /** The Set-Cookie that keeps the link open in this browser for a while. */
  unlockCookie(link: RedirectRecord): string {
    return this.cookies.issue(link.code, link.passwordHash!, Date.now(), this.secureCookies);
  }
}
