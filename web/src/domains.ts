// The domains Hop serves links on, read once and shared by every page, and how a link is named in
// the API: by its code, plus `?domain=<host>` when it is not on the default domain.
import { useEffect, useState } from 'preact/hooks';
import { api, type Domain } from './api.ts';

let cached: Promise<Domain[]> | null = null;

/** The domains, default first; read once, again after `forgetDomains()` (the Domains page's changes). */
export function loadDomains(): Promise<Domain[]> {
  if (cached === null) {
    const asked = api<{ items: Domain[] }>('GET', '/domains').then((r) => r.items);
    asked.catch(() => {
      if (cached === asked) cached = null;
    });
    cached = asked;
  }
  return cached;
}

export function forgetDomains(): void {
  cached = null;
}

export const defaultHostOf = (domains: readonly Domain[]): string | undefined =>
  domains.find((d) => d.isDefault)?.host;

/** '' for a link on the default domain, else `domain=<host>`. */
export function domainQuery(domain: string, defaultHost: string | undefined): string {
  return domain === defaultHost ? '' : `domain=${encodeURIComponent(domain)}`;
}

/**
 * The API path of a link (and `suffix`, e.g. '/rules'), with `?domain=` when it is not on the
 * default domain, and any other query parameters.
 */
export async function linkPath(
  code: string,
  domain: string | null,
  suffix = '',
  params?: URLSearchParams,
): Promise<string> {
  const p = new URLSearchParams(params);
  if (domain !== null && domain !== defaultHostOf(await loadDomains())) p.set('domain', domain);
  const q = p.toString();
  return `/links/${encodeURIComponent(code)}${suffix}${q === '' ? '' : `?${q}`}`;
}

/** The dashboard's analytics page for one link. */
export function analyticsHref(code: string, domain: string, defaultHost: string | undefined): string {
  const q = domainQuery(domain, defaultHost);
  return `/analytics?code=${encodeURIComponent(code)}${q === '' ? '' : `&${q}`}`;
}

/** The domains for a component: null while loading; `error` when they could not be read. */
export function useDomains(): { domains: Domain[] | null; error: string | null } {
  const [domains, setDomains] = useState<Domain[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    loadDomains().then(
      (d) => live && setDomains(d),
      (err: Error) => live && setError(err.message),
    );
    return () => {
      live = false;
    };
  }, []);
  return { domains, error };
}
