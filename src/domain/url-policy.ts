// What a link may point at. Pure string rules: Hop never resolves a target's host name
// (DNS can stall for seconds and must not decide whether a link is accepted or served).
import { HopError } from './errors.ts';

export const MAX_URL_LENGTH = 8192;

export interface UrlPolicy {
  /** Host names Hop itself answers on (lower-case, ASCII); links to them would loop. */
  readonly ownHosts: ReadonlySet<string>;
  /** Host names refused, with all their subdomains (lower-case, ASCII). */
  readonly denyHosts: readonly string[];
}

// C0/C1 controls, DEL, and every Unicode space or line/paragraph separator.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const FORBIDDEN_CHARS = /[\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff]/;

/**
 * Returns the normalized URL to store (WHATWG serialization: IDN hosts become punycode). `field`
 * names the member that held it in errors (`url`, `expiredUrl`, `rules[2].url`).
 */
export function normalizeTargetUrl(input: unknown, policy: UrlPolicy, field = 'url'): string {
  const invalid = (detail: string) => new HopError('invalid_url', detail, { extra: { field } });
  if (typeof input !== 'string' || input.length === 0)
    throw invalid(`"${field}" must be a non-empty string.`);
  if (input.length > MAX_URL_LENGTH) throw invalid(`A URL may be at most ${MAX_URL_LENGTH} characters.`);
  if (FORBIDDEN_CHARS.test(input)) throw invalid('A URL may not contain whitespace or control characters.');
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw invalid('The URL is not a valid absolute URL.');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw invalid('Only absolute http and https URLs can be shortened.');
  }
  if (url.username !== '' || url.password !== '') {
    throw invalid('A URL may not carry credentials (user:password@host).');
  }
  const host = url.hostname.toLowerCase();
  if (host === '') throw invalid('The URL has no host.');
  const bareHost = host.endsWith('.') ? host.slice(0, -1) : host;
  if (policy.ownHosts.has(bareHost)) {
    throw invalid('A link may not point at this shortener itself (it would redirect in a loop).');
  }
  for (const denied of policy.denyHosts) {
    if (bareHost === denied || bareHost.endsWith(`.${denied}`)) {
      throw invalid(`Links to ${denied} are not allowed here.`);
    }
  }
  const href = url.href;
  if (href.length > MAX_URL_LENGTH) throw invalid(`A URL may be at most ${MAX_URL_LENGTH} characters.`);
  return href;
}

/** Normalizes a configured host name the same way URLs are (IDN → punycode, lower-case). */
export function normalizeHostName(host: string): string {
  try {
    return new URL(`http://${host}/`).hostname.toLowerCase();
  } catch {
    return host.toLowerCase();
  }
}

/**
 * Merges the redirect request's raw query into the target, before any #fragment.
 * String work only: the stored URL is already normalized and must come out byte-identical.
 */
export function mergeQuery(target: string, rawQuery: string): string {
  if (rawQuery === '') return target;
  const hashAt = target.indexOf('#');
  const base = hashAt === -1 ? target : target.slice(0, hashAt);
  const fragment = hashAt === -1 ? '' : target.slice(hashAt);
  const qAt = base.indexOf('?');
  let joined: string;
  if (qAt === -1) joined = `${base}?${rawQuery}`;
  else if (qAt === base.length - 1) joined = `${base}${rawQuery}`;
  else joined = `${base}&${rawQuery}`;
  return joined + fragment;
}
