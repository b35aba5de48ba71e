// One way to reach Redis for every part that uses it (cache, rate limits, invalidation): a single
// server or a Redis Cluster, failing fast while disconnected (no offline queue) so that callers'
// breakers and fallbacks see an outage at once instead of a pile of queued commands.
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { RedisTarget } from '../config.ts';

export type RedisClient = Redis | Cluster;

export interface RedisConnectOptions {
  readonly commandTimeoutMs: number;
  /** Shown in CLIENT LIST. */
  readonly name: string;
  /** Subscribers must queue their SUBSCRIBE until connected; everything else fails fast. */
  readonly subscriber?: boolean;
  /** A connection for blocking reads (XREADGROUP … BLOCK). */
  readonly blocking?: boolean;
}

/** Reconnects forever, quickly at first, then every 2 s. */
const retry = (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2_000);

export function connectRedis(target: RedisTarget, opts: RedisConnectOptions): RedisClient {
  const base: RedisOptions = {
    connectionName: opts.name,
    commandTimeout: opts.commandTimeoutMs,
    connectTimeout: Math.max(1_000, opts.commandTimeoutMs * 4),
    maxRetriesPerRequest: opts.subscriber ? null : 0,
    enableOfflineQueue: opts.subscriber ?? false,
    retryStrategy: retry,
    lazyConnect: false,
  };
  if (target.kind === 'single') {
    // Commands issued in the same tick leave in one write: at thousands of lookups a second, one
    // syscall per GET was a third of Hop's CPU on the L2 path. Not for connections that subscribe
    // or block (their commands wait on the server), and not on a Cluster, where ioredis fails
    // auto-pipelined commands issued before its slot map is loaded.
    return new Redis(target.url, {
      ...base,
      enableAutoPipelining: !opts.subscriber && opts.blocking !== true,
    });
  }
  return new Cluster([...target.nodes], {
    redisOptions: { ...base, ...(target.password === null ? {} : { password: target.password }) },
    enableOfflineQueue: opts.subscriber ?? false,
    clusterRetryStrategy: retry,
    // Keys are hash-tagged where one operation spans several; reads go to masters (no stale replica reads).
    scaleReads: 'master',
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
