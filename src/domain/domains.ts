// Domains (DESIGN §11): a link is identified by (domain, code). The default domain (the host of
// HOP_PUBLIC_URL) is stored as '' so that changing HOP_PUBLIC_URL moves no row. Everything keyed by
// one string (caches, invalidations, click rollups) uses the link key: the code alone on the default
// domain, `host/code` elsewhere; placement is by the code alone, so every domain's row for a code
// lives on the same shard. No I/O here.
import { bucketOf } from './bucket.ts';
import { HopError } from './errors.ts';

/** The stored domain of links on the default domain. */
export const DEFAULT_DOMAIN = '';

export interface Domain {
  /** Lower-case ASCII host name (punycode for IDNs), or '' for the default domain. */
  readonly host: string;
  /** Where the domain's root sends visitors; null: the dashboard (default domain) or a 404. */
  readonly rootRedirect: string | null;
  /** Where an unknown code on the domain sends visitors; null: 404. */
  readonly notFoundRedirect: string | null;
  /** Where a dead link without its own expiredUrl sends visitors; null: 410. */
  readonly expiredRedirect: string | null;
  /** Where any other 404 on the domain (a path that is no code) sends visitors; null: 404. */
  readonly otherNotFoundRedirect: string | null;
  readonly createdAt: Date;
}

/** A domain registered with no redirects of its own. */
export const bareDomain = (host: string, createdAt: Date): Domain => ({
  host,
  rootRedirect: null,
  notFoundRedirect: null,
  expiredRedirect: null,
  otherNotFoundRedirect: null,
  createdAt,
});

export type DomainRedirects = Pick<
  Domain,
  'rootRedirect' | 'notFoundRedirect' | 'expiredRedirect' | 'otherNotFoundRedirect'
>;
export const DOMAIN_REDIRECTS = [
  'rootRedirect',
  'notFoundRedirect',
  'expiredRedirect',
  'otherNotFoundRedirect',
] as const;

/** The one string that names a link in caches, invalidations and click rollups. */
export function linkKey(domain: string, code: string): string {
  return domain === DEFAULT_DOMAIN ? code : `${domain}/${code}`;
}

/** A link key back into its parts (codes and hosts never contain '/'). */
export function splitLinkKey(key: string): { domain: string; code: string } {
  const slash = key.lastIndexOf('/');
  return slash === -1
    ? { domain: DEFAULT_DOMAIN, code: key }
    : { domain: key.slice(0, slash), code: key.slice(slash + 1) };
}

/** The bucket of a link key: its code's (DESIGN §2), whatever the domain. */
export function bucketOfKey(key: string): number {
  const slash = key.lastIndexOf('/');
  return bucketOf(slash === -1 ? key : key.slice(slash + 1));
}

/** Whether a link key is on this stored domain ('' the default). The all-links key '' is on none. */
export function keyOnDomain(key: string, domain: string): boolean {
  if (key === '') return false;
  const slash = key.lastIndexOf('/');
  return domain === DEFAULT_DOMAIN ? slash === -1 : slash === domain.length && key.startsWith(domain);
}

/** The same test in SQL over a column of link keys (a stored domain is [a-z0-9.-], checked here). */
export function keyOnDomainSql(column: string, domain: string): string {
  if (domain === DEFAULT_DOMAIN) return `(${column} <> '' AND strpos(${column}, '/') = 0)`;
  if (!/^[a-z0-9.-]+$/.test(domain)) throw new Error(`not a stored domain: ${domain}`);
  return `starts_with(${column}, '${domain}/')`;
}

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/**
 * A host name as given by a client, normalized (lower case, IDN to punycode, no trailing dot), or a
 * `validation_failed` error naming `field`. No port, no path, no IP address literal.
 */
export function normalizeHost(input: unknown, field = 'host'): string {
  const bad = (detail: string) => new HopError('validation_failed', detail, { extra: { field } });
  if (typeof input !== 'string' || input.length === 0 || input.length > 253)
    throw bad(`"${field}" must be a host name of 1-253 characters.`);
  let host: string;
  try {
    const url = new URL(`http://${input}/`);
    if (
      url.port !== '' ||
      url.pathname !== '/' ||
      url.username !== '' ||
      url.search !== '' ||
      url.hash !== ''
    )
      throw new Error('not a bare host');
    host = url.hostname;
  } catch {
    throw bad(`"${field}" must be a bare host name such as go.example.com (no scheme, port or path).`);
  }
  if (host.endsWith('.')) host = host.slice(0, -1);
  if (host.startsWith('[') || /^[0-9.]+$/.test(host))
    throw bad(`"${field}" must be a host name, not an IP address.`);
  const labels = host.split('.');
  if (labels.length < 2 || !labels.every((l) => LABEL.test(l)))
    throw bad(`"${field}" must be a fully qualified host name such as go.example.com.`);
  return host;
}

/**
 * The host a request names in its Host header, as domains are keyed: lower case, no port, no
 * trailing dot. Cheap: this runs on every redirect.
 */
export function requestHost(header: string | undefined): string {
  if (header === undefined) return '';
  let h = header;
  if (h.charCodeAt(0) === 91 /* [ */) {
    const end = h.indexOf(']');
    return end === -1 ? h : h.slice(0, end + 1);
  }
  const colon = h.indexOf(':');
  if (colon !== -1) h = h.slice(0, colon);
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h.toLowerCase();
}

/** The bucket an Idempotency-Key routes by: a keyed create and its retries meet on its owner. */
export function idempotencyBucket(scope: string, key: string): number {
  return bucketOfKey(`${scope}\u0000${key}`);
}
