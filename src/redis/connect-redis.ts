// One way to reach Redis for every part that uses it (cache, rate limits, invalidation, streams): a
// single server, a Redis Cluster, or the primary that Sentinels name (followed across a failover),
// failing fast while disconnected (no offline queue) so that callers' breakers and fallbacks see an
// outage at once instead of a pile of queued commands.
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { RedisTarget } from '../config.ts';
import { traceCalls } from '../tracing/traced-calls.ts';
import type { Tracing } from '../tracing/tracing.ts';
import { followSwitches } from './sentinel-watch.ts';

export type RedisClient = Redis | Cluster;

export interface RedisConnectOptions {
  readonly commandTimeoutMs: number;
  /** Shown in CLIENT LIST. */
  readonly name: string;
  /** Subscribers must queue their SUBSCRIBE until connected; everything else fails fast. */
  readonly subscriber?: boolean;
  /** A connection for blocking reads (XREADGROUP … BLOCK). */
  readonly blocking?: boolean;
  /** With tracing on: a client span for each command sent inside a traced request or job. */
  readonly tracing?: Tracing;
}

/** Reconnects forever, quickly at first, then every 2 s. */
const retry = (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2_000);
/**
 * Under Sentinel, every 0.5 s at most: a failover takes seconds, and each attempt asks the Sentinels
 * afresh, so the new primary is found soon after they promote it.
 */
const sentinelRetry = (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 500);

export function connectRedis(target: RedisTarget, opts: RedisConnectOptions): RedisClient {
  const client = openClient(target, opts);
  return opts.tracing?.enabled === true ? traceCommands(client, opts.name, opts.tracing) : client;
}

function openClient(target: RedisTarget, opts: RedisConnectOptions): RedisClient {
  const base: RedisOptions = {
    connectionName: opts.name,
    commandTimeout: opts.commandTimeoutMs,
    connectTimeout: Math.max(1_000, opts.commandTimeoutMs * 4),
    maxRetriesPerRequest: opts.subscriber ? null : 0,
    enableOfflineQueue: opts.subscriber ?? false,
    retryStrategy: retry,
    lazyConnect: false,
  };
  // Commands issued in the same tick leave in one write: at thousands of lookups a second, one
  // syscall per GET was a third of Hop's CPU on the L2 path. Not for connections that subscribe
  // or block (their commands wait on the server), and not on a Cluster, where ioredis fails
  // auto-pipelined commands issued before its slot map is loaded.
  const enableAutoPipelining = !opts.subscriber && opts.blocking !== true;
  if (target.kind === 'single') return new Redis(target.url, { ...base, enableAutoPipelining });
  if (target.kind === 'sentinel') {
    const client = new Redis({
      ...base,
      ...(target.password === null ? {} : { password: target.password }),
      enableAutoPipelining,
      sentinels: [...target.sentinels],
      name: target.name,
      role: 'master',
      retryStrategy: sentinelRetry,
      // Each (re)connection asks the Sentinels for the primary and checks its role (INFO), so a
      // replica is never taken for the primary. ioredis's failoverDetector stays off: its
      // +switch-master arriving while the client is between connections ends the client for good
      // (status 'end'; seen as a click stream that never appended again after a failover).
      // followSwitches below does its job without that race.
      failoverDetector: false,
      sentinelCommandTimeout: Math.max(1_000, opts.commandTimeoutMs * 4),
      // A write that reached a primary just demoted: reconnect, to whichever the Sentinels name now.
      reconnectOnError: (err) => err.message.startsWith('READONLY'),
    });
    followSwitches(target, client);
    return client;
  }
  return new Cluster([...target.nodes], {
    redisOptions: { ...base, ...(target.password === null ? {} : { password: target.password }) },
    enableOfflineQueue: opts.subscriber ?? false,
    clusterRetryStrategy: retry,
    // Keys are hash-tagged where one operation spans several; reads go to masters (no stale replica reads).
    scaleReads: 'master',
  });
}

/**
 * Spans for the commands called on this client (and the scripts defined on it), each from the call
 * to its reply: with auto-pipelining a command may leave in a later write, but it is the caller's
 * wait that the span shows, under the caller's span.
 */
function traceCommands(client: RedisClient, connection: string, tracing: Tracing): RedisClient {
  const commands = new Set(client.getBuiltinCommands());
  return traceCalls(client, tracing, {
    span: (method) =>
      commands.has(method) || Object.hasOwn(client.scriptsSet, method)
        ? {
            name: `redis ${method.toUpperCase()}`,
            opts: {
              kind: 'client',
              childOnly: true,
              attributes: {
                'db.system.name': 'redis',
                'db.operation.name': method.toUpperCase(),
                'hop.redis.connection': connection,
              },
            },
          }
        : null,
  });
}

/** Resolves once the client is ready, or after ms (then commands fail fast, as ever). */
export function untilReady(client: RedisClient, ms: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      client.off('ready', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    client.once('ready', done);
  });
}
