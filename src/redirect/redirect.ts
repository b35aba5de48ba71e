// THE hot path: domain → resolve → decide → redirect → hand the click to the sink (never awaited).
// Synchronous on a cache hit; policies are the functions it calls. Adapters render the answer.
import type { IncomingMessage } from 'node:http';
import type { Deps } from '../deps.ts';
import { looksLikeCode } from '../domain/codes.ts';
import { type Domain, linkKey } from '../domain/domains.ts';
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
  const { resolver, store, clickIntake: clicks, metrics, domains, orphans } = deps;
  const rules = new RuleTargets(deps.config);
  const gate = new PasswordGate(deps);

  function go(link: RedirectRecord, url: string, counts: boolean, req: IncomingMessage): RedirectAnswer {
    const q = url.indexOf('?');
    const chosen = link.rules === null ? null : rules.target(link, url, req);
    const target = chosen === null ? link.url : chosen.url;
    const location = link.forwardQuery && q !== -1 ? mergeQuery(target, url.slice(q + 1)) : target;
    if (counts && clicks.active) {
      // With rules, the one that chose (1-based; 0: none) goes with the click: the A/B breakdown.
      clicks.take(
        chosen === null ? linkKey(link.domain, link.code) : rules.clickCode(link, chosen.rule),
        req,
      );
    }
    metrics.redirect('redirect');
    return { status: link.redirectType, location };
  }

  /** A dead link's answer: its fallback URL, else its domain's (never counted as a click), else 410. */
  function dead(record: RedirectRecord, domain: Domain, gone: RedirectAnswer): RedirectAnswer {
    metrics.redirect('gone');
    const fallback = record.expiredUrl ?? domain.expiredRedirect;
    return fallback === null ? gone : { status: 302, location: fallback };
  }

  /** No link here: an orphan visit, sent to the domain's notFoundRedirect when it has one. */
  function unknown(domain: Domain, method: string, url: string, req: IncomingMessage): RedirectAnswer {
    metrics.redirect('not_found');
    if (method === 'GET') {
      const q = url.indexOf('?');
      orphans.count(
        domain.host,
        'unknown_code',
        q === -1 ? url : url.slice(0, q),
        req.headers['user-agent'],
        Date.now(),
        req.headers.referer,
      );
    }
    return domain.notFoundRedirect === null ? NOT_FOUND : { status: 302, location: domain.notFoundRedirect };
  }

  function decide(
    record: RedirectRecord | null,
    domain: Domain,
    method: string,
    url: string,
    req: IncomingMessage,
  ): RedirectAnswer | Promise<RedirectAnswer> {
    const d = decideRedirect(record, Date.now());
    if (d !== 'redirect' || record === null) {
      if (d === 'not_found' || record === null) return unknown(domain, method, url, req);
      return dead(record, domain, d === 'expired' ? EXPIRED : DISABLED);
    }
    if (record.passwordHash !== null) {
      const locked = gate.check(record, url, req);
      if (locked instanceof Promise) return locked.then((l) => l ?? open(record, domain, method, url, req));
      if (locked !== null) return locked;
    }
    return open(record, domain, method, url, req);
  }

  function open(record: RedirectRecord, domain: Domain, method: string, url: string, req: IncomingMessage) {
    const counts = method === 'GET'; // HEAD is a probe: it neither counts nor uses up a limited link
    if (record.maxClicks === null || !counts) return go(record, url, counts, req);
    return store
      .consumeClick(linkKey(domain.host, record.code))
      .then((ok) => (ok ? go(record, url, counts, req) : dead(record, domain, USED_UP)));
  }

  return (method, url, code, req) => {
    const domain = domains.forRequest(req.headers.host);
    if (domain === null) return NOT_FOUND; // HOP_STRICT_HOSTS: not a host Hop serves links on
    if (!looksLikeCode(code)) return decide(null, domain, method, url, req);
    const found = resolver.resolve(linkKey(domain.host, code));
    return found instanceof Promise
      ? found.then((r) => decide(r, domain, method, url, req))
      : decide(found, domain, method, url, req);
  };
}
