// The shared tier on Redis (one server or a Redis Cluster): entries with a TTL plus jitter, short
// negative entries, and invalidation across processes by pub/sub. Every command goes through a
// circuit breaker: while Redis errors or times out, the tier answers "miss" at once (callers read
// through to the store) and tries Redis again after a cool-down.
import type { RedirectRecord, RedirectType } from '../domain/link.ts';
import type { RedirectRule } from '../domain/redirect-rules.ts';
import type { RedisClient } from '../redis/connect-redis.ts';
import { CircuitBreaker } from '../resilience/circuit-breaker.ts';
import type { SharedCache, SharedEntry } from './shared-cache.ts';

export interface RedisCacheOptions {
  /** Lifetime of an entry for a link. */
  readonly ttlMs: number;
  /** Lifetime of a "no such code" entry: short, so a new link is never hidden for long. */
  readonly negativeTtlMs: number;
  /** Each TTL is stretched or shrunk by up to this fraction, so entries filled together expire apart. */
  readonly jitter: number;
}

export interface RedisCacheObserver {
  command(op: string, seconds: number, ok: boolean): void;
  breaker(state: string): void;
}

const KEY_PREFIX = 'hop:link:';
export const INVALIDATION_CHANNEL = 'hop:invalidate';
// A fill this recent may have raced an invalidation (read the old row before the change, written
// after the other process's delete): when the invalidation arrives, its own writer deletes it again.
const RACE_WINDOW_MS = 10_000;
const MAX_TRACKED = 50_000;
// Invalidations that could not reach Redis are retried until they do, or until this many wait.
const MAX_PENDING = 100_000;
const RETRY_MS = 500;

interface Stored {
  /** The record, or null for "no such code". */
  r: {
    c: string;
    /** The domain; absent on the default domain. */
    o?: string;
    /** validSince (epoch ms); absent when none. */
    s?: number;
    u: string;
    t: number;
    q: boolean;
    x: number | null;
    m: number | null;
    d: boolean;
    g: number | null;
    /** Redirect rules; absent when the link has none. */
    r?: readonly RedirectRule[];
    /** The expired-link fallback; absent when none. */
    f?: string;
    /** The password's hash; absent when none. */
    p?: string;
  } | null;
  e: number;
  l: number;
}

function encode(record: RedirectRecord | null, expiresAt: number, loadMs: number): string {
  const s: Stored = {
    r:
      record === null
        ? null
        : {
            c: record.code,
            ...(record.domain === '' ? {} : { o: record.domain }),
            u: record.url,
            t: record.redirectType,
            q: record.forwardQuery,
            x: record.expiresAt?.getTime() ?? null,
            m: record.maxClicks,
            d: record.disabled,
            g: record.deletedAt?.getTime() ?? null,
            ...(record.rules === null ? {} : { r: record.rules }),
            ...(record.expiredUrl === null ? {} : { f: record.expiredUrl }),
            ...(record.validSince === null ? {} : { s: record.validSince.getTime() }),
            ...(record.passwordHash === null ? {} : { p: record.passwordHash }),
          },
    e: expiresAt,
    l: loadMs,
  };
  return JSON.stringify(s);
}

function decode(text: string): SharedEntry | undefined {
  try {
    const s = JSON.parse(text) as Stored;
    const r = s.r;
    return {
      record:
        r === null
          ? null
          : {
              code: r.c,
              domain: r.o ?? '',
              url: r.u,
              redirectType: r.t as RedirectType,
              forwardQuery: r.q,
              expiresAt: r.x === null ? null : new Date(r.x),
              maxClicks: r.m,
              disabled: r.d,
              deletedAt: r.g === null ? null : new Date(r.g),
              rules: r.r ?? null,
              expiredUrl: r.f ?? null,
              validSince: r.s === undefined ? null : new Date(r.s),
              passwordHash: r.p ?? null,
            },
      expiresAt: s.e,
      loadMs: s.l,
    };
  } catch {
    return undefined; // Not ours or damaged: a miss, and the next fill overwrites it.
  }
}

/** A stored value as an entry; a missing key (null) is a miss. */
const entryOf = (text: string | null): SharedEntry | undefined => (text === null ? undefined : decode(text));

export class RedisSharedCache implements SharedCache {
  private readonly client: RedisClient;
  private readonly subscriber: RedisClient;
  private readonly opts: RedisCacheOptions;
  private readonly observer: RedisCacheObserver | null;
  private readonly breaker: CircuitBreaker;
  private readonly handlers: ((code: string | null) => void)[] = [];
  private subscribed = false;
  private everSubscribed = false;
  /** Codes this process filled lately, oldest first, with when. */
  private readonly recentFills = new Map<string, number>();
  private readonly pending = new Set<string>();
  private retryTimer: NodeJS.Timeout | null = null;
  /** Lookups waiting for this turn's MGET (single server only). */
  private lookups: { keys: string[]; waiters: ((e: SharedEntry | undefined) => void)[] } | null = null;

  constructor(
    client: RedisClient,
    subscriber: RedisClient,
    opts: RedisCacheOptions,
    observer: RedisCacheObserver | null = null,
    breaker: CircuitBreaker = new CircuitBreaker({ failureThreshold: 3, coolDownMs: 1_000 }),
  ) {
    this.client = client;
    this.subscriber = subscriber;
    this.opts = opts;
    this.observer = observer;
    this.breaker = breaker;
    subscriber.on('message', (channel: string, code: string) => {
      if (channel !== INVALIDATION_CHANNEL) return;
      const filled = this.recentFills.get(code);
      if (filled !== undefined && Date.now() - filled < RACE_WINDOW_MS) {
        this.recentFills.delete(code);
        void this.run('del', () => this.client.del(KEY_PREFIX + code));
      }
      for (const h of this.handlers) h(code);
    });
    // Messages published while the subscription was down are lost: whoever holds copies drops
    // them, when it goes down and again when it is back (ioredis subscribes again by itself).
    subscriber.on('ready', () => {
      if (this.everSubscribed) {
        this.missedInvalidations();
        // A single server's client subscribes again by itself; a Cluster client does not after
        // every node restarted. Subscribing twice is harmless.
        subscriber.subscribe(INVALIDATION_CHANNEL).catch(() => {});
      }
      this.subscribed = true;
      this.everSubscribed = true;
    });
    subscriber.on('close', () => {
      if (this.subscribed) this.missedInvalidations();
      this.subscribed = false;
    });
    subscriber.on('error', () => {});
    client.on('error', () => {});
    subscriber.subscribe(INVALIDATION_CHANNEL).catch(() => {});
  }

  private missedInvalidations(): void {
    for (const h of this.handlers) h(null);
  }

  get healthy(): boolean {
    return this.breaker.state !== 'open' && this.subscribed;
  }

  get breakerState(): string {
    return this.breaker.state;
  }

  /**
   * Runs a command through the breaker; undefined when the breaker refused it or it failed.
   * Plain promise chaining, no async frames: this is on every L2 lookup.
   */
  private run<T>(op: string, fn: () => Promise<T>): Promise<T | undefined>;
  private run<T, R>(op: string, fn: () => Promise<T>, then: (out: T) => R): Promise<R | undefined>;
  private run<T, R>(op: string, fn: () => Promise<T>, then?: (out: T) => R): Promise<R | T | undefined> {
    if (!this.breaker.allow()) return Promise.resolve(undefined);
    const started = performance.now();
    const before = this.breaker.state;
    let pending: Promise<T>;
    try {
      pending = fn();
    } catch (err) {
      pending = Promise.reject(err);
    }
    // `then` runs in the same step as the accounting: one promise fewer per lookup.
    return pending.then(
      (out) => {
        this.breaker.success();
        this.ran(op, started, true, before);
        return then === undefined ? out : then(out);
      },
      () => {
        this.breaker.failure();
        this.ran(op, started, false, before);
        return undefined;
      },
    );
  }

  private ran(op: string, started: number, ok: boolean, before: string): void {
    this.observer?.command(op, (performance.now() - started) / 1000, ok);
    if (this.breaker.state !== before) this.observer?.breaker(this.breaker.state);
  }

  get(code: string): Promise<SharedEntry | undefined> {
    if (this.client.isCluster) {
      // A Cluster refuses an MGET whose keys live in different slots, as link keys do.
      return this.run('get', () => this.client.get(KEY_PREFIX + code), entryOf);
    }
    return new Promise((resolve) => {
      if (this.lookups === null) {
        this.lookups = { keys: [], waiters: [] };
        setImmediate(() => this.lookUp());
      }
      this.lookups.keys.push(KEY_PREFIX + code);
      this.lookups.waiters.push(resolve);
    });
  }

  /**
   * The lookups of one turn of the event loop as one MGET: one command, one reply and one round of
   * bookkeeping for all of them. Under load a turn brings a dozen redirects or more, and each
   * command costs about as much as the rest of an L2 hit.
   */
  private lookUp(): void {
    const { keys, waiters } = this.lookups!;
    this.lookups = null;
    void this.run('mget', () => this.client.mget(keys)).then((texts) => {
      for (let i = 0; i < waiters.length; i++) waiters[i]!(entryOf(texts?.[i] ?? null));
    });
  }

  async set(code: string, record: RedirectRecord | null, loadMs: number): Promise<void> {
    const base = record === null ? this.opts.negativeTtlMs : this.opts.ttlMs;
    const ttl = Math.max(1, Math.round(base * (1 + this.opts.jitter * (2 * Math.random() - 1))));
    const value = encode(record, Date.now() + ttl, loadMs);
    this.noteFill(code);
    await this.run('set', () => this.client.set(KEY_PREFIX + code, value, 'PX', ttl));
  }

  private noteFill(code: string): void {
    const now = Date.now();
    this.recentFills.delete(code);
    this.recentFills.set(code, now);
    for (const [c, t] of this.recentFills) {
      if (now - t < RACE_WINDOW_MS && this.recentFills.size <= MAX_TRACKED) break;
      this.recentFills.delete(c);
    }
  }

  async invalidate(code: string): Promise<void> {
    if (!(await this.deliver(code))) this.retryLater(code);
  }

  private async deliver(code: string): Promise<boolean> {
    const deleted = await this.run('del', () => this.client.del(KEY_PREFIX + code));
    const published = await this.run('publish', () => this.client.publish(INVALIDATION_CHANNEL, code));
    return deleted !== undefined && published !== undefined;
  }

  /**
   * A change Redis did not hear of: its entry (should Redis still hold it) would be served until
   * its TTL, so the invalidation is sent again until it gets through.
   */
  private retryLater(code: string): void {
    if (this.pending.size < MAX_PENDING) this.pending.add(code);
    if (this.retryTimer !== null) return;
    this.retryTimer = setInterval(() => {
      const codes = [...this.pending];
      this.pending.clear();
      void Promise.all(
        codes.map(async (c) => {
          if (!(await this.deliver(c))) this.pending.add(c);
        }),
      ).then(() => {
        if (this.pending.size === 0 && this.retryTimer !== null) {
          clearInterval(this.retryTimer);
          this.retryTimer = null;
        }
      });
    }, RETRY_MS);
    this.retryTimer.unref();
  }

  onInvalidate(handler: (code: string | null) => void): void {
    this.handlers.push(handler);
  }

  async close(): Promise<void> {
    if (this.retryTimer !== null) clearInterval(this.retryTimer);
    this.handlers.length = 0;
    this.subscriber.disconnect();
    this.client.disconnect();
  }
}
