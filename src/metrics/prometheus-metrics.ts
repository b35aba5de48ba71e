// Metrics on prom-client, one registry per app so several apps can live in one test process.
import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import type { CacheResult, Metrics, RedirectOutcome } from './metrics.ts';

export function createPrometheusMetrics(opts: { defaultMetrics: boolean; gauges?: () => void }): Metrics {
  const register = new Registry();
  if (opts.defaultMetrics) collectDefaultMetrics({ register, prefix: 'hop_process_' });
  const redirects = new Counter({
    name: 'hop_redirects_total',
    help: 'Redirect requests by outcome',
    labelNames: ['outcome'] as const,
    registers: [register],
  });
  // Children bound once: the redirect path must not hash label sets per request.
  const redirectChild = {
    redirect: redirects.labels('redirect'),
    not_found: redirects.labels('not_found'),
    gone: redirects.labels('gone'),
  } satisfies Record<RedirectOutcome, unknown>;
  const cache = new Counter({
    name: 'hop_cache_requests_total',
    help: 'Cache lookups by tier and result',
    labelNames: ['tier', 'result'] as const,
    registers: [register],
  });
  const cacheChild = new Map<string, ReturnType<typeof cache.labels>>();
  const coalesced = new Counter({
    name: 'hop_cache_loads_coalesced_total',
    help: 'Lookups that joined a load already in flight for the same code',
    registers: [register],
  });
  const httpDuration = new Histogram({
    name: 'hop_http_request_duration_seconds',
    help: 'API request latency by route, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [register],
  });
  const created = new Counter({
    name: 'hop_links_created_total',
    help: 'Links created',
    registers: [register],
  });
  const clicks = new Counter({
    name: 'hop_clicks_recorded_total',
    help: 'Clicks accepted into the buffer',
    registers: [register],
  });
  const dropped = new Counter({
    name: 'hop_clicks_dropped_total',
    help: 'Clicks dropped because the buffer was full',
    registers: [register],
  });
  const batches = new Histogram({
    name: 'hop_click_batch_write_seconds',
    help: 'Time to write one click batch',
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [register],
  });
  const batchEvents = new Counter({
    name: 'hop_clicks_written_total',
    help: 'Clicks written to rollups',
    registers: [register],
  });
  const batchFailures = new Counter({
    name: 'hop_click_batch_failures_total',
    help: 'Click batch writes that failed (they are retried)',
    registers: [register],
  });
  const limited = new Counter({
    name: 'hop_rate_limited_total',
    help: 'Requests refused by a rate limit',
    labelNames: ['policy'] as const,
    registers: [register],
  });
  return {
    redirect: (o) => redirectChild[o].inc(),
    cacheLookup(tier, result: CacheResult) {
      const k = `${tier}:${result}`;
      let c = cacheChild.get(k);
      if (c === undefined) {
        c = cache.labels(tier, result);
        cacheChild.set(k, c);
      }
      c.inc();
    },
    loadCoalesced: () => coalesced.inc(),
    httpRequest: (route, method, status, seconds) =>
      httpDuration.labels(route, method, String(status)).observe(seconds),
    linkCreated: () => created.inc(),
    clicksRecorded: (n) => clicks.inc(n),
    clicksDropped: (n) => dropped.inc(n),
    clickBatchWritten(n, seconds) {
      batchEvents.inc(n);
      batches.observe(seconds);
    },
    clickBatchFailed: () => batchFailures.inc(),
    rateLimited: (p) => limited.labels(p).inc(),
    async render() {
      opts.gauges?.();
      return { contentType: register.contentType, body: await register.metrics() };
    },
  };
}
