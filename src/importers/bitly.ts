// Bitly, through its API v4 (`Authorization: Bearer TOKEN`): every group's bitlinks, page by page
// (search_after, or the page its `next` names, asked of the same API base). A custom back-half is
// imported as another link to the same place. Links on Bitly's own domains (bit.ly, j.mp,
// bitly.com) land on Hop's default domain; a branded domain is registered as it is met.
import { SourceHttp } from './http.ts';
import { type ImportSource, SourceError, type SourceLink, type SourcePage, sourceDate } from './source.ts';

export const BITLY_API = 'https://api-ssl.bitly.com';
const PAGE_SIZE = 100;
const MAX_PAGES = 100_000;
const BITLY_DOMAINS = new Set(['bit.ly', 'j.mp', 'bitly.com']);

interface Bitlink {
  readonly id: string;
  readonly link?: string;
  readonly long_url: string;
  readonly title?: string | null;
  readonly tags?: string[];
  readonly created_at?: string;
  readonly custom_bitlinks?: string[];
}

interface BitlinksPage {
  readonly links?: Bitlink[];
  readonly pagination?: { next?: string; search_after?: string; total?: number };
}

/** `bit.ly/abc` or `https://go.example/abc` → its domain (null: Bitly's own) and code. */
function splitBitlink(s: string): { domain: string | null; code: string } | null {
  try {
    const u = new URL(/^https?:\/\//i.test(s) ? s : `https://${s}`);
    const code = decodeURIComponent(u.pathname.replace(/^\/+|\/+$/g, ''));
    if (code === '') return null;
    const host = u.hostname.toLowerCase();
    return { domain: BITLY_DOMAINS.has(host) ? null : host, code };
  } catch {
    return null;
  }
}

export function bitlySource(opts: {
  token: string;
  url?: string;
  onRetry?: (m: string) => void;
}): ImportSource {
  const base = new URL(opts.url ?? BITLY_API);
  const http = new SourceHttp(base, {
    name: 'bitly',
    headers: { authorization: `Bearer ${opts.token}` },
    authHint: 'check --token (a Bitly access token)',
    ...(opts.onRetry === undefined ? {} : { onRetry: opts.onRetry }),
  });

  const toLinks = (b: Bitlink, failures: { ref: string; reason: string }[]): SourceLink[] => {
    const main = splitBitlink(b.id);
    if (main === null) {
      failures.push({ ref: b.id, reason: 'its id is not a short link' });
      return [];
    }
    const fields = {
      url: b.long_url,
      title: b.title ?? null,
      tags: b.tags ?? [],
      createdAt: sourceDate(b.created_at),
    };
    const links: SourceLink[] = [{ ref: b.id, ...main, ...fields }];
    for (const custom of b.custom_bitlinks ?? []) {
      const alias = splitBitlink(custom);
      if (alias === null) failures.push({ ref: `${b.id} (custom ${custom})`, reason: 'not a short link' });
      else if (alias.code !== main.code || alias.domain !== main.domain)
        links.push({
          ref: `${custom.replace(/^https?:\/\//, '')} (custom back-half of ${b.id})`,
          ...alias,
          ...fields,
        });
    }
    return links;
  };

  return {
    name: 'bitly',
    origin: base.href.replace(/\/+$/, ''),
    async *pages(cursor): AsyncIterable<SourcePage> {
      const groups = await http.getJson<{ groups?: { guid: string }[] }>(http.url('v4/groups'));
      if (!Array.isArray(groups?.groups))
        throw new SourceError('bitly: /v4/groups did not answer a "groups" list.');
      const at = cursor as { group?: unknown; after?: unknown; page?: unknown } | null;
      const first = typeof at?.group === 'number' ? at.group : 0;
      for (let g = first; g < groups.groups.length; g++) {
        const guid = groups.groups[g]!.guid;
        let after: string | null = g === first && typeof at?.after === 'string' ? at.after : null;
        let page: number | null = g === first && typeof at?.page === 'number' ? at.page : null;
        for (let n = 1; n <= MAX_PAGES; n++) {
          const res = await http.getJson<BitlinksPage>(
            http.url(`v4/groups/${encodeURIComponent(guid)}/bitlinks`, {
              size: PAGE_SIZE,
              search_after: after,
              page,
            }),
          );
          if (!Array.isArray(res?.links))
            throw new SourceError('bitly: a bitlinks page has no "links" list.');
          const failures: { ref: string; reason: string }[] = [];
          const links = res.links.flatMap((b) => toLinks(b, failures));
          // The next page: its search_after, or what its `next` link asks (never fetched as it is).
          let next: { after: string | null; page: number | null } | null = null;
          if (res.pagination?.search_after) next = { after: res.pagination.search_after, page: null };
          else if (res.pagination?.next) {
            const q = new URL(res.pagination.next, base).searchParams;
            const p = Number(q.get('page'));
            if (q.get('search_after')) next = { after: q.get('search_after'), page: null };
            else if (Number.isInteger(p) && p > (page ?? 1)) next = { after: null, page: p };
          }
          if (res.links.length === 0) next = null;
          const done = next === null;
          yield {
            cursor: done ? { group: g + 1 } : { group: g, ...next },
            label: `group ${g + 1} of ${groups.groups.length}, page ${n}`,
            links,
            failures,
            total: groups.groups.length === 1 ? (res.pagination?.total ?? null) : null,
          };
          if (done) break;
          after = next!.after;
          page = next!.page;
        }
      }
    },
  };
}
