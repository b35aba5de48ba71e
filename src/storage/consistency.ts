// Read-your-writes across replicas (DESIGN §8). A write notes the WAL position its shard reached;
// the answer carries it as an opaque token (header Hop-Consistency, cookie hop_ct); a read that
// presents it is served only by a replica that has replayed that far, or by the primary. The
// request's token travels in an AsyncLocalStorage scope, so routes and use cases stay unaware.
import { AsyncLocalStorage } from 'node:async_hooks';

export const CONSISTENCY_HEADER = 'hop-consistency';
export const CONSISTENCY_COOKIE = 'hop_ct';

/** WAL positions ("16/B374D848") as one comparable number. */
export function parseLsn(text: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text);
  if (m === null) throw new Error(`not a WAL position: ${JSON.stringify(text)}`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

export interface ConsistencyToken {
  /** The shard map version the positions belong to: after a bucket moves, old positions mean nothing. */
  readonly mapVersion: number;
  readonly positions: ReadonlyMap<number, bigint>;
}

export function encodeToken(t: ConsistencyToken): string {
  const parts = [...t.positions].sort(([a], [b]) => a - b).map(([s, l]) => `${s}:${l.toString(16)}`);
  return Buffer.from(`1|${t.mapVersion}|${parts.join(',')}`).toString('base64url');
}

/** The token, or null for anything that is not one (a stale or forged token is merely ignored). */
export function decodeToken(raw: string): ConsistencyToken | null {
  if (raw.length > 2048) return null;
  const m = /^1\|(\d{1,9})\|((?:\d{1,4}:[0-9a-f]{1,16},?)*)$/.exec(Buffer.from(raw, 'base64url').toString());
  if (m === null) return null;
  const positions = new Map<number, bigint>();
  for (const p of m[2]!.split(',')) {
    if (p === '') continue;
    const [s, l] = p.split(':') as [string, string];
    positions.set(Number(s), BigInt(`0x${l}`));
  }
  return { mapVersion: Number(m[1]), positions };
}

/** What one request has read against and written. */
export class RequestConsistency {
  readonly presented: ConsistencyToken | null;
  private readonly written = new Map<number, bigint>();
  private writtenVersion = 0;

  constructor(presented: ConsistencyToken | null) {
    this.presented = presented;
  }

  /** The position a read of `shard` must see, under map `mapVersion`. */
  required(shard: number, mapVersion: number): bigint | null {
    const own = this.written.get(shard) ?? null;
    const seen =
      this.presented?.mapVersion === mapVersion ? (this.presented.positions.get(shard) ?? null) : null;
    if (own === null) return seen;
    return seen === null || own > seen ? own : seen;
  }

  noteWrite(shard: number, lsn: bigint, mapVersion: number): void {
    const prev = this.written.get(shard);
    if (prev === undefined || lsn > prev) this.written.set(shard, lsn);
    this.writtenVersion = mapVersion;
  }

  /** The token to hand back after a write: what was presented (same map) plus what was written. */
  tokenToReturn(): ConsistencyToken | null {
    if (this.written.size === 0) return null;
    const positions = new Map<number, bigint>();
    if (this.presented?.mapVersion === this.writtenVersion) {
      for (const [s, l] of this.presented.positions) positions.set(s, l);
    }
    for (const [s, l] of this.written) {
      const p = positions.get(s);
      if (p === undefined || l > p) positions.set(s, l);
    }
    return { mapVersion: this.writtenVersion, positions };
  }
}

const scope = new AsyncLocalStorage<RequestConsistency>();
// Scopes not yet ended. While there are none the storage is switched off: an AsyncLocalStorage that
// has ever been entered makes Node (before AsyncContextFrame, the default from 24 on) run a hook for
// every promise and async resource in the process, redirects included (a chain of six promises
// measured 0.7 µs without it, 2.0 µs with it). Disabling with no scope open loses no request's context.
let open = 0;

export interface ConsistencyScope {
  /** Runs fn, and everything it starts, in the scope. */
  run(fn: () => void): void;
  /** The scope is over (the request is answered); calling it again does nothing. */
  end(): void;
}

export function openConsistency(ctx: RequestConsistency): ConsistencyScope {
  open++;
  let ended = false;
  return {
    run: (fn) => scope.run(ctx, fn),
    end: () => {
      if (ended) return;
      ended = true;
      if (--open === 0) scope.disable();
    },
  };
}

/** Runs fn in ctx's scope; the scope ends when fn returns or its promise settles. */
export function runWithConsistency<R>(ctx: RequestConsistency, fn: () => R): R {
  const s = openConsistency(ctx);
  let result: R | undefined;
  try {
    s.run(() => {
      result = fn();
    });
  } catch (err) {
    s.end();
    throw err;
  }
  if (result instanceof Promise) result.then(s.end, s.end);
  else s.end();
  return result as R;
}

/** The current request's consistency, or null outside a request (CLI, jobs, the redirect path). */
export function currentConsistency(): RequestConsistency | null {
  return scope.getStore() ?? null;
}
