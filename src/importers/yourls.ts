// YOURLS, through its API (`--url https://y.example/yourls-api.php --signature SIG`): action=stats
// with filter=last (newest first) and start/limit paging, each link's clicks carried as a click
// total. Newest first means a link made during the import shifts the pages: the next page repeats
// a link (found unchanged), it never skips one. Or a file (yourls-files.ts). YOURLS has one domain:
// its links land on Hop's default domain.
import { SourceHttp } from './http.ts';
import { type ImportSource, SourceError, type SourceLink, type SourcePage, sourceDate } from './source.ts';

const PAGE_SIZE = 500;
const MAX_PAGES = 100_000;

export interface YourlsRow {
  readonly keyword: string;
  readonly url: string;
  readonly title?: string | null;
  /** `YYYY-MM-DD hh:mm:ss`, taken as UTC. */
  readonly timestamp?: string | null;
  readonly clicks?: number | string | null;
}

/** One YOURLS row as a source link; its IP column is never read. */
export function yourlsLink(r: YourlsRow, ref: string): SourceLink {
  const clicks = Number(r.clicks ?? 0);
  return {
    ref,
    code: r.keyword,
    domain: null,
    url: r.url,
    title: r.title || null,
    createdAt: sourceDate(r.timestamp),
    clicks: Number.isFinite(clicks) ? Math.max(0, Math.trunc(clicks)) : 0,
  };
}

interface StatsLink {
  readonly shorturl: string;
  readonly url: string;
  readonly title?: string | null;
  readonly timestamp?: string | null;
  readonly clicks?: number | string | null;
}

/** The keyword of a short URL: its path without the slashes. */
function keywordOf(shorturl: string): string {
  try {
    return decodeURIComponent(new URL(shorturl).pathname.replace(/^\/+|\/+$/g, ''));
  } catch {
    return shorturl.replace(/^.*\//, '');
  }
}

export function yourlsApiSource(opts: {
  url: string;
  signature: string;
  onRetry?: (m: string) => void;
}): ImportSource {
  const base = new URL(opts.url);
  const http = new SourceHttp(base, {
    name: 'yourls',
    headers: {},
    authHint: 'check --signature (the token on the Tools page of YOURLS admin)',
    ...(opts.onRetry === undefined ? {} : { onRetry: opts.onRetry }),
  });
  return {
    name: 'yourls',
    origin: `${base.origin}${base.pathname}`,
    async *pages(cursor): AsyncIterable<SourcePage> {
      const at = cursor as { start?: unknown } | null;
      let start = typeof at?.start === 'number' && at.start >= 0 ? at.start : 0;
      for (let n = 0; n < MAX_PAGES; n++) {
        const res = await http.getJson<{
          links?: Record<string, StatsLink> | StatsLink[];
          stats?: { total_links?: number | string };
          message?: string;
        }>(
          http.url(base.href, {
            action: 'stats',
            filter: 'last',
            limit: PAGE_SIZE,
            start,
            format: 'json',
            signature: opts.signature,
          }),
        );
        if (
          res === null ||
          typeof res !== 'object' ||
          (res.links !== undefined && typeof res.links !== 'object')
        )
          throw new SourceError(
            `yourls: the stats answer has no "links"${res?.message ? `: ${res.message}` : ''}.`,
          );
        const rows = Object.values(res.links ?? {});
        const total = res.stats?.total_links === undefined ? null : Number(res.stats.total_links);
        const links = rows.map((l) =>
          yourlsLink({ ...l, keyword: keywordOf(l.shorturl) }, l.shorturl.replace(/^https?:\/\//, '')),
        );
        const from = start;
        start += rows.length;
        const last = rows.length === 0 || (total !== null ? start >= total : rows.length < PAGE_SIZE);
        yield {
          cursor: { start },
          label: `links ${from + 1}-${start}${total === null ? '' : ` of ${total}`}`,
          links,
          total,
        };
        if (last) return;
      }
    },
  };
}
