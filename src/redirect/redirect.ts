// THE hot path: resolve → decide → redirect → hand the click to the sink (never awaited).
// Synchronous on a cache hit; policies are the functions it calls. Adapters render the answer.
import type { IncomingMessage } from 'node:http';
import type { Deps } from '../deps.ts';
import { looksLikeCode } from '../domain/codes.ts';
import { decideRedirect, type RedirectRecord } from '../domain/link.ts';
import { mergeQuery } from '../domain/url-policy.ts';

export type RedirectAnswer =
  | { readonly status: number; readonly location: string }
  | { readonly status: 404 | 410; readonly code: 'not_found' | 'gone'; readonly detail: string };

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

  function go(link: RedirectRecord, url: string, counts: boolean, req: IncomingMessage): RedirectAnswer {
    const q = url.indexOf('?');
    const location = link.forwardQuery && q !== -1 ? mergeQuery(link.url, url.slice(q + 1)) : link.url;
    if (counts && clicks.active) clicks.take(link.code, req);
    metrics.redirect('redirect');
    return { status: link.redirectType, location };
  }

  function decide(record: RedirectRecord | null, method: string, url: string, req: IncomingMessage) {
    const d = decideRedirect(record, Date.now());
    if (d !== 'redirect' || record === null) {
      metrics.redirect(d === 'not_found' ? 'not_found' : 'gone');
      return d === 'expired' ? EXPIRED : d === 'disabled' ? DISABLED : NOT_FOUND;
    }
    const counts = method === 'GET'; // HEAD is a probe: it neither counts nor uses up a limited link
    if (record.maxClicks === null || !counts) return go(record, url, counts, req);
    return store.consumeClick(record.code).then((ok) => {
      if (ok) return go(record, url, counts, req);
      metrics.redirect('gone');
      return USED_UP;
    });
  }

  return (method, url, code, req) => {
    if (!looksLikeCode(code)) return decide(null, method, url, req);
    const found = resolver.resolve(code);
    return found instanceof Promise
      ? found.then((r) => decide(r, method, url, req))
      : decide(found, method, url, req);
  };
}
