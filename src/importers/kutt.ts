// Kutt, through its API v2 (header X-API-KEY): links page by page with skip/limit, their visit
// counts carried as click totals. Kutt lists newest first, so a link made during the import shifts
// the pages: the next page then repeats a link (found unchanged), it never skips one.
import { SourceHttp } from './http.ts';
import { type ImportSource, SourceError, type SourceLink, type SourcePage, sourceDate } from './source.ts';

const PAGE_SIZE = 50;
const MAX_PAGES = 100_000;

interface KuttLink {
  readonly id?: string;
  readonly address: string;
  readonly banned?: boolean;
  readonly created_at?: string;
  readonly description?: string | null;
  readonly title?: string | null;
  readonly domain?: string | null;
  readonly expire_in?: string | null;
  readonly link?: string;
  readonly password?: boolean;
  readonly target: string;
  readonly visit_count?: number;
}

export function kuttSource(opts: { url: string; key: string; onRetry?: (m: string) => void }): ImportSource {
  const base = new URL(opts.url);
  const http = new SourceHttp(base, {
    name: 'kutt',
    headers: { 'X-API-KEY': opts.key },
    authHint: 'check --key (a Kutt API key)',
    ...(opts.onRetry === undefined ? {} : { onRetry: opts.onRetry }),
  });
  return {
    name: 'kutt',
    origin: base.href.replace(/\/+$/, ''),
    async *pages(cursor): AsyncIterable<SourcePage> {
      const at = cursor as { skip?: unknown } | null;
      let skip = typeof at?.skip === 'number' && at.skip >= 0 ? at.skip : 0;
      for (let n = 0; n < MAX_PAGES; n++) {
        const res = await http.getJson<{ data?: KuttLink[]; total?: number }>(
          http.url('api/v2/links', { skip, limit: PAGE_SIZE }),
        );
        if (!Array.isArray(res?.data))
          throw new SourceError('kutt: /api/v2/links did not answer a "data" list.');
        const total = typeof res.total === 'number' ? res.total : null;
        const links: SourceLink[] = [];
        const failures: { ref: string; reason: string }[] = [];
        for (const k of res.data) {
          const ref = k.link?.replace(/^https?:\/\//, '') ?? `${k.domain ?? ''}/${k.address}`;
          // Kutt's API says only that there is a password, never what it is.
          if (k.password === true) {
            failures.push({ ref, reason: 'it has a password in Kutt, which its API does not give out' });
            continue;
          }
          links.push({
            ref,
            code: k.address,
            domain: k.domain ?? null,
            url: k.target,
            title: k.title ?? k.description ?? null,
            createdAt: sourceDate(k.created_at),
            expiresAt: sourceDate(k.expire_in),
            disabled: k.banned === true,
            notes: k.banned === true ? ['banned in Kutt: imported disabled'] : [],
            clicks: Math.max(0, Math.trunc(k.visit_count ?? 0)),
          });
        }
        const from = skip;
        skip += res.data.length;
        const last = res.data.length === 0 || (total !== null && skip >= total);
        yield {
          cursor: { skip },
          label: `links ${from + 1}-${skip}${total === null ? '' : ` of ${total}`}`,
          links,
          failures,
          total,
        };
        if (last) return;
      }
    },
  };
}
