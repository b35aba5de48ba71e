// GET /api/v1/links/{code}/stats and GET /api/v1/stats — clicks over a window, answered from
// rollups (never by counting raw events), so a link with a long history answers as fast as a new one.
import type { FastifyInstance } from 'fastify';
import type { Deps } from '../deps.ts';
import { ALL_LINKS, type BreakdownDim, estimateVisitors } from '../domain/clicks.ts';
import { breakdownKey, fillSeries, type StatsParams, statsWindow } from '../domain/stats-window.ts';
import { AUTHENTICATED, problemResponses } from '../http/openapi.ts';
import { findLink } from '../links/find-link.ts';
import { codeParamsSchema } from '../links/link-view.ts';

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

async function statsFor(deps: Deps, code: string, params: StatsParams) {
  const w = statsWindow(params, deps.now());
  const query = { code, ...w, top: TOP };
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
    topLinks: s.topLinks,
  };
}

export function registerStatsRoutes(app: FastifyInstance, deps: Deps): void {
  app.get<{ Params: { code: string }; Querystring: StatsParams }>(
    '/links/:code/stats',
    {
      schema: {
        summary: "A link's clicks over a window",
        operationId: 'getLinkStats',
        tags: ['analytics'],
        params: codeParamsSchema,
        querystring,
        response: {
          200: { type: 'object', required: ['totals', 'series'], properties: statsProperties },
          ...problemResponses(...AUTHENTICATED, 'validation_failed', 'not_found'),
        },
      },
    },
    async (req) => {
      const link = await findLink(deps, req.params.code);
      return statsFor(deps, link.code, req.query);
    },
  );

  app.get<{ Querystring: StatsParams }>(
    '/stats',
    {
      schema: {
        summary: 'Clicks across all links over a window',
        operationId: 'getStats',
        tags: ['analytics'],
        querystring,
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
                  required: ['code', 'clicks'],
                  properties: { code: { type: 'string' }, clicks: { type: 'integer' } },
                },
              },
            },
          },
          ...problemResponses(...AUTHENTICATED, 'validation_failed'),
        },
      },
    },
    async (req) => statsFor(deps, ALL_LINKS, req.query),
  );
}
