// Shlink's visit lists: a short URL's, a tag's, a domain's, every link's (non-orphan) and the
// orphan visits, newest first and paginated; and deleting a short URL's or the orphan visits.
// Read from the per-link visit rows (VisitStore), so a page of one link's visits never reads
// another link's.
import type { FastifyInstance } from 'fastify';
import type { Deps } from '../deps.ts';
import type { ClickEvent } from '../domain/clicks.ts';
import { linkKey, splitLinkKey } from '../domain/domains.ts';
import type { RedirectRecord } from '../domain/link.ts';
import type { VisitQuery } from '../domain/visits.ts';
import type { OrphanType, OrphanVisit } from '../storage/ports.ts';
import { parseVisitsQuery, type ShlinkVisitsQuery } from './shlink-input.ts';
import { domainNotFound, invalidData, tagNotFound } from './shlink-problem.ts';
import { atom, pagination } from './shlink-view.ts';
import { findShortUrl, linkSearch, shlinkDomain } from './short-url-routes.ts';

type Query = Record<string, unknown> & { domain?: string };

const countryNames = new Intl.DisplayNames(['en'], { type: 'region' });

/** Shlink's location of a visit: Hop keeps the country only. One object per country, made once. */
const locations = new Map<string, ReturnType<typeof locationOf>>();
function location(country: string | null) {
  if (country === null) return null;
  let l = locations.get(country);
  if (l === undefined) {
    l = locationOf(country);
    if (locations.size < 1_000) locations.set(country, l);
  }
  return l;
}

function locationOf(country: string) {
  let name: string | null = null;
  try {
    name = countryNames.of(country) ?? null;
  } catch {
    name = null;
  }
  return {
    countryCode: country,
    countryName: name,
    regionName: null,
    cityName: null,
    latitude: null,
    longitude: null,
    timezone: null,
    isEmpty: false,
  };
}

// Hop's orphan types and Shlink's.
const SHLINK_ORPHAN_TYPE: Record<OrphanType, string> = {
  root: 'base_url',
  unknown_code: 'invalid_short_url',
  other: 'regular_404',
};
const HOP_ORPHAN_TYPE = new Map(Object.entries(SHLINK_ORPHAN_TYPE).map(([hop, shlink]) => [shlink, hop]));

export function registerVisitRoutes(app: FastifyInstance, deps: Deps): void {
  /**
   * A visit as Shlink shows it. Where it was sent is today's target of the rule it matched (Hop
   * records the rule, not the URL): the same unless the link was edited since.
   */
  async function views(visits: readonly ClickEvent[]) {
    const links = new Map<string, RedirectRecord | null>();
    for (const e of visits)
      if (!links.has(e.code)) links.set(e.code, await Promise.resolve(deps.resolver.resolve(e.code)));
    return visits.map((e) => {
      const { domain, code } = splitLinkKey(e.code);
      const link = links.get(e.code) ?? null;
      const rule = e.rule !== undefined && e.rule > 0 ? link?.rules?.[e.rule - 1] : undefined;
      return {
        referer: e.referer ?? '',
        date: atom(new Date(e.at)),
        userAgent: e.userAgent ?? '',
        visitLocation: location(e.country),
        potentialBot: e.bot,
        visitedUrl: deps.domains.shortUrl(domain, code),
        redirectUrl: link === null ? null : (rule?.url ?? link.url),
      };
    });
  }

  async function page(q: ShlinkVisitsQuery, which: Pick<VisitQuery, 'keys' | 'domain'>) {
    const offset = (q.page - 1) * q.perPage;
    const { visits, total } = await deps.store.visits({
      ...which,
      from: q.from,
      to: q.to,
      includeBots: !q.excludeBots,
      offset,
      limit: q.perPage,
    });
    return {
      visits: { data: await views(visits), pagination: pagination(q.page, q.perPage, total, visits.length) },
    };
  }

  app.get<{ Params: { shortCode: string }; Querystring: Query }>(
    '/short-urls/:shortCode/visits',
    async (req) => {
      const q = parseVisitsQuery(req.query);
      const link = await findShortUrl(deps, req.params.shortCode, req.query.domain);
      return page(q, { keys: [linkKey(link.domain, link.code)] });
    },
  );

  app.delete<{ Params: { shortCode: string }; Querystring: Query }>(
    '/short-urls/:shortCode/visits',
    async (req) => {
      const link = await findShortUrl(deps, req.params.shortCode, req.query.domain);
      const key = linkKey(link.domain, link.code);
      // Clicks held between folds are summed and listed first, so that none outlives the delete.
      await (deps.clicks.settle?.() ?? deps.clicks.flush());
      const deletedVisits = await deps.store.deleteVisits([key]);
      // The cached record carries no counts, but a maxClicks link's used count is not a visit: kept.
      await deps.resolver.invalidate(key);
      return { deletedVisits };
    },
  );

  app.get<{ Params: { tag: string }; Querystring: Query }>('/tags/:tag/visits', async (req) => {
    const q = parseVisitsQuery(req.query);
    const tag = req.params.tag;
    if (!(await deps.store.tagStats()).some((t) => t.tag === tag)) throw tagNotFound(tag);
    const { items } = await deps.store.searchLinks(linkSearch({ tags: [tag] }));
    return page(q, { keys: items.map((l) => linkKey(l.domain, l.code)) });
  });

  app.get<{ Params: { domain: string }; Querystring: Query }>('/domains/:domain/visits', async (req) => {
    const q = parseVisitsQuery(req.query);
    let domain: string;
    try {
      domain = await shlinkDomain(deps, req.params.domain, false);
    } catch {
      throw domainNotFound(req.params.domain);
    }
    return page(q, { keys: null, domain });
  });

  app.get<{ Querystring: Query }>('/visits/non-orphan', async (req) => {
    const q = parseVisitsQuery(req.query);
    return page(q, { keys: null });
  });

  app.get<{ Querystring: Query & { type?: string } }>('/visits/orphan', async (req) => {
    const q = parseVisitsQuery(req.query);
    const type = req.query.type;
    const hopType = type === undefined || type === '' ? null : HOP_ORPHAN_TYPE.get(type);
    if (hopType === undefined)
      throw invalidData('"type" must be base_url, invalid_short_url or regular_404.', 'type');
    // An unknown domain has no orphan visits (not every domain's).
    const domain =
      req.query.domain === undefined
        ? null
        : await shlinkDomain(deps, req.query.domain, false).catch(() => undefined);
    await deps.orphans.flush();
    const { visits, total } =
      domain === undefined
        ? { visits: [], total: 0 }
        : await deps.store.orphanVisits({
            from: q.from,
            to: q.to,
            domain,
            type: hopType as OrphanType | null,
            includeBots: !q.excludeBots,
            offset: (q.page - 1) * q.perPage,
            limit: q.perPage,
          });
    return {
      visits: {
        data: visits.map((v) => orphanView(v)),
        pagination: pagination(q.page, q.perPage, total, visits.length),
      },
    };
  });

  app.delete('/visits/orphan', async () => {
    await deps.orphans.flush();
    return { deletedVisits: await deps.store.deleteOrphanVisits() };
  });

  function orphanView(v: OrphanVisit) {
    const base = deps.domains.shortUrl(v.domain, '').replace(/\/$/, '');
    return {
      referer: v.referer ?? '',
      date: atom(new Date(v.at)),
      userAgent: v.userAgent ?? '',
      visitLocation: null,
      potentialBot: v.bot,
      visitedUrl: `${base}${v.path}`,
      redirectUrl: null,
      type: SHLINK_ORPHAN_TYPE[v.type],
    };
  }
}
