// hop replay — rebuild derived state from the change stream in Redis (DESIGN §6):
//   --into cache              fill a cold Redis cache with every link's latest state;
//   --into postgres://… --shard N
//                             bring a shard database restored from a base copy up to date: the
//                             changes after the newest one it holds, applied in order.
// See docs/runbooks/restore-a-shard.md. With tracing on, the run is one trace: a root span, the
// stream reads and store writes under it (the cache's per-link writes as one span per batch).
import { RedisSharedCache } from '../cache/redis-cache.ts';
import type { Config } from '../config.ts';
import { linkKey } from '../domain/domains.ts';
import type { Link } from '../domain/link.ts';
import { readChangeStream } from '../events/change-stream.ts';
import { connectRedis, untilReady } from '../redis/connect-redis.ts';
import type { ChangeEvent } from '../storage/ports.ts';
import { PgPool } from '../storage/postgres/pg-pool.ts';
import { SqlStore } from '../storage/sql/sql-store.ts';
import { traceStore } from '../tracing/adapter-spans.ts';
import { openTracing } from '../tracing/open-tracing.ts';
import type { Span, Tracing } from '../tracing/tracing.ts';

const USAGE =
  'Usage: hop replay --into cache [--from SEQ|TIME] | hop replay --into postgres://… --shard N [--from SEQ]';
const BATCH = 500;

function parseFrom(raw: string | undefined): { afterSeq: number; since?: Date } | null {
  if (raw === undefined) return { afterSeq: 0 };
  if (/^\d+$/.test(raw)) return { afterSeq: Number(raw) - 1 };
  const t = new Date(raw);
  return Number.isNaN(t.getTime()) ? null : { afterSeq: 0, since: t };
}

export async function runReplay(
  config: Config,
  opts: { into: string | undefined; shard: string | undefined; from: string | undefined },
  out: (l: string) => void,
  err: (l: string) => void,
): Promise<number> {
  const from = parseFrom(opts.from);
  const intoCache = opts.into === 'cache';
  const intoDb = opts.into !== undefined && /^postgres(ql)?:\/\//.test(opts.into);
  const shard = opts.shard === undefined ? null : Number(opts.shard);
  if (from === null || (!intoCache && !intoDb) || (intoDb && (shard === null || !Number.isInteger(shard)))) {
    err(USAGE);
    return 2;
  }
  if (config.redis === null) {
    err('hop replay needs HOP_REDIS_URL: the change stream is in Redis.');
    return 2;
  }
  const tracing = await openTracing(config.tracing, { serviceName: 'hop', logLevel: config.logLevel });
  const attributes = {
    'hop.replay.into': intoCache ? 'cache' : 'postgres',
    ...(shard === null ? {} : { 'hop.replay.shard': shard }),
    ...(opts.from === undefined ? {} : { 'hop.replay.from': opts.from }),
  };
  try {
    return await tracing.withSpan('hop replay', { parent: null, attributes }, (span) =>
      replay(
        config,
        { into: opts.into, fromGiven: opts.from !== undefined, intoCache, shard, from },
        out,
        tracing,
        span,
      ),
    );
  } finally {
    await tracing.close();
  }
}

async function replay(
  config: Config,
  opts: {
    into: string | undefined;
    /** Whether --from was given (a database replays after its newest change otherwise). */
    fromGiven: boolean;
    intoCache: boolean;
    shard: number | null;
    from: { afterSeq: number; since?: Date };
  },
  out: (l: string) => void,
  tracing: Tracing,
  span: Span,
): Promise<number> {
  const { intoCache, shard, from } = opts;
  const client = connectRedis(config.redis!, { name: 'hop-replay', commandTimeoutMs: 30_000, tracing });
  client.on('error', () => {});
  await untilReady(client, 10_000);
  const started = performance.now();
  try {
    if (intoCache) {
      const shards = Math.max(1, config.databaseUrls?.length ?? 1);
      const latest = new Map<string, Link>();
      let changes = 0;
      for (let s = 0; s < shards; s++) {
        for await (const c of readChangeStream(client, s, from)) {
          latest.set(c.code, c.link);
          changes++;
        }
      }
      const subscriber = connectRedis(config.redis!, {
        name: 'hop-replay-sub',
        commandTimeoutMs: 30_000,
        subscriber: true,
      });
      const cache = new RedisSharedCache(client, subscriber, {
        ttlMs: config.redisCacheTtlMs,
        negativeTtlMs: config.negativeCacheTtlMs,
        jitter: 0.1,
      });
      // A deleted link is cached as its tombstone: it answers 404 without asking the store.
      const links = [...latest.values()];
      for (let i = 0; i < links.length; i += BATCH) {
        const some = links.slice(i, i + BATCH);
        // One span per batch, not one per link's SET.
        await tracing.withSpan(
          'replay write',
          { quiet: true, attributes: { 'hop.replay.links': some.length } },
          () => Promise.all(some.map((l) => cache.set(linkKey(l.domain, l.code), l, 0))),
        );
      }
      await cache.close();
      span.setAttribute('hop.replay.changes_read', changes);
      span.setAttribute('hop.replay.links', links.length);
      const s = (performance.now() - started) / 1000;
      out(
        `Warmed the cache with ${links.length} links from ${changes} changes in ${s.toFixed(1)} s (${Math.round(changes / s)} changes/s).`,
      );
      return 0;
    }
    const pool = new PgPool('replay-target', opts.into!, {
      size: 2,
      maxWaiting: 4,
      acquireTimeoutMs: 10_000,
      statementTimeoutMs: 60_000,
    });
    try {
      const store = traceStore(
        new SqlStore(pool, { kind: 'postgres', codeLength: config.codeLength }),
        tracing,
      );
      await store.migrate();
      const after = opts.fromGiven ? from : { afterSeq: await store.lastChangeSeq() };
      let batch: ChangeEvent[] = [];
      let read = 0;
      let applied = 0;
      for await (const c of readChangeStream(client, shard!, after)) {
        batch.push(c);
        read++;
        if (batch.length >= BATCH) {
          applied += await store.applyChanges(batch);
          batch = [];
        }
      }
      applied += await store.applyChanges(batch);
      span.setAttribute('hop.replay.changes_read', read);
      span.setAttribute('hop.replay.changes_applied', applied);
      const s = (performance.now() - started) / 1000;
      out(
        `Replayed shard ${shard}'s changes after seq ${after.afterSeq}: ${read} read, ${applied} applied in ${s.toFixed(1)} s (${Math.round(read / s)} changes/s).`,
      );
      return 0;
    } finally {
      await pool.close();
    }
  } finally {
    client.disconnect();
  }
}
