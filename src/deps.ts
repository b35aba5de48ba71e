// The composition root: the one place that picks adapters. Everything else receives Deps.
// The PostgreSQL and Redis adapters are imported when configured, not before: their client
// libraries cost a server on the embedded default tens of MB it would never use.
import { existsSync } from 'node:fs';
import { ClickEnricher } from './analytics/click-enricher.ts';
import { ClickFeed } from './analytics/click-feed.ts';
import { ClickUpkeep } from './analytics/click-upkeep.ts';
import { OrphanCounter } from './analytics/orphan-visits.ts';
import { VisitSplitter } from './analytics/visit-splitter.ts';
import { VisitorSalts } from './analytics/visitor-salts.ts';
import { ChangeStreamInvalidator } from './cache/change-stream-invalidator.ts';
import { LruCache } from './cache/lru-cache.ts';
import { RedisSharedCache } from './cache/redis-cache.ts';
import type { SharedCache } from './cache/shared-cache.ts';
import type { Config, RedisTarget } from './config.ts';
import type { ClickEvent } from './domain/clicks.ts';
import type { RedirectRecord } from './domain/link.ts';
import { normalizeHostName, type UrlPolicy } from './domain/url-policy.ts';
import { DomainDirectory } from './domains/domain-directory.ts';
import { BufferedClickSink } from './events/buffered-click-sink.ts';
import {
  type ClickIntake,
  type ClickSink,
  type EventSink,
  noClickSink,
  statsCounting,
} from './events/click-sink.ts';
import { agreeOnPartitions, PartitionMismatch } from './events/click-stream.ts';
import { FoldingClickSink } from './events/folding-click-sink.ts';
import { StreamClickSink } from './events/stream-click-sink.ts';
import { ThreadClickSink } from './events/thread-click-sink.ts';
import { KeyVerifier } from './keys/key-verifier.ts';
import { createLogger, type Logger } from './logger.ts';
import type { Metrics } from './metrics/metrics.ts';
import { createPrometheusMetrics } from './metrics/prometheus-metrics.ts';
import { MemoryRateLimiter } from './ratelimit/memory-rate-limiter.ts';
import type { RateLimiter } from './ratelimit/rate-limiter.ts';
import { RedisRateLimiter } from './ratelimit/redis-rate-limiter.ts';
import { LinkResolver } from './redirect/resolve-link.ts';
import { EmbeddedBackups } from './storage/embedded/backup-service.ts';
import { openEmbeddedStore } from './storage/embedded/open-embedded-store.ts';
import type { ClickLog, Store } from './storage/ports.ts';
import { traceL1, traceL2, traceStore } from './tracing/adapter-spans.ts';
import { openTracing } from './tracing/open-tracing.ts';
import type { Tracing } from './tracing/tracing.ts';
import { type ResolveHost, WebhookTargetGuard } from './webhooks/target-guard.ts';
import { WebhookDispatcher } from './webhooks/webhook-dispatcher.ts';

export interface Deps {
  readonly config: Config;
  readonly store: Store;
  readonly keys: KeyVerifier;
  readonly resolver: LinkResolver;
  /** The Redis tier's cache, when configured (readiness reports it degraded while it fails). */
  readonly sharedCache: SharedCache | null;
  /** Holds the clicks not yet written: flushed and closed with the process, asked by stats. */
  readonly clicks: ClickSink;
  /** Where a redirect hands its click. */
  readonly clickIntake: ClickIntake;
  readonly clickFeed: ClickFeed;
  readonly clickUpkeep: ClickUpkeep;
  /** On PostgreSQL (the embedded writer splits as it folds). */
  readonly visitSplitter: VisitSplitter | null;
  readonly visitorSalts: VisitorSalts;
  readonly rateLimiter: RateLimiter;
  /** Tails the change streams in Redis to drop stale L1 copies (backs up pub/sub); null without Redis. */
  readonly changeTail: ChangeStreamInvalidator | null;
  /** Fans changes out to webhooks and sends their deliveries; null when HOP_WEBHOOKS=off. */
  readonly webhooks: WebhookDispatcher | null;
  /** Keeps webhook targets out of Hop's own network: at subscription, and at every connect. */
  readonly webhookTargets: WebhookTargetGuard;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** Spans and trace context; NO_TRACING unless the OTEL_* variables ask for traces. */
  readonly tracing: Tracing;
  readonly urlPolicy: UrlPolicy;
  /** Registered domains, which one a request is for, and how links are addressed. */
  readonly domains: DomainDirectory;
  /** Counts requests that found no link. */
  readonly orphans: OrphanCounter;
  /** Embedded with a data directory: `hop backup`'s control socket and scheduled backups. */
  readonly backups: EmbeddedBackups | null;
  readonly now: () => number;
}

export function urlPolicyFor(config: Config): UrlPolicy {
  const ownHosts = new Set([normalizeHostName(new URL(config.publicUrl).hostname)]);
  return { ownHosts, denyHosts: config.denyHosts };
}

/** Opens the store the configuration names: PostgreSQL servers when HOP_DATABASE_URLS is set. */
export async function openStore(
  config: Config,
  metrics: Metrics | null = null,
  log: Logger | null = null,
): Promise<Store> {
  if (config.databaseUrls !== null) {
    const observer =
      metrics === null
        ? null
        : {
            acquired: (server: string, s: number) => metrics.poolAcquired(server, s),
            refused: (server: string, reason: string) => metrics.poolRefused(server, reason),
            breaker: (server: string, state: string) => metrics.breakerState(`postgres_${server}`, state),
            primaryFallback: (result: string) => metrics.primaryFallback(result),
          };
    const { openPostgresStore } = await import('./storage/postgres/open-postgres-store.ts');
    return openPostgresStore({ ...config, databaseUrls: config.databaseUrls }, observer);
  }
  const store = await openEmbeddedStore({
    dataDir: config.dataDir,
    codeLength: config.codeLength,
    database: { buffersMb: config.dbBuffersMb, compiler: config.dbCompiler },
  });
  if (config.changeLog === null) return store;
  try {
    const { ChangeLog } = await import('./storage/embedded/change-log.ts');
    const { withChangeLog } = await import('./storage/embedded/logged-store.ts');
    const opened = await ChangeLog.open(config.changeLog, store, {
      synced: (n, s) => metrics?.changeLogSynced(n, s),
    });
    if (opened.replayed > 0 || opened.tornBytes > 0) {
      log?.warn(
        { replayed: opened.replayed, tornBytes: opened.tornBytes, changeLog: config.changeLog },
        'replayed link changes from the change log that the database lacked',
      );
    }
    return withChangeLog(store, opened.log);
  } catch (err) {
    await store.close();
    throw err;
  }
}

/**
 * What runs after each embedded backup that is safely written (scheduled, asked for by `hop
 * backup`, or taken by `hop backup` of a stopped data directory), with the newest change the
 * backup holds. `store` is the serving process's store; null when the CLI took the backup itself.
 */
export function afterBackupHook(
  config: Config,
  store: Store | null,
): (lastChangeSeq: number) => Promise<void> {
  const dir = config.changeLog;
  if (dir === null || config.databaseUrls !== null) return async () => {};
  // The backup holds every change up to its seq: the log keeps only what came after.
  return async (seq) => {
    const { changeLogOf } = await import('./storage/embedded/logged-store.ts');
    const log = store === null ? null : changeLogOf(store);
    if (log !== null) {
      await log.pruneThrough(seq);
      return;
    }
    const { ChangeLog } = await import('./storage/embedded/change-log.ts');
    if (existsSync(dir)) ChangeLog.pruneDir(dir, seq);
  };
}

const REDIS_BOOT_WAIT_MS = 3_000;

// With the shared tier down, other processes' changes cannot reach L1: its copies live this long.
const DEGRADED_L1_TTL_MS = 1_000;

/** The Redis tier: one command connection for the cache and the rate limiter, one for pub/sub. */
async function openRedisTier(config: Config, target: RedisTarget, metrics: Metrics, tracing: Tracing) {
  const { connectRedis, untilReady } = await import('./redis/connect-redis.ts');
  const client = connectRedis(target, {
    name: 'hop',
    commandTimeoutMs: config.redisCommandTimeoutMs,
    tracing,
  });
  const subscriber = connectRedis(target, {
    name: 'hop-invalidations',
    commandTimeoutMs: config.redisCommandTimeoutMs,
    subscriber: true,
  });
  const cache = new RedisSharedCache(
    client,
    subscriber,
    { ttlMs: config.redisCacheTtlMs, negativeTtlMs: config.negativeCacheTtlMs, jitter: 0.1 },
    {
      command: (op, s, ok) => metrics.redisCommand(op, s, ok),
      breaker: (state) => metrics.breakerState('redis_cache', state),
    },
  );
  const rateLimiter = new RedisRateLimiter(client, {
    // While Redis is unreachable each process limits on its own: approximate across processes.
    fallback: new MemoryRateLimiter(),
    onFallback: () => metrics.rateLimitFallback(),
  });
  return { client, cache, rateLimiter, connectRedis, untilReady };
}

const isClickLog = (s: Store): s is Store & ClickLog => 'writeRawClicks' in s && 'unfoldedClicks' in s;

/** Enriches each click on the redirect's thread and hands the event to the sink. */
function enriching(sink: EventSink, enricher: ClickEnricher, store: Store): ClickSink & ClickIntake {
  return {
    active: sink.active,
    take: (code, req) => sink.record(enricher.eventFor(code, req)),
    flush: () => sink.flush(),
    close: () => sink.close(),
    clickStats: (q) => statsCounting(store, sink, q),
    ...(sink.heldClicks === undefined ? {} : { heldClicks: (code) => sink.heldClicks!(code) }),
    ...(sink.settle === undefined ? {} : { settle: () => sink.settle!() }),
  };
}

/**
 * Where redirects' clicks go: nowhere, the embedded database's thread, this process's writer, or
 * the click stream in Redis.
 */
async function openClickSink(
  config: Config,
  store: Store,
  click: { onClick: (e: ClickEvent) => void; listening: () => boolean; enricher: () => ClickEnricher },
  metrics: Metrics,
  log: Logger,
  tracing: Tracing,
): Promise<ClickSink & ClickIntake> {
  if (!config.clickRecording) return noClickSink(store);
  const common = {
    batchSize: config.clickBatchSize,
    flushMs: config.clickFlushMs,
    maxBuffered: config.clickBufferSize,
    onClick: click.onClick,
  };
  if (config.clickPipeline === 'local' || config.redis === null) {
    // Only the embedded store folds: it has one writer, so this process's held clicks are all
    // the clicks the rollups lack, and stats can add them in.
    if (config.databaseUrls === null && config.clickFoldMs > 0 && isClickLog(store)) {
      const folding = { ...common, foldMs: config.clickFoldMs, foldRows: config.clickFoldRows };
      // PGlite: the writer runs on the database's own thread. The memory store (tests): here.
      const thread = store.databaseThread ?? null;
      if (thread !== null) {
        return ThreadClickSink.open(
          thread,
          {
            ...folding,
            listening: click.listening,
            trustProxy: config.trustProxy,
            countryHeader: config.countryHeader,
            codeLength: config.codeLength,
            logLevel: config.logLevel,
          },
          metrics,
        );
      }
      return enriching(await FoldingClickSink.open(store, folding, metrics, log), click.enricher(), store);
    }
    return enriching(new BufferedClickSink(store, common, metrics, log), click.enricher(), store);
  }
  // A connection of its own: large appends (and WAITs for a replica, which hold the connection)
  // must not queue ahead of the cache's lookups. A Redis Cluster here has no replicas to wait for.
  const { connectRedis, untilReady } = await import('./redis/connect-redis.ts');
  const replicaWaitMs = config.redis.kind === 'cluster' ? 0 : config.clickStreamReplicaWaitMs;
  const client = connectRedis(config.redis, {
    name: 'hop-clicks',
    commandTimeoutMs: Math.max(config.redisCommandTimeoutMs, STREAM_APPEND_TIMEOUT_MS, replicaWaitMs + 1_000),
    tracing,
  });
  client.on('error', () => {});
  await untilReady(client, REDIS_BOOT_WAIT_MS);
  try {
    await agreeOnPartitions(client, config.clickStreamPartitions);
  } catch (err) {
    if (err instanceof PartitionMismatch) throw err;
    log.warn(
      { err },
      'could not check the click stream partitions (Redis unreachable); clicks wait in the buffer',
    );
  }
  const sink = new StreamClickSink(
    client,
    {
      ...common,
      partitions: config.clickStreamPartitions,
      maxStreamEntries: config.clickStreamMaxEntries,
      replicaWaitMs,
    },
    metrics,
    log,
    tracing,
  );
  const enriched = enriching(sink, click.enricher(), store);
  return {
    ...enriched,
    async close() {
      await sink.close();
      client.disconnect();
    },
  };
}

const STREAM_APPEND_TIMEOUT_MS = 2_000;
/** How often changes are fanned out to webhooks and due deliveries sent. */
const WEBHOOK_POLL_MS = 250;
const WEBHOOK_RETRY_CAP_MS = 3_600_000;

export async function buildDeps(
  config: Config,
  overrides: {
    store?: Store;
    log?: Logger;
    metrics?: Metrics;
    resolveHost?: ResolveHost;
    tracing?: Tracing;
    afterBackup?: (lastChangeSeq: number) => Promise<void>;
  } = {},
): Promise<Deps> {
  const tracing =
    overrides.tracing ??
    (await openTracing(config.tracing, { serviceName: 'hop', logLevel: config.logLevel }));
  const log =
    overrides.log ?? createLogger(config.logLevel, tracing.enabled ? () => tracing.logFields() : undefined);
  if (tracing.enabled)
    log.info({ sampler: config.tracing.sampler, ratio: config.tracing.ratio }, 'tracing on');
  const metrics = overrides.metrics ?? createPrometheusMetrics({ defaultMetrics: true });
  // With tracing off each of these is the adapter itself; on, its calls in traced requests get spans.
  const store = traceStore(overrides.store ?? (await openStore(config, metrics, log)), tracing);
  if (store.topology !== undefined) metrics.watchStore(() => store.topology!());
  const dbThread = isClickLog(store) ? (store.databaseThread ?? null) : null;
  if (dbThread !== null) metrics.watchDatabaseMemory(() => dbThread.call({ op: 'memory' }));
  const l1 =
    config.cacheSize > 0 ? traceL1(new LruCache<RedirectRecord | null>(config.cacheSize), tracing) : null;
  const redis = config.redis === null ? null : await openRedisTier(config, config.redis, metrics, tracing);
  // A process that starts serving before Redis answers begins degraded (limits per process):
  // give the connection a moment, but never hold the boot hostage to Redis.
  if (redis !== null) await redis.untilReady(redis.client, REDIS_BOOT_WAIT_MS);
  const resolver = new LinkResolver(
    store,
    {
      l1,
      l2: redis === null ? null : traceL2(redis.cache, tracing),
      ttlMs: config.cacheTtlMs,
      negativeTtlMs: Math.min(config.negativeCacheTtlMs, config.cacheTtlMs),
      degradedTtlMs: DEGRADED_L1_TTL_MS,
      maxStoreLoads: config.storeReadLimit,
      stampedeControl: config.stampedeControl,
    },
    metrics,
  );
  const changeTail =
    redis === null || l1 === null
      ? null
      : new ChangeStreamInvalidator(
          () => {
            const reader = redis.connectRedis(config.redis!, {
              name: 'hop-changes',
              commandTimeoutMs: 5_000,
              blocking: true,
            });
            reader.on('error', () => {});
            return reader;
          },
          store.changeStreams,
          (code) => resolver.forget(code),
          log,
        );
  changeTail?.start();
  // A reshard can add a shard, and with it a change stream, while this process runs.
  if (changeTail !== null) setInterval(() => changeTail.grow(store.changeStreams), 1_000).unref();
  const urlPolicy = urlPolicyFor(config);
  const domains = new DomainDirectory({
    store,
    publicUrl: config.publicUrl,
    strictHosts: config.strictHosts,
    l2: redis?.cache ?? null,
    ownHosts: urlPolicy.ownHosts as Set<string>,
    log,
  });
  await domains.start(config.domainRefreshMs);
  const orphans = new OrphanCounter(store, log, config.clickRecording);
  orphans.start(config.orphanFlushMs);
  const clickFeed = new ClickFeed({ heartbeatMs: config.feedHeartbeatMs });
  const visitorSalts = new VisitorSalts(store, log);
  await visitorSalts.start();
  const clickUpkeep = new ClickUpkeep(store, config.clickRetentionDays, log);
  clickUpkeep.start(config.clickUpkeepMs);
  const visitSplitter = config.databaseUrls === null ? null : new VisitSplitter(store, log);
  visitSplitter?.start(config.visitSplitMs);
  const webhookTargets = new WebhookTargetGuard(config.webhookAllowTargets, overrides.resolveHost);
  const webhooks = config.webhooks
    ? new WebhookDispatcher(
        store,
        {
          pollMs: WEBHOOK_POLL_MS,
          timeoutMs: config.webhookTimeoutMs,
          concurrency: config.webhookConcurrency,
          retryBaseMs: config.webhookRetryBaseMs,
          retryCapMs: WEBHOOK_RETRY_CAP_MS,
          retryWindowMs: config.webhookRetryWindowMs,
        },
        log,
        webhookTargets.send,
        Date.now,
        tracing,
      )
    : null;
  webhooks?.start();
  const clicks = await openClickSink(
    config,
    store,
    {
      onClick: (e) => {
        clickFeed.publish(e);
        webhooks?.offerClick(e);
      },
      listening: () => clickFeed.size > 0 || webhooks?.wantsClicks === true,
      // Made only for a sink that enriches here (the embedded store's thread has its own).
      enricher: () =>
        new ClickEnricher(
          { trustProxy: config.trustProxy, countryHeader: config.countryHeader },
          visitorSalts,
        ),
    },
    metrics,
    log,
    tracing,
  );
  return {
    config,
    store,
    keys: new KeyVerifier(store, config.apiKeyCacheMs),
    resolver,
    sharedCache: redis?.cache ?? null,
    clicks,
    clickIntake: clicks,
    clickFeed,
    clickUpkeep,
    visitSplitter,
    visitorSalts,
    rateLimiter: redis?.rateLimiter ?? new MemoryRateLimiter(),
    webhooks,
    webhookTargets,
    changeTail,
    metrics,
    log,
    tracing,
    urlPolicy,
    domains,
    orphans,
    backups:
      dbThread === null || config.dataDir === null
        ? null
        : new EmbeddedBackups(
            dbThread,
            {
              dataDir: config.dataDir,
              dir: config.backupDir,
              intervalMs: config.backupIntervalMs,
              keep: config.backupKeep,
            },
            {
              beforeSnapshot: () => clicks.flush(),
              afterBackup: overrides.afterBackup ?? afterBackupHook(config, store),
            },
            metrics,
            log,
          ),
    now: Date.now,
  };
}

/** Shutdown order matters: clicks flush into the store before the store closes. */
export async function closeDeps(deps: Deps): Promise<void> {
  deps.clickFeed.close();
  deps.visitorSalts.stop();
  deps.domains.stop();
  try {
    await deps.backups?.stop();
    await deps.orphans.stop();
    await deps.clickUpkeep.stop();
    await deps.clicks.close();
    await deps.visitSplitter?.stop();
    await deps.webhooks?.stop();
    deps.webhookTargets.close();
    await deps.changeTail?.stop();
  } finally {
    await deps.sharedCache?.close();
    await deps.store.close();
    // Last: the spans of everything above are exported before the process goes.
    await deps.tracing.close();
  }
}
