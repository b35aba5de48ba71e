// Whether a replica holds what this connection wrote (Redis WAIT). Redis replicates asynchronously,
// so a write the primary acknowledged is lost when Sentinel promotes a replica that had not received
// it: one that lagged, or had lost its link, when the primary died. A writer that must not lose a
// write (a click batch) keeps it until a replica confirms it, and writes it again (it is idempotent)
// if the connection that wrote it closes first. WAIT holds its connection until the replicas answer,
// so only connections of their own use it.
import type { RedisClient } from './connect-redis.ts';

/** How often the primary is asked how many replicas it has (INFO replication). */
const REPLICAS_CHECK_MS = 1_000;

/**
 * `held`: a replica has every write this connection made so far (or the wait is off).
 * `unconfirmed`: the writes are on the primary only, as far as is known (no replica attached, or
 * none confirmed within the wait). `failed`: the connection failed; the writes may be lost with it.
 */
export type ReplicaAnswer = 'held' | 'unconfirmed' | 'failed';

export class ReplicaAck {
  private replicas = -1;
  private checkedAt = 0;
  private readonly client: RedisClient;
  private readonly waitMs: number;

  /** `waitMs` 0: off (every write counts as held). */
  constructor(client: RedisClient, waitMs: number) {
    this.client = client;
    this.waitMs = waitMs;
  }

  get enabled(): boolean {
    return this.waitMs > 0;
  }

  async held(): Promise<ReplicaAnswer> {
    if (this.waitMs <= 0) return 'held';
    try {
      if (this.replicas < 0 || Date.now() - this.checkedAt >= REPLICAS_CHECK_MS) {
        const info = await this.client.info('replication');
        this.replicas = Number(/^connected_slaves:(\d+)/m.exec(info)?.[1] ?? 0);
        this.checkedAt = Date.now();
      }
      // With no replica attached, WAIT could only time out.
      if (this.replicas === 0) return 'unconfirmed';
      return (await this.client.wait(1, this.waitMs)) >= 1 ? 'held' : 'unconfirmed';
    } catch {
      return 'failed';
    }
  }
}
