// Shlink, through its REST API v3 (header X-Api-Key): short URLs page by page, oldest first, each
// with its redirect rules and its visits; then the orphan visits. Its default domain (null in its
// answers) is Hop's default domain.
import type { OrphanType } from '../storage/ports.ts';
import { mapLimit } from './concurrency.ts';
import { SourceHttp } from './http.ts';
import { mapRules, type ShlinkRule } from './shlink-rules.ts';
import {
  type ImportSource,
  SourceError,
  type SourceLink,
  type SourceOrphan,
  type SourcePage,
  type SourceVisit,
  sourceDate,
} from './source.ts';

const PAGE_SIZE = 100;
const VISITS_PAGE_SIZE = 1_000;
/** No listing is read past this many pages, whatever the source says. */
const MAX_PAGES = 100_000;
const CONCURRENCY = 4;

interface Pagination {
  readonly currentPage?: number;
  readonly pagesCount?: number;
  readonly totalItems?: number;
}

interface ShlinkShortUrl {
  readonly shortCode: string;
  readonly shortUrl?: string;
  readonly longUrl: string;
  readonly dateCreated?: string;
  readonly tags?: string[];
  readonly meta?: { validSince?: string | null; validUntil?: string | null; maxVisits?: number | null };
  readonly domain?: string | null;
  readonly title?: string | null;
  readonly crawlable?: boolean;
  readonly forwardQuery?: boolean;
  readonly visitsSummary?: { total?: number };
  readonly hasRedirectRules?: boolean;
  /** Shlink 3.5 to 3.7: a long URL per device, which 4.0 turned into rules. */
  readonly deviceLongUrls?: Record<string, string | null>;
}

interface ShlinkVisit {
  readonly referer?: string | null;
  readonly date: string;
  readonly userAgent?: string | null;
  readonly visitLocation?: {
    countryCode?: string | null;
    regionName?: string | null;
    cityName?: string | null;
  } | null;
  readonly potentialBot?: boolean;
  readonly visitedUrl?: string | null;
  readonly type?: string;
}

const ORPHAN_TYPES: Record<string, OrphanType> = {
  base_url: 'root',
  invalid_short_url: 'unknown_code',
  regular_404: 'other',
};

export function shlinkSource(opts: {
  url: string;
  key: string;
  onRetry?: (m: string) => void;
}): ImportSource {
  const base = new URL(opts.url);
  const http = new SourceHttp(base, {
    name: 'shlink',
    headers: { 'X-Api-Key': opts.key },
    authHint: 'check --key (a Shlink API key)',
    ...(opts.onRetry === undefined ? {} : { onRetry: opts.onRetry }),
  });
  const origin = base.href.replace(/\/+$/, '');

  /** Every page of a paginated Shlink list, read in order. */
  async function* paged<T>(
    path: string,
    key: string,
    query: Record<string, string | number | undefined>,
  ): AsyncIterable<T[]> {
    for (let page = 1; page <= MAX_PAGES; page++) {
      const res = await http.getJson<Record<string, { data?: T[]; pagination?: Pagination }>>(
        http.url(path, { ...query, page }),
      );
      const list = res?.[key];
      if (!Array.isArray(list?.data))
        throw new SourceError(`shlink: ${path} did not answer a "${key}" list.`);
      if (list.data.length === 0) return;
      yield list.data;
      if (page >= (list.pagination?.pagesCount ?? page)) return;
    }
  }

  const toVisit = (v: ShlinkVisit): SourceVisit | null => {
    const at = sourceDate(v.date);
    if (at === null) return null;
    const loc = v.visitLocation ?? null;
    return {
      at: at.getTime(),
      referer: v.referer || null,
      userAgent: v.userAgent || null,
      country: loc?.countryCode ?? null,
      bot: v.potentialBot === true,
      place: `${loc?.regionName ?? ''}\u0000${loc?.cityName ?? ''}`,
    };
  };

  async function rulesOf(s: ShlinkShortUrl): Promise<ShlinkRule[]> {
    const rules: ShlinkRule[] = [];
    // Shlink 3.x: device long URLs, in the order 4.0's migration gave them as rules.
    for (const device of ['android', 'ios', 'desktop']) {
      const url = s.deviceLongUrls?.[device];
      if (typeof url === 'string' && url !== '')
        rules.push({
          longUrl: url,
          priority: rules.length + 1,
          conditions: [{ type: 'device', matchKey: null, matchValue: device }],
        });
    }
    if (s.hasRedirectRules === false) return rules;
    const res = await http.getJsonOrNull<{ redirectRules?: ShlinkRule[] }>(
      http.url(`rest/v3/short-urls/${encodeURIComponent(s.shortCode)}/redirect-rules`, {
        domain: s.domain ?? undefined,
      }),
    );
    return res?.redirectRules?.length ? res.redirectRules : rules;
  }

  async function toLink(s: ShlinkShortUrl): Promise<SourceLink> {
    const { rules, notes } = mapRules(await rulesOf(s));
    const visits = async function* () {
      for await (const page of paged<ShlinkVisit>(
        `rest/v3/short-urls/${encodeURIComponent(s.shortCode)}/visits`,
        'visits',
        { itemsPerPage: VISITS_PAGE_SIZE, domain: s.domain ?? undefined },
      ))
        yield page.map(toVisit).filter((v): v is SourceVisit => v !== null);
    };
    return {
      ref: s.shortUrl?.replace(/^https?:\/\//, '') ?? `${s.domain ?? ''}/${s.shortCode}`,
      code: s.shortCode,
      domain: s.domain ?? null,
      url: s.longUrl,
      title: s.title ?? null,
      tags: s.tags ?? [],
      createdAt: sourceDate(s.dateCreated),
      validSince: sourceDate(s.meta?.validSince),
      expiresAt: sourceDate(s.meta?.validUntil),
      maxClicks: s.meta?.maxVisits ?? null,
      usedClicks: s.visitsSummary?.total ?? 0,
      ...(s.crawlable === undefined ? {} : { crawlable: s.crawlable }),
      ...(s.forwardQuery === undefined ? {} : { forwardQuery: s.forwardQuery }),
      rules,
      notes,
      ...(s.visitsSummary?.total === 0 ? {} : { visits }),
    };
  }

  return {
    name: 'shlink',
    origin,
    async *pages(cursor, extra): AsyncIterable<SourcePage> {
      const at = cursor as { page?: unknown; orphans?: unknown } | null;
      let page = typeof at?.page === 'number' && at.page >= 1 ? at.page : 1;
      if (at?.orphans !== true) {
        for (; page <= MAX_PAGES; page++) {
          const res = await http.getJson<{
            shortUrls?: { data?: ShlinkShortUrl[]; pagination?: Pagination };
          }>(http.url('rest/v3/short-urls', { page, itemsPerPage: PAGE_SIZE, orderBy: 'dateCreated-ASC' }));
          const list = res?.shortUrls;
          if (!Array.isArray(list?.data)) throw new SourceError('shlink: the short URL list has no "data".');
          const pages = list.pagination?.pagesCount ?? page;
          for (const s of list.data)
            if ((s.domain ?? null) === null && s.shortUrl !== undefined && extra.defaultHost === undefined) {
              try {
                extra.defaultHost = new URL(s.shortUrl).hostname;
              } catch {}
            }
          const links = await mapLimit(list.data, CONCURRENCY, toLink);
          const last = list.data.length === 0 || page >= pages;
          yield {
            cursor: last ? { orphans: true } : { page: page + 1 },
            label: `page ${page} of ${pages}`,
            links,
            total: list.pagination?.totalItems ?? null,
          };
          if (last) break;
        }
      }
      // Its default domain: the host of its links on no domain, else the host the API answers on.
      const defaultHost = extra.defaultHost ?? base.hostname;
      const orphans = async function* () {
        for await (const list of paged<ShlinkVisit>('rest/v3/visits/orphan', 'visits', {
          itemsPerPage: VISITS_PAGE_SIZE,
        })) {
          const out: SourceOrphan[] = [];
          for (const v of list) {
            const at = sourceDate(v.date);
            if (at === null) continue;
            let host: string | null = null;
            let path = '';
            try {
              const u = new URL(v.visitedUrl ?? '');
              host = u.hostname === defaultHost ? null : u.hostname;
              path = u.pathname;
            } catch {}
            out.push({
              at: at.getTime(),
              host,
              path,
              type: ORPHAN_TYPES[v.type ?? ''] ?? 'other',
              bot: v.potentialBot === true,
              userAgent: v.userAgent || null,
              referer: v.referer || null,
            });
          }
          yield out;
        }
      };
      yield { cursor: { done: true, orphans: true }, label: 'orphan visits', links: [], orphans };
    },
  };
}
