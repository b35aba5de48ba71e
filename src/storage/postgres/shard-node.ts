// One shard: its primary and its streaming replicas, with the health and lag of each replica
// checked on an interval. Reads pick a replica that is in rotation (and far enough along for the
// request's consistency token); writes go to the primary.

import { parseLsn } from '../consistency.ts';
import type { SqlStore } from '../sql/sql-store.ts';
import type { PgPool } from './pg-pool.ts';

export interface ReplicaPolicy {
  readonly maxLagMs: number;
  readonly maxLagBytes: number;
  readonly checkMs: number;
  /** The primary takes its turn in the read rotation too (else it reads only when no replica can). */
  readonly primaryReads: boolean;
}

export interface ReplicaView {
  readonly name: string;
  readonly up: boolean;
  readonly inRotation: boolean;
  readonly lagMs: number | null;
  readonly lagBytes: number | null;
  readonly replayLsn: bigint | null;
  readonly lastError: string | null;
}

export class Replica {
  readonly pool: PgPool;
  readonly store: SqlStore;
  up = false;
  lagMs: number | null = null;
  lagBytes: number | null = null;
  replayLsn: bigint | null = null;
  lastError: string | null = null;
  inRotation = false;

  constructor(pool: PgPool, store: SqlStore) {
    this.pool = pool;
    this.store = store;
  }

  /** A query failed: out of rotation until the next check finds it healthy again. */
  markDown(err: unknown): void {
    this.up = false;
    this.inRotation = false;
    this.lastError = err instanceof Error ? err.message : String(err);
  }

  view(): ReplicaView {
    return {
      name: this.pool.name,
      up: this.up,
      inRotation: this.inRotation,
      lagMs: this.lagMs,
      lagBytes: this.lagBytes,
      replayLsn: this.replayLsn,
      lastError: this.lastError,
    };
  }
}

// How far back primary positions are remembered to time a replica's lag.
const LSN_HISTORY = 600;

export class ShardNode {
  readonly index: number;
  readonly primary: PgPool;
  readonly primaryStore: SqlStore;
  readonly replicas: Replica[];
  primaryUp = true;
  private readonly policy: ReplicaPolicy;
  private next = 0;
  private timer: NodeJS.Timeout | null = null;
  private checking: Promise<void> | null = null;
  /** (time, primary WAL position) samples: a replica's lag is the age of the oldest it has not replayed. */
  private readonly history: { at: number; lsn: bigint }[] = [];
  private probeRunning: Promise<bigint> | null = null;
  private probeNext: Promise<bigint> | null = null;

  constructor(
    index: number,
    primary: PgPool,
    primaryStore: SqlStore,
    replicas: Replica[],
    policy: ReplicaPolicy,
  ) {
    this.index = index;
    this.primary = primary;
    this.primaryStore = primaryStore;
    this.replicas = replicas;
    this.policy = policy;
  }

  /**
   * A replica in rotation that has replayed at least `minLsn`, round-robin; null: use the primary.
   * With primaryReads, the primary is one more member of the rotation.
   */
  pickReplica(minLsn: bigint | null, forReads = true): Replica | null {
    const n = this.replicas.length;
    const slots = forReads && this.policy.primaryReads && n > 0 ? n + 1 : n;
    for (let i = 0; i < slots; i++) {
      const slot = (this.next + i) % slots;
      if (slot === n) {
        if (!this.primaryUp) continue;
        this.next = (slot + 1) % slots;
        return null;
      }
      const r = this.replicas[slot]!;
      if (!r.inRotation) continue;
      if (minLsn !== null && (r.replayLsn === null || r.replayLsn < minLsn)) continue;
      this.next = (slot + 1) % slots;
      return r;
    }
    return null;
  }

  /**
   * The primary's WAL position after a write that has already committed: one probe serves every
   * caller that asked before it was sent, and a caller arriving while one runs waits for the next,
   * whose answer is sure to include its write.
   */
  lsnAfterWrite(): Promise<bigint> {
    if (this.probeRunning === null) {
      this.probeRunning = this.probe().finally(() => {
        this.probeRunning = null;
      });
      return this.probeRunning;
    }
    if (this.probeNext === null) {
      const after = this.probeRunning.catch(() => 0n);
      this.probeNext = after.then(() => {
        this.probeNext = null;
        return this.lsnAfterWrite();
      });
    }
    return this.probeNext;
  }

  private async probe(): Promise<bigint> {
    const res = await this.primary.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
    return parseLsn(res.rows[0]!.lsn);
  }

  start(): void {
    if (this.replicas.length === 0 || this.timer !== null) return;
    const tick = () => {
      this.timer = setTimeout(() => {
        this.checking = this.check().finally(() => {
          this.checking = null;
          if (this.timer !== null) tick();
        });
      }, this.policy.checkMs);
      this.timer.unref();
    };
    tick();
  }

  async stop(): Promise<void> {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    await this.checking;
  }

  /** One round of health checks: the primary's position, then every replica's replay position. */
  async check(): Promise<void> {
    const now = Date.now();
    try {
      const lsn = await this.probe();
      this.primaryUp = true;
      this.history.push({ at: now, lsn });
      if (this.history.length > LSN_HISTORY) this.history.shift();
    } catch {
      this.primaryUp = false;
    }
    await Promise.all(this.replicas.map((r) => this.checkReplica(r, now)));
  }

  private async checkReplica(r: Replica, now: number): Promise<void> {
    try {
      const res = await r.pool.query<{ recovering: boolean; replay: string | null }>(
        'SELECT pg_is_in_recovery() AS recovering, pg_last_wal_replay_lsn()::text AS replay',
      );
      const row = res.rows[0]!;
      if (!row.recovering || row.replay === null) {
        r.markDown(new Error('not a streaming replica (not in recovery)'));
        return;
      }
      r.up = true;
      r.lastError = null;
      r.replayLsn = parseLsn(row.replay);
      const newest = this.history.at(-1);
      const behind = this.history.find((h) => h.lsn > r.replayLsn!);
      r.lagBytes = newest === undefined ? null : Math.max(0, Number(newest.lsn - r.replayLsn));
      // With the primary down nothing new is written, so what the replica holds is all there is.
      r.lagMs = behind === undefined || !this.primaryUp ? 0 : now - behind.at;
      // A lagging replica is still the best there is while the primary is down.
      r.inRotation =
        !this.primaryUp ||
        (r.lagMs <= this.policy.maxLagMs && (r.lagBytes === null || r.lagBytes <= this.policy.maxLagBytes));
    } catch (err) {
      r.markDown(err);
    }
  }
}
