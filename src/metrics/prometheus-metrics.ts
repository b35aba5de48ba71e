// Metrics on prom-client, one registry per app so several apps can live in one test process.
import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import type { CacheResult, Metrics, MetricsSnapshot, RedirectOutcome } from './metrics.ts';

type Values = { value: number; labels: Partial<Record<string, string | number>>; metricName?: string }[];
const total = (values: Values, where: (l: Values[number]['labels']) => boolean = () => true) =>
  values.reduce((n, v) => (where(v.labels) ? n + v.value : n), 0);

export function createPrometheusMetrics(opts: { defaultMetrics: boolean; gauges?: () => void }): Metrics {
  const register = new Registry();
  if (opts.defaultMetrics) collectDefaultMetrics({ register, prefix: 'hop_process_' });
  // Per-request counters are plain numbers on the hot path and reach prom-client only when
  // /metrics is scraped: a labelled inc() hashes its label set on every call.
  const pending = {
    redirect: { redirect: 0, not_found: 0, gone: 0 } as Record<RedirectOutcome, number>,
    cache: new Map<string, number>(),
    coalesced: 0,
    clicks: 0,
    dropped: 0,
  };
  const redirectsTotal = new Counter({
    name: 'hop_redirects_total',
    help: 'Redirect requests by outcome',
    labelNames: ['outcome'] as const,
    registers: [register],
    collect() {
      for (const [outcome, n] of Object.entries(pending.redirect)) {
        this.inc({ outcome }, n);
        pending.redirect[outcome as RedirectOutcome] = 0;
      }
    },
  });
  const cacheTotal = new Counter({
    name: 'hop_cache_requests_total',
    help: 'Cache lookups by tier and result',
    labelNames: ['tier', 'result'] as const,
    registers: [register],
    collect() {
      for (const [k, n] of pending.cache) {
        const [tier, result] = k.split(':') as [string, string];
        this.inc({ tier, result }, n);
        pending.cache.set(k, 0);
      }
    },
  });
  new Counter({
    name: 'hop_cache_loads_coalesced_total',
    help: 'Lookups that joined a load already in flight for the same code',
    registers: [register],
    collect() {
      this.inc(pending.coalesced);
      pending.coalesced = 0;
    },
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
  const clicksRecordedTotal = new Counter({
    name: 'hop_clicks_recorded_total',
    help: 'Clicks accepted into the buffer',
    registers: [register],
    collect() {
      this.inc(pending.clicks);
      pending.clicks = 0;
    },
  });
  const clicksDroppedTotal = new Counter({
    name: 'hop_clicks_dropped_total',
    help: 'Clicks dropped because the buffer was full',
    registers: [register],
    collect() {
      this.inc(pending.dropped);
      pending.dropped = 0;
    },
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
  const cacheKeys = { l1: {}, l2: {} } as Record<'l1' | 'l2', Partial<Record<CacheResult, string>>>;
  return {
    redirect(o) {
      pending.redirect[o]++;
    },
    cacheLookup(tier, result) {
      let k = cacheKeys[tier][result];
      if (k === undefined) {
        k = `${tier}:${result}`;
        cacheKeys[tier][result] = k;
      }
      pending.cache.set(k, (pending.cache.get(k) ?? 0) + 1);
    },
    loadCoalesced() {
      pending.coalesced++;
    },
    httpRequest: (route, method, status, seconds) =>
      httpDuration.labels(route, method, String(status)).observe(seconds),
    linkCreated: () => created.inc(),
    clicksRecorded(n) {
      pending.clicks += n;
    },
    clicksDropped(n) {
      pending.dropped += n;
    },
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
    async snapshot(): Promise<MetricsSnapshot> {
      // get() runs each counter's collect(), folding in the plain-number tallies first.
      const [r, c, rec, drop, lat, written, failed] = await Promise.all([
        redirectsTotal.get(),
        cacheTotal.get(),
        clicksRecordedTotal.get(),
        clicksDroppedTotal.get(),
        httpDuration.get(),
        batchEvents.get(),
        batchFailures.get(),
      ]);
      const buckets = new Map<number, number>();
      let requests = 0;
      for (const v of lat.values as Values) {
        if (v.metricName?.endsWith('_count')) requests += v.value;
        if (!v.metricName?.endsWith('_bucket')) continue;
        const le = v.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(v.labels.le);
        buckets.set(le, (buckets.get(le) ?? 0) + v.value);
      }
      const l1 = (result: string) => total(c.values, (l) => l.tier === 'l1' && l.result === result);
      return {
        redirects: total(r.values),
        apiRequests: requests,
        apiLatency: [...buckets]
          .sort(([a], [b]) => a - b)
          .map(([le, count]) => ({ le, count }))
          .concat(buckets.size === 0 ? [{ le: Number.POSITIVE_INFINITY, count: 0 }] : []),
        cache: { hits: l1('hit'), misses: l1('miss'), negative: l1('negative') },
        clicks: {
          recorded: total(rec.values),
          written: total(written.values),
          dropped: total(drop.values),
          batchFailures: total(failed.values),
        },
      };
    },
  };
}
