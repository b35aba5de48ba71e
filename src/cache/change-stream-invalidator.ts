// A second way invalidations reach every process (DESIGN §6): each Hop tails the change streams in
// Redis and drops its in-process copy of every link that changed. Pub/sub (redis-cache.ts) is
// faster; a message it lost while a connection blinked is still on the stream, which this reader
// resumes from the last entry it saw. It starts at the streams' ends: what changed before this
// process started is not in its L1.
import { linkKey } from '../domain/domains.ts';
import { changeStreamKey } from '../events/change-stream.ts';
import type { Logger } from '../logger.ts';
import type { RedisClient } from '../redis/connect-redis.ts';

type XReadReply = [string, [string, string[]][]][] | null;

const BLOCK_MS = 1_000;

export class ChangeStreamInvalidator {
  private running = false;
  private positioned = 0;
  private onPositioned: (() => void) | null = null;
  /** Resolves once every stream's reader knows where the stream ended when it started. */
  readonly started: Promise<void> = new Promise((resolve) => {
    this.onPositioned = resolve;
  });
  private readonly loops: Promise<void>[] = [];
  private readonly readers: RedisClient[] = [];
  private readonly connect: () => RedisClient;
  private shards: number;
  private readonly forget: (code: string) => void;
  private readonly log: Logger;

  constructor(connect: () => RedisClient, shards: number, forget: (code: string) => void, log: Logger) {
    this.connect = connect;
    this.shards = shards;
    this.forget = forget;
    this.log = log;
  }

  start(): void {
    this.running = true;
    for (let s = 0; s < this.shards; s++) {
      const reader = this.connect();
      this.readers.push(reader);
      this.loops.push(this.tail(reader, changeStreamKey(s)));
    }
  }

  /** A shard added while running (a reshard): its stream is tailed too, from its end. */
  grow(shards: number): void {
    for (let s = this.shards; s < shards && this.running; s++) {
      const reader = this.connect();
      this.readers.push(reader);
      this.loops.push(this.tail(reader, changeStreamKey(s)));
    }
    this.shards = Math.max(this.shards, shards);
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const r of this.readers) r.disconnect();
    await Promise.all(this.loops);
  }

  // One connection per shard stream: on a Redis Cluster the streams live in different slots.
  private async tail(reader: RedisClient, key: string): Promise<void> {
    // From the stream's end as it is now, then from each entry seen: '$' on every read would skip
    // what arrives between two reads.
    let last: string | null = null;
    while (this.running) {
      if (last === null) {
        try {
          const tip = (await reader.xrevrange(key, '+', '-', 'COUNT', 1)) as [string, string[]][];
          last = tip[0]?.[0] ?? '0-0';
          if (++this.positioned === this.shards) this.onPositioned?.();
        } catch {
          await new Promise((r) => setTimeout(r, 500));
          continue;
        }
      }
      try {
        const reply = (await reader.xread(
          'COUNT',
          1_000,
          'BLOCK',
          BLOCK_MS,
          'STREAMS',
          key,
          last,
        )) as XReadReply;
        for (const [id, flat] of reply?.[0]?.[1] ?? []) {
          last = id;
          const i = flat.indexOf('change');
          if (i === -1 || i % 2 !== 0) continue;
          try {
            const link = (JSON.parse(flat[i + 1]!) as { link?: { code?: unknown; domain?: unknown } }).link;
            const domain = typeof link?.domain === 'string' ? link.domain : '';
            if (typeof link?.code === 'string') this.forget(linkKey(domain, link.code));
          } catch {
            // Not a change entry Hop wrote: nothing to drop.
          }
        }
      } catch (err) {
        if (!this.running) return;
        this.log.debug({ err, key }, 'change stream read failed; retrying');
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }
}
