// GET /api/v1/system — what the dashboard's system page draws: Hop's own counters (cumulative;
// the page turns successive answers into rates) and which scaled-out parts are in use.
import type { FastifyInstance } from 'fastify';
import type { Deps } from '../deps.ts';
import { AUTHENTICATED, problemResponses } from '../http/openapi.ts';
import type { MetricsSnapshot } from '../metrics/metrics.ts';
import type { StoreTopology } from '../storage/ports.ts';

const NOT_IN_USE = { inUse: false } as const;

const count = { type: 'integer', minimum: 0 } as const;
const nullableNumber = { anyOf: [{ type: 'number' }, { type: 'null' }] } as const;

/**
 * A figure group: documented fields, and any others kept (additionalProperties), since this
 * schema also serializes the answer and a figure added later must not be dropped silently.
 */
const figures = (required: readonly string[], properties: Record<string, object>) =>
  ({ type: 'object', required, additionalProperties: true, properties }) as const;

/** The pool, replicas and shards of a PostgreSQL store; `{ inUse: false }` on the embedded one. */
const part = (properties: Record<string, object>) =>
  figures(['inUse'], { inUse: { type: 'boolean' }, ...properties });

const systemSchema = figures(
  [
    'at',
    'uptimeSeconds',
    'store',
    'redirects',
    'apiRequests',
    'apiLatency',
    'apiP99SecondsSinceStart',
    'cache',
    'sharedCache',
    'clickQueue',
    'pool',
    'replicas',
    'shards',
  ],
  {
    at: { type: 'string', format: 'date-time' },
    uptimeSeconds: count,
    store: figures(['kind'], { kind: { type: 'string' } }),
    redirects: { ...count, description: 'Since start' },
    apiRequests: { ...count, description: 'Since start' },
    apiLatency: {
      type: 'array',
      description: 'Cumulative request counts per upper bound in seconds; the last bound (+Inf) is null',
      items: figures(['le', 'count'], { le: nullableNumber, count }),
    },
    apiP99SecondsSinceStart: nullableNumber,
    cache: part({ hits: count, misses: count, negative: count }),
    sharedCache: part({ healthy: { type: 'boolean' } }),
    clickQueue: part({
      recorded: count,
      written: count,
      dropped: count,
      batchFailures: count,
      queued: { ...count, description: 'Accepted but not yet written' },
      flushMs: count,
    }),
    pool: part({
      servers: {
        type: 'array',
        items: figures(['name', 'inUse', 'idle', 'waiting', 'max'], {
          name: { type: 'string' },
          inUse: count,
          idle: count,
          waiting: count,
          max: count,
        }),
      },
    }),
    replicas: part({
      servers: {
        type: 'array',
        items: figures(['name', 'shard', 'up', 'inRotation', 'lagMs', 'lagBytes'], {
          name: { type: 'string' },
          shard: count,
          up: { type: 'boolean' },
          inRotation: { type: 'boolean' },
          lagMs: nullableNumber,
          lagBytes: nullableNumber,
        }),
      },
    }),
    shards: part({
      mapVersion: count,
      shards: {
        type: 'array',
        items: figures(['shard', 'buckets', 'primaryUp'], {
          shard: count,
          buckets: count,
          primaryUp: { type: 'boolean' },
        }),
      },
    }),
  },
);

/** The latency below which `q` of the observations fall, interpolated within its bucket. */
export function quantileSeconds(buckets: MetricsSnapshot['apiLatency'], q: number): number | null {
  const all = buckets.at(-1)?.count ?? 0;
  if (all === 0) return null;
  const rank = q * all;
  let prevLe = 0;
  let prevCount = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      if (!Number.isFinite(b.le)) return prevLe;
      const inBucket = b.count - prevCount;
      return inBucket === 0 ? b.le : prevLe + ((b.le - prevLe) * (rank - prevCount)) / inBucket;
    }
    prevLe = b.le;
    prevCount = b.count;
  }
  return prevLe;
}

/** Pool, replicas and shards of the PostgreSQL store; the embedded default has none of them. */
function scaledOutParts(t: StoreTopology | null) {
  if (t === null) return { pool: NOT_IN_USE, replicas: NOT_IN_USE, shards: NOT_IN_USE };
  const servers = t.shards.flatMap((s) => [
    { name: s.primary.name, ...s.primary.pool },
    ...s.replicas.map((r) => ({ name: r.name, ...r.pool })),
  ]);
  const replicas = t.shards.flatMap((s) =>
    s.replicas.map((r) => ({
      name: r.name,
      shard: s.shard,
      up: r.up,
      inRotation: r.inRotation,
      lagMs: r.lagMs,
      lagBytes: r.lagBytes,
    })),
  );
  return {
    pool: {
      inUse: true,
      servers: servers.map((s) => ({
        name: s.name,
        inUse: s.total - s.idle,
        idle: s.idle,
        waiting: s.waiting,
        max: s.max,
      })),
    },
    replicas: replicas.length === 0 ? NOT_IN_USE : { inUse: true, servers: replicas },
    shards: {
      inUse: true,
      mapVersion: t.shardMapVersion,
      shards: t.shards.map((s) => ({ shard: s.shard, buckets: s.buckets, primaryUp: s.primary.up })),
    },
  };
}

export function registerSystemRoute(app: FastifyInstance, deps: Deps): void {
  app.get(
    '/system',
    {
      schema: {
        summary: "Hop's own figures for the dashboard's system page",
        operationId: 'getSystem',
        tags: ['operations'],
        response: { 200: systemSchema, ...problemResponses(...AUTHENTICATED) },
      },
    },
    async (_req, reply) => {
      const m = await deps.metrics.snapshot();
      reply.header('cache-control', 'no-store');
      return {
        at: new Date(deps.now()).toISOString(),
        uptimeSeconds: Math.round(process.uptime()),
        store: { kind: deps.store.kind },
        redirects: m.redirects,
        apiRequests: m.apiRequests,
        // JSON has no Infinity: the last bucket's bound is sent as null.
        apiLatency: m.apiLatency.map((b) => ({ le: Number.isFinite(b.le) ? b.le : null, count: b.count })),
        apiP99SecondsSinceStart: quantileSeconds(m.apiLatency, 0.99),
        cache: { inUse: deps.config.cacheSize > 0, ...m.cache },
        // The Redis tier's cache: healthy, or failing (its breaker open; lookups read the store).
        sharedCache:
          deps.sharedCache === null ? NOT_IN_USE : { inUse: true, healthy: deps.sharedCache.healthy },
        clickQueue: {
          inUse: deps.config.clickRecording,
          ...m.clicks,
          // Accepted but not yet written: what a crash would lose, and how far analytics trail.
          queued: Math.max(0, m.clicks.recorded - m.clicks.written),
          flushMs: deps.config.clickFlushMs,
        },
        ...scaledOutParts(deps.store.topology?.() ?? null),
      };
    },
  );
}
