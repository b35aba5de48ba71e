// hop recover-links — undo an operator's mistake ("at 14:03 someone deleted a few thousand links")
// without losing what was written since. The source is a copy of the data from before the mistake:
// a backup restored into a side directory (embedded), or a shard restored to a point in time and
// started on a side port (PostgreSQL). Every link the copy holds that this store has lost — no row
// at all, or a tombstone made at or after --since — is put back as it was, each one a change event
// (so caches, webhooks and the change log see it). Links live here are left alone: they may have
// changed since. Codes stay with their own links; none is issued to anything else.
import type { Config } from '../config.ts';
import { openStore } from '../deps.ts';
import { linkKey } from '../domain/domains.ts';
import type { Link } from '../domain/link.ts';
import { openEmbeddedStore } from '../storage/embedded/open-embedded-store.ts';
import type { RestoreStatus } from '../storage/ports.ts';
import { PgPool } from '../storage/postgres/pg-pool.ts';
import { SqlStore } from '../storage/sql/sql-store.ts';

const USAGE =
  'Usage: hop recover-links --from <data dir | postgres://…> --since <ISO time> [--until <ISO time>] [--dry-run]';
const BATCH = 500;

async function openSource(from: string, codeLength: number): Promise<SqlStore> {
  if (/^postgres(ql)?:\/\//.test(from)) {
    const pool = new PgPool('recover-source', from, {
      size: 2,
      maxWaiting: 4,
      acquireTimeoutMs: 10_000,
      statementTimeoutMs: 120_000,
    });
    return new SqlStore(pool, { kind: 'postgres', codeLength });
  }
  return openEmbeddedStore({ dataDir: from, codeLength });
}

export async function runRecoverLinks(
  config: Config,
  opts: { from: string | undefined; since: string | undefined; until: string | undefined; dryRun: boolean },
  out: (l: string) => void,
  err: (l: string) => void,
): Promise<number> {
  const since = opts.since === undefined ? null : new Date(opts.since);
  const until = opts.until === undefined ? null : new Date(opts.until);
  if (
    opts.from === undefined ||
    since === null ||
    Number.isNaN(since.getTime()) ||
    (until !== null && !(until > since))
  ) {
    err(USAGE);
    return 2;
  }
  if (config.dataDir !== null && opts.from.replace(/\/+$/, '') === config.dataDir.replace(/\/+$/, '')) {
    err("--from names this Hop's own data directory: give the copy from before the mistake.");
    return 2;
  }
  const source = await openSource(opts.from, config.codeLength);
  try {
    const target = await openStore(config);
    try {
      const counts: Record<RestoreStatus | 'examined', number> = {
        examined: 0,
        recreated: 0,
        undeleted: 0,
        kept: 0,
      };
      const started = performance.now();
      let batch: Link[] = [];
      const putBack: string[] = [];
      const flush = async () => {
        if (batch.length === 0) return;
        if (opts.dryRun) {
          for (const l of batch) {
            const here = await target.getLink(linkKey(l.domain, l.code));
            counts[here === null ? 'undeleted' : 'kept']++;
          }
        } else {
          const statuses = await target.restoreLinks(batch, { from: since, to: until }, new Date());
          statuses.forEach((s, i) => {
            counts[s]++;
            if (s !== 'kept') putBack.push(linkKey(batch[i]!.domain, batch[i]!.code));
          });
        }
        batch = [];
      };
      for await (const link of source.exportLinks({ includeDeleted: false })) {
        counts.examined++;
        batch.push(link);
        if (batch.length >= BATCH) await flush();
      }
      await flush();
      // Caches may hold the tombstones: drop them in the shared tier, which tells every process.
      if (!opts.dryRun && putBack.length > 0 && config.redis !== null) await invalidate(config, putBack, err);
      const s = ((performance.now() - started) / 1000).toFixed(1);
      if (opts.dryRun) {
        out(
          `Dry run: of ${counts.examined} live links in the copy, ${counts.undeleted} are deleted or missing here (deleted before ${since.toISOString()} included), ${counts.kept} live here.`,
        );
      } else {
        out(
          `Recovered from ${opts.from}: ${counts.examined} live links examined, ${counts.undeleted} undeleted (deleted at or after ${since.toISOString()}${until === null ? '' : ` and before ${until.toISOString()}`}), ${counts.recreated} recreated (missing here), ${counts.kept} kept as they are here, in ${s} s.`,
        );
      }
      return 0;
    } finally {
      await target.close();
    }
  } finally {
    await source.close();
  }
}

async function invalidate(config: Config, keys: readonly string[], err: (l: string) => void): Promise<void> {
  const { connectRedis, untilReady } = await import('../redis/connect-redis.ts');
  const { RedisSharedCache } = await import('../cache/redis-cache.ts');
  const client = connectRedis(config.redis!, { name: 'hop-recover', commandTimeoutMs: 10_000 });
  const subscriber = connectRedis(config.redis!, {
    name: 'hop-recover-sub',
    commandTimeoutMs: 10_000,
    subscriber: true,
  });
  client.on('error', () => {});
  subscriber.on('error', () => {});
  try {
    await untilReady(client, 5_000);
    const cache = new RedisSharedCache(client, subscriber, {
      ttlMs: config.redisCacheTtlMs,
      negativeTtlMs: config.negativeCacheTtlMs,
      jitter: 0.1,
    });
    for (let i = 0; i < keys.length; i += 100)
      await Promise.all(keys.slice(i, i + 100).map((k) => cache.invalidate(k)));
    await cache.close();
  } catch (e) {
    err(
      `The links are back, but their cache entries could not be dropped (${String(e)}): they expire on their own.`,
    );
  } finally {
    client.disconnect();
    subscriber.disconnect();
  }
}
