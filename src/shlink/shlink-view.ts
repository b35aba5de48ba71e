// Hop's links as Shlink's short URLs, and the few shapes around them.
import { DEFAULT_DOMAIN, type Domain } from '../domain/domains.ts';
import type { LinkUrls } from '../links/link-view.ts';
import type { SearchedLink } from '../storage/ports.ts';

/** PHP's DATE_ATOM, which Shlink writes: seconds, and +00:00 for UTC. */
export const atom = (d: Date): string => `${d.toISOString().slice(0, 19)}+00:00`;
const atomOrNull = (d: Date | null) => (d === null ? null : atom(d));

export function visitsSummary(total: number, bots: number) {
  return { total, nonBots: total - bots, bots };
}

export function shortUrlView(link: SearchedLink, urls: LinkUrls, held = 0) {
  const total = Math.max(link.clicks + held, link.maxClicks === null ? 0 : link.usedClicks);
  return {
    shortCode: link.code,
    shortUrl: urls.shortUrl(link.domain, link.code),
    longUrl: link.url,
    dateCreated: atom(link.createdAt),
    tags: [...link.tags],
    meta: {
      validSince: atomOrNull(link.validSince),
      validUntil: atomOrNull(link.expiresAt),
      maxVisits: link.maxClicks,
    },
    domain: link.domain === DEFAULT_DOMAIN ? null : link.domain,
    title: link.title,
    crawlable: link.crawlable,
    forwardQuery: link.forwardQuery,
    visitsSummary: visitsSummary(total, Math.min(link.botClicks, total)),
    hasRedirectRules: link.rules !== null,
  };
}

export function domainRedirects(d: Domain) {
  return {
    baseUrlRedirect: d.rootRedirect,
    regular404Redirect: d.otherNotFoundRedirect,
    invalidShortUrlRedirect: d.notFoundRedirect,
  };
}

export function pagination(page: number, perPage: number | null, total: number, inPage: number) {
  return {
    currentPage: page,
    pagesCount: perPage === null ? (total === 0 ? 0 : 1) : Math.ceil(total / perPage),
    itemsPerPage: perPage ?? total,
    itemsInCurrentPage: inPage,
    totalItems: total,
  };
}
