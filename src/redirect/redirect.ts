// THE hot path: resolve → decide → redirect → hand the click to the sink (never awaited).
// Synchronous on a cache hit; policies are the functions it calls. Adapters render the answer.
import type { IncomingMessage } from 'node:http';
import type { Deps } from '../deps.ts';
import { looksLikeCode } from '../domain/codes.ts';
import { decideRedirect, type RedirectRecord } from '../domain/link.ts';
import { mergeQuery } from '../domain/url-policy.ts';
import { type LockedAnswer, PasswordGate } from './password-gate.ts';
import { RuleTargets } from './rule-target.ts';

export type RedirectAnswer =
  | { readonly status: number; readonly location: string }
  | { readonly status: 404 | 410; readonly code: 'not_found' | 'gone'; readonly detail: string }
  | LockedAnswer;

const NOT_FOUND = { status: 404, code: 'not_found', detail: 'There is no link with this address.' } as const;
const EXPIRED = { status: 410, code: 'gone', detail: 'This link has expired.' } as const;
const DISABLED = { status: 410, code: 'gone', detail: 'This link has been disabled.' } as const;
const USED_UP = { status: 410, code: 'gone', detail: 'This link has reached its click limit.' } as const;

export type Redirector = (
  method: string,
  url: string,
  code: string,
  req: IncomingMessage,
) => RedirectAnswer | Promise<RedirectAnswer>;

export function createRedirector(deps: Deps): Redirector {
  const { resolver, store, clickIntake: clicks, metrics } = deps;
  const rules = new RuleTargets(deps.config);
  const gate = new PasswordGate(deps);

  function go(link: RedirectRecord, url: string, counts: boolean, req: IncomingMessage): RedirectAnswer {
    const q = url.indexOf('?');
    const target = link.rules === null ? link.url : rules.target(link, url, req).url;
    const location = link.forwardQuery && q !== -1 ? mergeQuery(target, url.slice(q + 1)) : target;
    if (counts && clicks.active) clicks.take(link.code, req);
    metrics.redirect('redirect');
    return { status: link.redirectType, location };
  }

  /** A dead link's answer: its fallback URL when it has one (never counted as a click), else 410. */
  function dead(record: RedirectRecord, gone: RedirectAnswer): RedirectAnswer {
    metrics.redirect('gone');
    return record.expiredUrl === null ? gone : { status: 302, location: record.expiredUrl };
  }

  function decide(record: RedirectRecord | null, method: string, url: string, req: IncomingMessage) {
    const d = decideRedirect(record, Date.now());
    if (d !== 'redirect' || record === null) {
      if (d === 'not_found' || record === null) {
        metrics.redirect('not_found');
        return NOT_FOUND;
      }
      return dead(record, d === 'expired' ? EXPIRED : DISABLED);
    }
    if (record.passwordHash !== null) {
      const locked = gate.check(record, url, req);
      if (locked instanceof Promise) return locked.then((l) => l ?? open(record, method, url, req));
      if (locked !== null) return locked;
    }
    return open(record, method, url, req);
  }

  function open(record: RedirectRecord, method: string, url: string, req: IncomingMessage) {
    const counts = method === 'GET'; // HEAD is a probe: it neither counts nor uses up a limited link
    if (record.maxClicks === null || !counts) return go(record, url, counts, req);
    return store
      .consumeClick(record.code)
      .then((ok) => (ok ? go(record, url, counts, req) : dead(record, USED_UP)));
  }

  return (method, url, code, req) => {
    if (!looksLikeCode(code)) return decide(null, method, url, req);
    const found = resolver.resolve(code);
    return found instanceof Promise
      ? found.then((r) => decide(r, method, url, req))
      : decide(found, method, url, req);
  };
}
