// hop dlq list|show|replay|purge — the click pipeline's dead letters, in Redis. Replay puts an
// entry back on the partition it failed in (after the cause is fixed); its batch id keeps the
// count exact even if part of it had been written.
import type { Config } from '../config.ts';
import { connectRedis, untilReady } from '../redis/connect-redis.ts';
import { DeadLetters, eventsOf } from '../worker/dead-letters.ts';

const USAGE =
  'Usage: hop dlq list [--limit N] | hop dlq show <id> | hop dlq replay <id…|--all> | hop dlq purge <id…|--all>';

export async function runDlq(
  config: Config,
  args: string[],
  opts: { all: boolean; limit: number },
  out: (l: string) => void,
  err: (l: string) => void,
): Promise<number> {
  const [verb, ...ids] = args;
  const needsIds = verb === 'replay' || verb === 'purge';
  if (
    (verb !== 'list' && verb !== 'show' && !needsIds) ||
    (verb === 'show' && ids.length !== 1) ||
    (needsIds && (ids.length === 0) === !opts.all)
  ) {
    err(USAGE);
    return 2;
  }
  if (config.redis === null) {
    err('hop dlq needs HOP_REDIS_URL: the dead-letter stream is in Redis.');
    return 2;
  }
  const client = connectRedis(config.redis, { name: 'hop-dlq', commandTimeoutMs: 10_000 });
  client.on('error', () => {});
  await untilReady(client, 10_000);
  try {
    const dlq = new DeadLetters(client);
    if (verb === 'list') {
      const rows = await dlq.list(opts.limit);
      out(`${await dlq.count()} dead letter(s)`);
      for (const d of rows) {
        const n = eventsOf(d)?.length;
        out(
          `${d.id}\t${d.stream} ${d.entry}\t${n === undefined ? 'undecodable' : `${n} clicks`}\t${d.deliveries} deliveries\t${d.failedAt}\t${d.error}`,
        );
      }
    } else if (verb === 'show') {
      const d = await dlq.get(ids[0]!);
      if (d === null) {
        err(`No dead letter ${ids[0]}.`);
        return 1;
      }
      out(JSON.stringify({ ...d, events: eventsOf(d) }, null, 2));
    } else if (verb === 'replay') {
      const n = await dlq.replay(opts.all ? 'all' : ids);
      out(`Replayed ${n} dead letter(s) onto their partitions.`);
      if (!opts.all && n < ids.length) return 1;
    } else {
      const n = await dlq.purge(opts.all ? 'all' : ids);
      out(`Purged ${n} dead letter(s).`);
    }
    return 0;
  } finally {
    client.disconnect();
  }
}
