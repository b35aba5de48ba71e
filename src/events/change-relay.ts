// The outbox relay (DESIGN §6): per shard, one relay at a time (a lease in Redis) reads the
// outbox after the change stream's last seq, appends those changes in order, and marks them
// published. Its position is the stream's own last seq, so a restart resumes exactly where the
// stream ends: no gap, no reordering, and (the append script skips seqs already there) no
// duplicate even when a relay that lost its lease is still running. `hop worker` runs it. With
// tracing on, each batch it relays is a producer span (polls that find nothing make none).
import type { Logger } from '../logger.ts';
import type { RedisClient } from '../redis/connect-redis.ts';
import type { LinkStore } from '../storage/ports.ts';
import { NO_TRACING, type Tracing } from '../tracing/tracing.ts';
import { APPEND_CHANGES_SCRIPT, changeStreamKey, encodeChange, lastPublishedSeq } from './change-stream.ts';

export interface ChangeRelayOptions {
  /** Who holds a lease (unique per process). */
  readonly owner: string;
  readonly pollMs: number;
  readonly batch: number;
  readonly leaseMs: number;
}

export interface ChangeRelayObserver {
  published(shard: number, changes: number, lastSeq: number): void;
}

const leaseKey = (shard: number) => `hop:relay:{${shard}}`;
// Renews the lease when it is ours, takes it when it is free; 1 when held afterwards.
const LEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
`;
const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

export class ChangeRelay {
  private running = false;
  /** Per shard, the highest seq this relay saw in the stream: a stream found shorter lost entries. */
  private readonly highest = new Map<number, number>();
  private loops: Promise<void>[] = [];
  private readonly client: RedisClient;
  private readonly store: Pick<LinkStore, 'readChanges' | 'markChangesPublished' | 'changeStreams'>;
  private readonly opts: ChangeRelayOptions;
  private readonly observer: ChangeRelayObserver | null;
  private readonly log: Logger;
  private readonly tracing: Tracing;

  constructor(
    client: RedisClient,
    store: Pick<LinkStore, 'readChanges' | 'markChangesPublished' | 'changeStreams'>,
    opts: ChangeRelayOptions,
    log: Logger,
    observer: ChangeRelayObserver | null = null,
    tracing: Tracing = NO_TRACING,
  ) {
    this.tracing = tracing;
    this.client = client;
    this.store = store;
    this.opts = opts;
    this.log = log;
    this.observer = observer;
  }

  start(): void {
    this.running = true;
    this.grow();
  }

  /** One loop per change stream; called again when a reshard adds a shard. */
  grow(): void {
    while (this.running && this.loops.length < this.store.changeStreams)
      this.loops.push(this.run(this.loops.length));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    for (let shard = 0; shard < this.loops.length; shard++) {
      await this.client.eval(RELEASE_SCRIPT, 1, leaseKey(shard), this.opts.owner).catch(() => {});
    }
  }

  private async run(shard: number): Promise<void> {
    while (this.running) {
      let idle = true;
      try {
        const held = await this.client.eval(
          LEASE_SCRIPT,
          1,
          leaseKey(shard),
          this.opts.owner,
          this.opts.leaseMs,
        );
        if (held === 1) idle = (await this.relayOnce(shard)) === 0;
      } catch (err) {
        this.log.warn({ err, shard }, 'change relay failed; retrying');
      }
      if (idle && this.running) await new Promise((r) => setTimeout(r, this.opts.pollMs));
    }
  }

  /** Appends the next batch of the shard's outbox; how many changes it read. */
  async relayOnce(shard: number): Promise<number> {
    const started = Date.now();
    const after = await lastPublishedSeq(this.client, shard);
    const seen = this.highest.get(shard) ?? 0;
    if (after < seen) {
      // A Redis failover to a replica that had not received the last appends: they are appended
      // again from the outbox below. Invalidations sent in that window may be lost as well.
      this.log.warn(
        { shard, streamSeq: after, relayedSeq: seen },
        'the change stream lost entries (a Redis failover?); republishing them from the outbox. Cache entries of links changed then may be stale: run hop replay --into cache --from <a minute before the failover>',
      );
    }
    this.highest.set(shard, after);
    const changes = await this.store.readChanges(after, this.opts.batch, shard);
    if (changes.length === 0) return 0;
    const key = changeStreamKey(shard);
    const opts = {
      kind: 'producer',
      parent: null,
      startTime: started,
      attributes: {
        'messaging.system': 'redis',
        'messaging.operation.type': 'send',
        'messaging.destination.name': key,
        'messaging.batch.message_count': changes.length,
        'hop.change.first_seq': changes[0]!.seq,
        'hop.change.last_seq': changes[changes.length - 1]!.seq,
      },
    } as const;
    return this.tracing.withSpan(`send ${key}`, opts, async (span) => {
      const args = changes.flatMap((c) => [String(c.seq), encodeChange(c)]);
      const [appended, last] = (await this.client.eval(APPEND_CHANGES_SCRIPT, 1, key, ...args)) as [
        number,
        number,
      ];
      await this.store.markChangesPublished(last, shard);
      this.highest.set(shard, Math.max(this.highest.get(shard) ?? 0, last));
      span.setAttribute('hop.change.appended', appended);
      this.observer?.published(shard, appended, last);
      return changes.length;
    });
  }
}
