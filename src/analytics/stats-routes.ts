// GET /api/v1/links/{code}/stats and GET /api/v1/stats — clicks over a window, answered from
// rollups (never by counting raw events), so a link with a long history answers as fast as a new one.
import type { FastifyInstance } from 'fastify';
import type { Deps } from '../deps.ts';
import { ALL_LINKS, type BreakdownDim, estimateVisitors } from '../domain/clicks.ts';
import { linkKey, splitLinkKey } from '../domain/domains.ts';
import { breakdownKey, fillSeries, type StatsParams, statsWindow } from '../domain/stats-window.ts';
import { AUTHENTICATED, problemResponses } from '../http/openapi.ts';
import { findLink } from '../links/find-link.ts';
import { codeParamsSchema, domainQuerySchema } from '../links/link-view.ts';
import type { OrphanType } from '../storage/ports.ts';

const TOP = 10;

const LISTS: readonly [string, BreakdownDim][] = [
  ['referrers', 'referrer'],
  ['countries', 'country'],
  ['browsers', 'browser'],
  ['oses', 'os'],
  ['devices', 'device'],
];

const querystring = {
  type: 'object',
  additionalProperties: false,
  properties: {
    from: { type: 'string', maxLength: 64, description: 'ISO 8601; default: 7 days before "to"' },
    to: { type: 'string', maxLength: 64, description: 'ISO 8601; default: now' },
    interval: { type: 'string', enum: ['hour', 'day'], description: 'default: hour up to 3 days, else day' },
    includeBots: { type: 'string', enum: ['true', 'false'], description: 'default: false' },
  },
} as const;

/** The window's parameters and `domain` (which domain's link, or which domain's orphans). */
const withDomain = {
  ...querystring,
  properties: { ...querystring.properties, ...domainQuerySchema.properties },
} as const;

type StatsQuerystring = StatsParams & { domain?: string };

const counted = {
  type: 'array',
  items: {
    type: 'object',
    required: ['key', 'clicks'],
    properties: { key: { type: 'string' }, clicks: { type: 'integer' } },
  },
} as const;

const statsProperties = {
  from: { type: 'string', format: 'date-time' },
  to: { type: 'string', format: 'date-time' },
  interval: { type: 'string', enum: ['hour', 'day'] },
  includeBots: { type: 'boolean' },
  totals: {
    type: 'object',
    required: ['clicks', 'visitors'],
    properties: {
      clicks: { type: 'integer' },
      visitors: {
        type: 'integer',
        description: 'Approximate (HyperLogLog); a visitor counts once per UTC day',
      },
    },
  },
  series: {
    type: 'array',
    items: {
      type: 'object',
      required: ['t', 'clicks'],
      properties: { t: { type: 'string', format: 'date-time' }, clicks: { type: 'integer' } },
    },
  },
  ...Object.fromEntries(LISTS.map(([name]) => [name, counted])),
} as const;

/** `domain`: with ALL_LINKS, only that stored domain's links. */
async function statsFor(deps: Deps, code: string, params: StatsParams, domain?: string) {
  const w = statsWindow(params, deps.now());
  const query = { code, ...w, top: TOP, ...(domain === undefined ? {} : { domain }) };
  const s = await deps.clicks.clickStats(query);
  const series = fillSeries(w, s.series);
  const lists = Object.fromEntries(
    LISTS.map(([name, dim]) => [
      name,
      s.breakdowns[dim].map((b) => ({ key: breakdownKey(dim, b.value), clicks: b.clicks })),
    ]),
  );
  return {
    from: new Date(w.from).toISOString(),
    to: new Date(w.to).toISOString(),
    interval: w.interval,
    includeBots: w.includeBots,
    totals: {
      clicks: series.reduce((n, p) => n + p.clicks, 0),
      visitors: estimateVisitors(s.visitorRegisters.map((r) => r.rank)),
    },
    series,
    ...lists,
    // Which redirect rule sent the clicks of a link with rules (the A/B result): '1' is the first
    // rule, '0' none (the link's own URL). Clicks from before it had rules are not listed.
    ...(code === ALL_LINKS
      ? {}
      : {
          rules: s.breakdowns.rule
            .filter((b) => b.value !== '')
            .map((b) => ({ key: b.value, clicks: b.clicks })),
        }),
    topLinks: s.topLinks.map((t) => {
      const { domain, code: c } = splitLinkKey(t.code);
      return { code: c, domain: deps.domains.hostOf(domain), clicks: t.clicks };
    }),
  };
}

const ORPHAN_TYPES: readonly OrphanType[] = ['root', 'unknown_code', 'other'];

async function orphansFor(deps: Deps, params: StatsQuerystring) {
  const w = statsWindow(params, deps.now());
  const domain = params.domain === undefined ? null : await deps.domains.storedDomain(params.domain);
  // This process's count not written yet is written first, so a visit just made is in the answer.
  await deps.orphans.flush();
  const s = await deps.store.orphanStats({ ...w, domain, top: TOP });
  const series = fillSeries(w, s.series);
  const byType = new Map(s.types.map((t) => [t.key, t.clicks]));
  return {
    from: new Date(w.from).toISOString(),
    to: new Date(w.to).toISOString(),
    interval: w.interval,
    includeBots: w.includeBots,
    totals: { clicks: series.reduce((n, p) => n + p.clicks, 0) },
    series,
    types: ORPHAN_TYPES.map((key) => ({ key, clicks: byType.get(key) ?? 0 })),
    paths: s.paths,
  };
}

export function registerStatsRoutes(app: FastifyInstance, deps: Deps): void {
  app.get<{ Params: { code: string }; Querystring: StatsQuerystring }>(
    '/links/:code/stats',
    {
      schema: {
        summary: "A link's clicks over a window",
        operationId: 'getLinkStats',
        tags: ['analytics'],
        params: codeParamsSchema,
        querystring: withDomain,
        response: {
          200: {
            type: 'object',
            required: ['totals', 'series'],
            properties: {
              ...statsProperties,
              rules: {
                ...counted,
                description:
                  "Clicks by the redirect rule that sent them (the A/B result): key '1' is the first rule at the time of the click, '0' none matched",
              },
            },
          },
          ...problemResponses(...AUTHENTICATED, 'validation_failed', 'not_found', 'unknown_domain'),
        },
      },
    },
    async (req) => {
      const { domain, ...window } = req.query;
      const link = await findLink(deps, req.params.code, domain);
      return statsFor(deps, linkKey(link.domain, link.code), window);
    },
  );

  app.get<{ Querystring: StatsQuerystring }>(
    '/stats',
    {
      schema: {
        summary: 'Clicks across all links over a window',
        operationId: 'getStats',
        tags: ['analytics'],
        querystring: withDomain,
        response: {
          200: {
            type: 'object',
            required: ['totals', 'series', 'topLinks'],
            properties: {
              ...statsProperties,
              topLinks: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['code', 'domain', 'clicks'],
                  properties: {
                    code: { type: 'string' },
                    domain: { type: 'string' },
                    clicks: { type: 'integer' },
                  },
                },
              },
            },
          },
          ...problemResponses(...AUTHENTICATED, 'validation_failed', 'unknown_domain'),
        },
      },
    },
    async (req) => {
      const { domain, ...window } = req.query;
      if (domain === undefined) return statsFor(deps, ALL_LINKS, window);
      return statsFor(deps, ALL_LINKS, window, await deps.domains.storedDomain(domain));
    },
  );

  app.get<{ Querystring: StatsQuerystring }>(
    '/stats/orphans',
    {
      schema: {
        summary: 'Visits that found no link: domain roots, unknown codes and other 404s',
        operationId: 'getOrphanStats',
        tags: ['analytics'],
        querystring: withDomain,
        response: {
          200: {
            type: 'object',
            required: ['totals', 'series', 'types', 'paths'],
            properties: {
              from: statsProperties.from,
              to: statsProperties.to,
              interval: statsProperties.interval,
              includeBots: statsProperties.includeBots,
              totals: { type: 'object', required: ['clicks'], properties: { clicks: { type: 'integer' } } },
              series: statsProperties.series,
              types: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['key', 'clicks'],
                  properties: {
                    key: { type: 'string', enum: [...ORPHAN_TYPES] },
                    clicks: { type: 'integer' },
                  },
                },
              },
              paths: {
                ...counted,
                description: 'The most visited paths (kept per write: at most 1,000 each)',
              },
            },
          },
          ...problemResponses(...AUTHENTICATED, 'validation_failed', 'unknown_domain'),
        },
      },
    },
    async (req) => orphansFor(deps, req.query),
  );
}
