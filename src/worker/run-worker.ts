// `hop worker`: the process that turns the click stream into rollups on the shards, and relays each
// shard's outbox to the change stream in Redis (one relay per shard across all workers, by lease).
// Composition of its own (it serves no API): the PostgreSQL store, Redis, the loops, /metrics and
// /healthz on HOP_WORKER_PORT. SIGTERM finishes the entries in hand and exits; SIGKILL loses
// nothing either, since unacknowledged entries are taken over by the other workers.
import { createServer } from 'node:http';
import { hostname } from 'node:os';
import { VisitSplitter } from '../analytics/visit-splitter.ts';
import type { Config } from '../config.ts';
import { openStore } from '../deps.ts';
import { ChangeRelay } from '../events/change-relay.ts';
import { agreeOnPartitions, PartitionMismatch } from '../events/click-stream.ts';
import { createLogger } from '../logger.ts';
import { connectRedis } from '../redis/connect-redis.ts';
import { sleep } from '../resilience/backoff.ts';
import { isServerFailure } from '../storage/postgres/pg-pool.ts';
import { traceStore } from '../tracing/adapter-spans.ts';
import { openTracing } from '../tracing/open-tracing.ts';
import { ClickWorker } from './click-worker.ts';
import { createWorkerMetrics } from './worker-metrics.ts';

/** How long a read waits for new entries before the loop looks around (claims, trims, stop). */
const BLOCK_MS = 1_000;
// Commands that move whole entries (claims, dead letters) may take longer than a cache GET.
const MIN_COMMAND_TIMEOUT_MS = 5_000;
/** How often an idle relay looks for new outbox rows: the change stream trails writes by about this. */
const RELAY_POLL_MS = 200;

export class WorkerConfigError extends Error {}

export async function runWorker(config: Config, out: (line: string) => void): Promise<void> {
  const redis = config.redis;
  if (redis === null)
    throw new WorkerConfigError('hop worker needs HOP_REDIS_URL: it reads the click stream.');
  if (config.databaseUrls === null) {
    throw new WorkerConfigError(
      'hop worker needs HOP_DATABASE_URLS: with the embedded database, Hop writes its own clicks.',
    );
  }
  const tracing = await openTracing(config.tracing, { serviceName: 'hop-worker', logLevel: config.logLevel });
  const log = createLogger(config.logLevel, tracing.enabled ? () => tracing.logFields() : undefined);
  const commandTimeoutMs = Math.max(config.redisCommandTimeoutMs, MIN_COMMAND_TIMEOUT_MS);
  const client = connectRedis(redis, { name: 'hop-worker', commandTimeoutMs, tracing });
  client.on('error', () => {});
  // Redis may come up after the worker (compose, k8s): wait for it rather than exit.
  for (let attempt = 0; ; attempt++) {
    try {
      await agreeOnPartitions(client, config.clickStreamPartitions);
      break;
    } catch (err) {
      if (err instanceof PartitionMismatch) throw err;
      if (attempt % 10 === 0) log.warn({ err }, 'waiting for Redis');
      await sleep(500);
    }
  }
  const store = traceStore(await openStore(config), tracing);
  const metrics = createWorkerMetrics(client, config.clickStreamPartitions);
  const consumer = `${hostname()}-${process.pid}`;
  const worker = new ClickWorker(
    client,
    () => {
      const reader = connectRedis(redis, {
        name: 'hop-worker-reader',
        commandTimeoutMs: BLOCK_MS + commandTimeoutMs,
        blocking: true,
      });
      reader.on('error', () => {});
      return reader;
    },
    store,
    {
      partitions: config.clickStreamPartitions,
      consumer,
      readCount: config.workerReadCount,
      blockMs: BLOCK_MS,
      claimIdleMs: config.workerClaimIdleMs,
      maxDeliveries: config.workerMaxDeliveries,
      attempts: 5,
      transientRetryMs: Math.floor(config.workerClaimIdleMs / 2),
      retryBaseMs: 100,
      retryCapMs: 5_000,
      trimMs: 10_000,
      transient: isServerFailure,
    },
    metrics.observer,
    log,
    tracing,
  );
  await worker.start();
  const relay = new ChangeRelay(
    client,
    store,
    { owner: consumer, pollMs: RELAY_POLL_MS, batch: 500, leaseMs: 10_000 },
    log,
    metrics.relayObserver,
    tracing,
  );
  relay.start();
  // A reshard can add a shard, and with it a change stream to relay, while this worker runs.
  setInterval(() => relay.grow(), 1_000).unref();
  const splitter = new VisitSplitter(store, log);
  splitter.start(config.visitSplitMs);
  const server = createServer((req, res) => {
    if (req.url === '/metrics') {
      metrics.render().then(
        (m) => res.writeHead(200, { 'content-type': m.contentType }).end(m.body),
        () => res.writeHead(500).end(),
      );
    } else if (req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(config.workerPort, config.host, resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : config.workerPort;
  log.info({ consumer, partitions: config.clickStreamPartitions, port }, 'hop worker started');
  out(
    `Hop worker ${consumer} is reading ${config.clickStreamPartitions} click stream partitions; metrics at http://${config.host}:${port}/metrics`,
  );

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'worker stopping');
    const force = setTimeout(() => process.exit(1), config.shutdownTimeoutMs + 10_000);
    force.unref();
    try {
      await Promise.all([worker.stop(), relay.stop()]);
      await splitter.stop();
      server.close();
      await store.close();
      client.disconnect();
      await tracing.close();
      log.info('worker stopped cleanly');
      process.exitCode = 0;
      setTimeout(() => process.exit(), 200).unref();
    } catch (err) {
      log.error({ err }, 'worker shutdown failed');
      process.exit(1);
    }
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}
