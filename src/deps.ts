// The composition root: the one place that picks adapters. Everything else receives Deps.
import { ClickEnricher } from './analytics/click-enricher.ts';
import { ClickFeed } from './analytics/click-feed.ts';
import { ClickUpkeep } from './analytics/click-upkeep.ts';
import { VisitorSalts } from './analytics/visitor-salts.ts';
import { LruCache } from './cache/lru-cache.ts';
import type { Config } from './config.ts';
import type { RedirectRecord } from './domain/link.ts';
import { normalizeHostName, type UrlPolicy } from './domain/url-policy.ts';
import { BufferedClickSink } from './events/buffered-click-sink.ts';
import { type ClickSink, noopClickSink } from './events/click-sink.ts';
import { KeyVerifier } from './keys/key-verifier.ts';
import { createLogger, type Logger } from './logger.ts';
import type { Metrics } from './metrics/metrics.ts';
import { createPrometheusMetrics } from './metrics/prometheus-metrics.ts';
import { MemoryRateLimiter } from './ratelimit/memory-rate-limiter.ts';
import type { RateLimiter } from './ratelimit/rate-limiter.ts';
import { LinkResolver } from './redirect/resolve-link.ts';
import { openEmbeddedStore } from './storage/embedded/open-embedded-store.ts';
import type { Store } from './storage/ports.ts';
import { openPostgresStore } from './storage/postgres/open-postgres-store.ts';

export interface Deps {
  readonly config: Config;
  readonly store: Store;
  readonly keys: KeyVerifier;
  readonly resolver: LinkResolver;
  readonly clicks: ClickSink;
  readonly clickEnricher: ClickEnricher;
  readonly clickFeed: ClickFeed;
  readonly clickUpkeep: ClickUpkeep;
  readonly visitorSalts: VisitorSalts;
  readonly rateLimiter: RateLimiter;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly urlPolicy: UrlPolicy;
  readonly now: () => number;
}

export function urlPolicyFor(config: Config): UrlPolicy {
  const ownHosts = new Set([normalizeHostName(new URL(config.publicUrl).hostname)]);
  return { ownHosts, denyHosts: config.denyHosts };
}

/** Opens the store the configuration names: PostgreSQL servers when HOP_DATABASE_URLS is set. */
export function openStore(config: Config, metrics: Metrics | null = null): Promise<Store> {
  if (config.databaseUrls !== null) {
    const observer =
      metrics === null
        ? null
        : {
            acquired: (server: string, s: number) => metrics.poolAcquired(server, s),
            refused: (server: string, reason: string) => metrics.poolRefused(server, reason),
            primaryFallback: (result: string) => metrics.primaryFallback(result),
          };
    return openPostgresStore({ ...config, databaseUrls: config.databaseUrls }, observer);
  }
  return openEmbeddedStore({ dataDir: config.dataDir, codeLength: config.codeLength });
}

export async function buildDeps(
  config: Config,
  overrides: { store?: Store; log?: Logger; metrics?: Metrics } = {},
): Promise<Deps> {
  const log = overrides.log ?? createLogger(config.logLevel);
  const metrics = overrides.metrics ?? createPrometheusMetrics({ defaultMetrics: true });
  const store = overrides.store ?? (await openStore(config, metrics));
  if (store.topology !== undefined) metrics.watchStore(() => store.topology!());
  const l1 = config.cacheSize > 0 ? new LruCache<RedirectRecord | null>(config.cacheSize) : null;
  const resolver = new LinkResolver(
    store,
    { l1, l2: null, ttlMs: config.cacheTtlMs, negativeTtlMs: Math.min(5_000, config.cacheTtlMs) },
    metrics,
  );
  const clickFeed = new ClickFeed({ heartbeatMs: config.feedHeartbeatMs });
  const visitorSalts = new VisitorSalts(store, log);
  await visitorSalts.start();
  const clickUpkeep = new ClickUpkeep(store, config.clickRetentionDays, log);
  clickUpkeep.start(config.clickUpkeepMs);
  const clicks = config.clickRecording
    ? new BufferedClickSink(
        store,
        {
          batchSize: config.clickBatchSize,
          flushMs: config.clickFlushMs,
          maxBuffered: config.clickBufferSize,
          onClick: (e) => clickFeed.publish(e),
        },
        metrics,
        log,
      )
    : noopClickSink;
  return {
    config,
    store,
    keys: new KeyVerifier(store, config.apiKeyCacheMs),
    resolver,
    clicks,
    clickEnricher: new ClickEnricher(
      { trustProxy: config.trustProxy, countryHeader: config.countryHeader },
      visitorSalts,
    ),
    clickFeed,
    clickUpkeep,
    visitorSalts,
    rateLimiter: new MemoryRateLimiter(),
    metrics,
    log,
    urlPolicy: urlPolicyFor(config),
    now: Date.now,
  };
}

/** Shutdown order matters: clicks flush into the store before the store closes. */
export async function closeDeps(deps: Deps): Promise<void> {
  deps.clickFeed.close();
  deps.visitorSalts.stop();
  try {
    await deps.clickUpkeep.stop();
    await deps.clicks.close();
  } finally {
    await deps.store.close();
  }
}
