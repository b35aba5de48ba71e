// Other shorteners' APIs for import tests: real HTTP servers on 127.0.0.1 answering with each
// peer's documented response shapes and pagination, recording every request, and able to answer
// 429 with Retry-After once (to prove the retry) or fail pages on demand (to prove resuming).
import { createServer, type Server } from 'node:http';

export interface PeerRequest {
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: Record<string, string | string[] | undefined>;
  /** performance.now() when it arrived. */
  readonly at: number;
  status: number;
}

export interface PeerAnswer {
  readonly status?: number;
  readonly headers?: Record<string, string>;
  readonly body?: unknown;
}

export interface Peer {
  readonly url: string;
  readonly requests: PeerRequest[];
  /** Answers the next request with 429 and `Retry-After: seconds`. */
  throttleNext(seconds: number): void;
  /** Answers requests that `when` picks with 503 (Retry-After: 0) while it is set. */
  failWhen: ((r: PeerRequest) => boolean) | null;
  close(): Promise<void>;
}

export async function peerServer(route: (r: PeerRequest) => PeerAnswer): Promise<Peer> {
  const requests: PeerRequest[] = [];
  let throttle: number | null = null;
  const peer = { failWhen: null } as Peer & { failWhen: ((r: PeerRequest) => boolean) | null };
  const server: Server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://peer');
    const r: PeerRequest = {
      path: decodeURIComponent(u.pathname),
      query: u.searchParams,
      headers: req.headers,
      at: performance.now(),
      status: 0,
    };
    requests.push(r);
    let a: PeerAnswer;
    if (throttle !== null) {
      a = { status: 429, headers: { 'retry-after': String(throttle) }, body: { error: 'slow down' } };
      throttle = null;
    } else if (peer.failWhen?.(r))
      a = { status: 503, headers: { 'retry-after': '0' }, body: { error: 'down' } };
    else a = route(r);
    r.status = a.status ?? 200;
    res.writeHead(r.status, { 'content-type': 'application/json', ...(a.headers ?? {}) });
    res.end(JSON.stringify(a.body ?? {}));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  return Object.assign(peer, {
    url: `http://127.0.0.1:${port}`,
    requests,
    throttleNext(seconds: number) {
      throttle = seconds;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}

/** Items of a 1-based page. */
function pageOf<T>(items: readonly T[], page: number, size: number): T[] {
  return items.slice((page - 1) * size, page * size);
}

const pageParam = (q: URLSearchParams) => Math.max(1, Number(q.get('page') ?? 1) || 1);

// ---- Shlink (REST API v3) ------------------------------------------------------------------------

export interface ShlinkFixture {
  readonly shortCode: string;
  readonly domain: string | null;
  readonly longUrl: string;
  readonly dateCreated: string;
  readonly tags?: string[];
  readonly title?: string | null;
  readonly validSince?: string | null;
  readonly validUntil?: string | null;
  readonly maxVisits?: number | null;
  readonly crawlable?: boolean;
  readonly forwardQuery?: boolean;
  readonly rules?: { longUrl: string; priority: number; conditions: object[] }[];
  readonly visits?: object[];
}

export interface ShlinkData {
  readonly defaultHost: string;
  readonly shortUrls: ShlinkFixture[];
  readonly orphans: object[];
  /** The server's own page sizes (it ignores itemsPerPage, as a capped server would). */
  readonly pageSize: number;
  readonly visitsPageSize: number;
}

function paginated(key: string, items: readonly unknown[], page: number, size: number) {
  return {
    [key]: {
      data: pageOf(items, page, size),
      pagination: {
        currentPage: page,
        pagesCount: Math.max(1, Math.ceil(items.length / size)),
        itemsPerPage: size,
        itemsInCurrentPage: pageOf(items, page, size).length,
        totalItems: items.length,
      },
    },
  };
}

export function shlinkRoutes(data: ShlinkData, apiKey: string) {
  const find = (code: string, domain: string | null) =>
    data.shortUrls.find((s) => s.shortCode === code && s.domain === domain);
  return (r: PeerRequest): PeerAnswer => {
    if (r.headers['x-api-key'] !== apiKey)
      return { status: 401, body: { type: 'INVALID_API_KEY', title: 'Invalid API key', status: 401 } };
    const page = pageParam(r.query);
    if (r.path === '/rest/v3/short-urls')
      return {
        body: paginated(
          'shortUrls',
          data.shortUrls.map((s) => ({
            shortCode: s.shortCode,
            shortUrl: `https://${s.domain ?? data.defaultHost}/${s.shortCode}`,
            longUrl: s.longUrl,
            dateCreated: s.dateCreated,
            tags: s.tags ?? [],
            meta: {
              validSince: s.validSince ?? null,
              validUntil: s.validUntil ?? null,
              maxVisits: s.maxVisits ?? null,
            },
            domain: s.domain,
            title: s.title ?? null,
            crawlable: s.crawlable ?? false,
            forwardQuery: s.forwardQuery ?? true,
            hasRedirectRules: (s.rules ?? []).length > 0,
            visitsSummary: {
              total: (s.visits ?? []).length,
              nonBots: (s.visits ?? []).filter((v) => !(v as { potentialBot: boolean }).potentialBot).length,
              bots: (s.visits ?? []).filter((v) => (v as { potentialBot: boolean }).potentialBot).length,
            },
          })),
          page,
          data.pageSize,
        ),
      };
    if (r.path === '/rest/v3/visits/orphan')
      return { body: paginated('visits', data.orphans, page, data.visitsPageSize) };
    const m = /^\/rest\/v3\/short-urls\/([^/]+)\/(redirect-rules|visits)$/.exec(r.path);
    const s = m === null ? undefined : find(m[1]!, r.query.get('domain') || null);
    if (m === null || s === undefined)
      return { status: 404, body: { type: 'INVALID_SHORTCODE', title: 'Short URL not found', status: 404 } };
    if (m[2] === 'redirect-rules')
      return { body: { defaultLongUrl: s.longUrl, redirectRules: s.rules ?? [] } };
    return { body: paginated('visits', s.visits ?? [], page, data.visitsPageSize) };
  };
}

export function shlinkVisit(
  at: Date,
  o: {
    ua?: string;
    referer?: string;
    country?: string | null;
    city?: string;
    bot?: boolean;
    url?: string;
  } = {},
) {
  return {
    referer: o.referer ?? '',
    date: at.toISOString().replace('.000Z', '+00:00'),
    userAgent:
      o.ua ?? 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36',
    visitLocation:
      o.country === null
        ? null
        : {
            countryCode: o.country ?? 'FR',
            countryName: 'Somewhere',
            regionName: 'Region',
            cityName: o.city ?? 'City',
            latitude: 0,
            longitude: 0,
            timezone: 'UTC',
            isEmpty: false,
          },
    potentialBot: o.bot ?? false,
    visitedUrl: o.url ?? '',
    redirectUrl: null,
  };
}

// ---- Kutt (API v2) ------------------------------------------------------------------------------

export interface KuttFixture {
  readonly address: string;
  readonly target: string;
  readonly domain?: string | null;
  readonly description?: string | null;
  readonly expire_in?: string | null;
  readonly password?: boolean;
  readonly banned?: boolean;
  readonly visit_count: number;
  readonly created_at: string;
}

export function kuttRoutes(links: readonly KuttFixture[], apiKey: string, cap: number) {
  return (r: PeerRequest): PeerAnswer => {
    if (r.headers['x-api-key'] !== apiKey) return { status: 401, body: { error: 'Unauthorized' } };
    if (r.path !== '/api/v2/links') return { status: 404, body: { error: 'Not found' } };
    const skip = Number(r.query.get('skip') ?? 0);
    const limit = Math.min(cap, Number(r.query.get('limit') ?? 10));
    return {
      body: {
        data: links.slice(skip, skip + limit).map((l, i) => ({
          id: `00000000-0000-4000-8000-${String(skip + i).padStart(12, '0')}`,
          address: l.address,
          banned: l.banned ?? false,
          created_at: l.created_at,
          updated_at: l.created_at,
          description: l.description ?? null,
          domain: l.domain ?? null,
          expire_in: l.expire_in ?? null,
          link: `https://${l.domain ?? 'kutt.example'}/${l.address}`,
          password: l.password ?? false,
          target: l.target,
          visit_count: l.visit_count,
        })),
        total: links.length,
        skip,
        limit,
      },
    };
  };
}

// ---- YOURLS (yourls-api.php, action=stats) -------------------------------------------------------

export interface YourlsFixture {
  readonly keyword: string;
  readonly url: string;
  readonly title: string;
  readonly timestamp: string;
  readonly ip: string;
  readonly clicks: number;
}

export function yourlsRoutes(rows: readonly YourlsFixture[], signature: string, cap: number) {
  return (r: PeerRequest): PeerAnswer => {
    if (r.path !== '/yourls-api.php') return { status: 404, body: {} };
    if (r.query.get('signature') !== signature)
      return { status: 403, body: { message: 'Please log in', errorCode: 403 } };
    if (r.query.get('action') !== 'stats' || r.query.get('format') !== 'json')
      return { status: 400, body: { message: 'Unknown or missing action', errorCode: 400 } };
    // filter=last: newest first.
    const sorted = [...rows].sort((a, b) => b.timestamp.localeCompare(a.timestamp));
    const start = Number(r.query.get('start') ?? 0);
    const limit = Math.min(cap, Number(r.query.get('limit') ?? 10));
    const links: Record<string, object> = {};
    sorted.slice(start, start + limit).forEach((l, i) => {
      links[`link_${i + 1}`] = {
        shorturl: `https://y.example/${l.keyword}`,
        url: l.url,
        title: l.title,
        timestamp: l.timestamp,
        ip: l.ip,
        clicks: String(l.clicks),
      };
    });
    return {
      body: {
        links,
        stats: {
          total_links: String(rows.length),
          total_clicks: String(rows.reduce((n, l) => n + l.clicks, 0)),
        },
        statusCode: 200,
        message: 'success',
      },
    };
  };
}

// ---- Bitly (API v4) -----------------------------------------------------------------------------

export interface BitlyFixture {
  readonly id: string;
  readonly long_url: string;
  readonly title?: string | null;
  readonly tags?: string[];
  readonly created_at: string;
  readonly custom_bitlinks?: string[];
}

/**
 * Group "Ba1" pages by search_after (size 2); group "Bb2" by page numbers named only in `next`
 * (size 2), which points at the real Bitly host: the importer must ask its own base instead.
 */
export function bitlyRoutes(groups: Record<string, readonly BitlyFixture[]>, token: string) {
  const size = 2;
  return (r: PeerRequest): PeerAnswer => {
    if (r.headers.authorization !== `Bearer ${token}`)
      return { status: 403, body: { message: 'FORBIDDEN', description: 'You are currently forbidden' } };
    if (r.path === '/v4/groups')
      return { body: { groups: Object.keys(groups).map((guid) => ({ guid, name: guid, is_active: true })) } };
    const m = /^\/v4\/groups\/([^/]+)\/bitlinks$/.exec(r.path);
    const links = m === null ? undefined : groups[m[1]!];
    if (m === null || links === undefined) return { status: 404, body: { message: 'NOT_FOUND' } };
    const guid = m[1]!;
    const full = (l: BitlyFixture) => ({
      ...l,
      link: `https://${l.id}`,
      archived: false,
      references: { group: `https://api-ssl.bitly.com/v4/groups/${guid}` },
    });
    if (guid === 'Ba1') {
      const after = r.query.get('search_after');
      const from = after === null ? 0 : Number(after);
      const page = links.slice(from, from + size);
      const more = from + size < links.length;
      return {
        body: {
          links: page.map(full),
          pagination: {
            prev: '',
            next: more
              ? `https://api-ssl.bitly.com/v4/groups/${guid}/bitlinks?search_after=${from + size}&size=${size}`
              : '',
            size,
            page: 0,
            search_after: more ? String(from + size) : '',
          },
        },
      };
    }
    const page = pageParam(r.query);
    const more = page * size < links.length;
    return {
      body: {
        links: pageOf(links, page, size).map(full),
        pagination: {
          prev: '',
          next: more
            ? `https://api-ssl.bitly.com/v4/groups/${guid}/bitlinks?page=${page + 1}&size=${size}`
            : '',
          size,
          page,
          total: links.length,
        },
      },
    };
  };
}
