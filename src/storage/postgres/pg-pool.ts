// SqlClient over one PostgreSQL server: a bounded pool with a bounded wait queue, an acquire
// timeout and a statement timeout, so overload turns into a fast 503 instead of piled-up work or
// a connection storm. Failures of the server itself become HopError 'unavailable'; a per-server
// circuit breaker makes a dead server cost a request milliseconds, not a timeout. A change answers
// success only once its commit is confirmed; a commit whose outcome is unknown (the connection
// lost during it, the synchronous standby's confirmation cut short) becomes 'write_in_doubt', which
// the client settles by retrying with the same Idempotency-Key (DESIGN §12).
import pg from 'pg';
import { HopError, isHopError } from '../../domain/errors.ts';
import { type BreakerState, CircuitBreaker } from '../../resilience/circuit-breaker.ts';
import type { SqlClient, SqlResult } from '../sql/sql-client.ts';
import {
  commitsByItself,
  isSyncWaitCancelled,
  noteDriverError,
  type PgNotice,
  type ServerFailure,
  serverFailureOf,
} from './pg-failures.ts';

export interface PoolOptions {
  /** Connections at most (the pool-sizing rule: about 2 × the server's cores + its spindles). */
  readonly size: number;
  /** Callers allowed to wait for a connection; one more is refused at once. */
  readonly maxWaiting: number;
  /** Longest a caller waits for a connection before it is refused. */
  readonly acquireTimeoutMs: number;
  /** Every statement is cancelled by the server after this long. */
  readonly statementTimeoutMs: number;
  /**
   * How long a commit is awaited before the caller is answered write_in_doubt (default: the
   * statement timeout + 1 s). The commit itself is never cancelled: it keeps its connection until
   * the server answers.
   */
  readonly commitWaitMs?: number;
  /**
   * The server ends a session that sits this long inside a transaction between two statements (a
   * paused or starved process), rolling the transaction back. Without it, a process stopped while it
   * holds the outbox's commit-order lock (held to COMMIT) stops every other process's creates on
   * the shard until it runs again. A transaction body the server ended this way, before its COMMIT
   * was sent, is run once more on another connection: nothing of it was applied. So a body must keep
   * its state in its own locals, as every body in the SQL store does. Unset: no bound (the mover's
   * fence sits in a transaction on one shard while it works on another).
   */
  readonly idleInTransactionTimeoutMs?: number;
  /** The server's breaker (default: opens after 3 failures in a row; cool-downs 250 ms → 5 s). */
  readonly breaker?: { failureThreshold: number; coolDownMs: number; maxCoolDownMs: number };
}

export interface PoolStats {
  readonly total: number;
  readonly idle: number;
  readonly waiting: number;
  readonly max: number;
}

/** What the pool reports to metrics: acquire waits and refusals, and its breaker's state. */
export interface PoolObserver {
  acquired(server: string, seconds: number): void;
  refused(server: string, reason: 'queue_full' | 'timeout' | 'down' | 'breaker_open'): void;
  breaker?(server: string, state: BreakerState): void;
}

const DEFAULT_BREAKER = { failureThreshold: 3, coolDownMs: 250, maxCoolDownMs: 5_000 };
/** Longest a commit past its wait bound keeps its connection. */
const COMMIT_HOLD_MS = 60_000;
/** pg-pool's words for a caller that waited its whole acquire timeout in the queue (not a server failure). */
const QUEUE_TIMEOUT = 'timeout exceeded when trying to connect';

/** True for failures of the connection or the server; false for errors in what was asked. */
export function isServerFailure(err: unknown): boolean {
  if (isHopError(err)) return err.code === 'unavailable' || err.code === 'write_in_doubt';
  return serverFailureOf(err) !== null;
}

/**
 * A commit whose outcome is unknown. `pending`: the commit is still waiting on its connection
 * (past the wait bound); the connection is released when it settles.
 */
class InDoubt extends Error {
  readonly why: string;
  readonly pending: Promise<unknown> | null;

  constructor(why: string, cause: unknown, pending: Promise<unknown> | null = null) {
    super(why, { cause });
    this.why = why;
    this.pending = pending;
  }
}

/** Per connection: the synchronous-wait notice seen during the statement running on it. */
interface Watch {
  committing: boolean;
  cancelled: PgNotice | null;
  /** The server ended the session for sitting idle in a transaction (SQLSTATE 25P03). */
  endedIdle: boolean;
}

/** SQLSTATE of idle_in_transaction_session_timeout: the server rolled back and closed the session. */
const IDLE_IN_TRANSACTION = '25P03';

/** A transaction the server ended because it sat idle (see idleInTransactionTimeoutMs). */
class EndedIdle extends Error {}

// PostgreSQL bigint (int8) arrives as a string by default, as PGlite's does for the SQL store;
// timestamps as Date, jsonb parsed: the SQL store reads both drivers' rows alike.

export class PgPool implements SqlClient {
  readonly name: string;
  readonly url: string;
  private readonly pool: pg.Pool;
  private readonly opts: PoolOptions;
  private readonly observer: PoolObserver | null;
  private readonly breaker: CircuitBreaker;
  /** Client-side bound on a statement: a little after the server would have cancelled it. */
  private readonly queryTimeoutMs: number;
  private readonly commitWaitMs: number;
  private readonly watches = new WeakMap<pg.ClientBase, Watch>();
  /**
   * Bumped by every failure of the server: a connection made before the last one is discarded at
   * checkout instead of being tried (a server that went away leaves only dead sockets behind).
   */
  private generation = 0;
  private readonly born = new WeakMap<pg.ClientBase, number>();
  /** The half-open breaker's probe is under way. */
  private probing = false;
  private closed = false;

  constructor(name: string, url: string, opts: PoolOptions, observer: PoolObserver | null = null) {
    this.name = name;
    this.url = url;
    this.opts = opts;
    this.observer = observer;
    this.queryTimeoutMs = opts.statementTimeoutMs + 1_000;
    this.commitWaitMs = opts.commitWaitMs ?? this.queryTimeoutMs;
    this.breaker = new CircuitBreaker({
      ...(opts.breaker ?? DEFAULT_BREAKER),
      onChange: (state) => observer?.breaker?.(name, state),
    });
    this.pool = new pg.Pool({
      connectionString: url,
      max: opts.size,
      connectionTimeoutMillis: opts.acquireTimeoutMs,
      idleTimeoutMillis: 30_000,
      statement_timeout: opts.statementTimeoutMs,
      ...(opts.idleInTransactionTimeoutMs === undefined
        ? {}
        : { idle_in_transaction_session_timeout: opts.idleInTransactionTimeoutMs }),
      // No pool-wide query_timeout: each statement gets its own (statement() and commit() below),
      // because a commit must not be abandoned the way a slow read is.
      application_name: 'hop',
      keepAlive: true,
    });
    // An idle connection the server dropped: the pool discards it; the next query reconnects.
    this.pool.on('error', () => {});
    this.pool.on('connect', (client) => {
      this.born.set(client, this.generation);
      const watch: Watch = { committing: false, cancelled: null, endedIdle: false };
      this.watches.set(client, watch);
      // A server that dies between two queries on a checked-out connection reports it as an event;
      // without a listener that would crash the process. The next query on it fails and says so.
      client.on('error', (err: Error & { code?: string }) => {
        if (err.code === IDLE_IN_TRANSACTION) watch.endedIdle = true;
      });
      // The notice arrives before the statement's own answer, so it is seen before the statement
      // settles.
      client.on('notice', (n) => {
        if (isSyncWaitCancelled(n, watch.committing)) watch.cancelled = n;
      });
    });
  }

  stats(): PoolStats {
    return {
      total: this.pool.totalCount,
      idle: this.pool.idleCount,
      waiting: this.pool.waitingCount,
      max: this.opts.size,
    };
  }

  get breakerState(): BreakerState {
    return this.breaker.state;
  }

  private unavailable(detail: string, cause: unknown, retryAfterS = 1): HopError {
    return new HopError('unavailable', detail, { headers: { 'retry-after': String(retryAfterS) }, cause });
  }

  /** The server failed: its breaker hears of it, and every connection made before now is suspect. */
  private serverFailed(): void {
    this.breaker.failure();
    this.generation++;
  }

  private async acquire(): Promise<pg.PoolClient> {
    if (this.closed) throw this.unavailable('The database connection is closed.', null);
    if (this.breaker.state !== 'closed') {
      // Open: refuse at once. Once the cool-down has passed, a probe of Hop's own tries the server
      // in the background, so no request waits on a server that may still be dead.
      if (!this.probing && this.breaker.allow()) void this.probe();
      this.observer?.refused(this.name, 'breaker_open');
      throw this.unavailable(
        `The database (${this.name}) is failing; Hop is not trying it for a moment. Try again shortly.`,
        null,
        Math.max(1, Math.ceil(this.breaker.retryInMs() / 1000)),
      );
    }
    if (this.pool.waitingCount >= this.opts.maxWaiting && this.pool.idleCount === 0) {
      this.observer?.refused(this.name, 'queue_full');
      throw this.unavailable(`The database (${this.name}) is busy; try again shortly.`, null);
    }
    const started = performance.now();
    try {
      const client = await this.connect();
      this.observer?.acquired(this.name, (performance.now() - started) / 1000);
      return client;
    } catch (err) {
      const queued = err instanceof Error && err.message === QUEUE_TIMEOUT;
      const timedOut = err instanceof Error && /timeout/i.test(err.message);
      this.observer?.refused(this.name, timedOut ? 'timeout' : 'down');
      throw this.unavailable(
        queued
          ? `No database connection (${this.name}) came free in ${this.opts.acquireTimeoutMs} ms; try again shortly.`
          : `The database (${this.name}) does not answer; try again shortly.`,
        err,
      );
    }
  }

  /**
   * A pooled connection made since the server last failed (older ones are discarded unused). A
   * failure to connect counts against the server; waiting for a busy pool does not.
   */
  private async connect(): Promise<pg.PoolClient> {
    for (;;) {
      let client: pg.PoolClient;
      try {
        client = await this.pool.connect();
      } catch (err) {
        if (!(err instanceof Error && err.message === QUEUE_TIMEOUT)) this.serverFailed();
        throw err;
      }
      if ((this.born.get(client) ?? -1) >= this.generation) return client;
      client.release(new Error('made before the server last failed'));
    }
  }

  /** The half-open breaker's probe: one connection and one trivial statement, its outcome reported. */
  private async probe(): Promise<void> {
    this.probing = true;
    let client: pg.PoolClient | undefined;
    try {
      client = await this.connect();
      await client.query({ text: 'SELECT 1', query_timeout: this.queryTimeoutMs } as pg.QueryConfig);
      this.breaker.success();
      client.release();
    } catch (err) {
      // connect() has reported its own failure; a busy pool says nothing either way.
      if (client !== undefined) {
        this.serverFailed();
        client.release(err instanceof Error ? err : new Error(String(err)));
      }
    } finally {
      this.probing = false;
    }
  }

  /**
   * Runs fn on one pooled connection. A connection that failed is destroyed, not reused; a server
   * failure also tells the breaker and retires the server's other connections.
   */
  private async withClient<R>(fn: (c: pg.PoolClient) => Promise<R>): Promise<R> {
    const client = await this.acquire();
    let broken: Error | undefined;
    let pending: Promise<unknown> | null = null;
    try {
      const out = await fn(client);
      this.breaker.success();
      return out;
    } catch (err) {
      const doubt = err instanceof InDoubt ? err : null;
      if (doubt?.pending) {
        // A server that does not answer a commit in time counts against it, as a lost connection
        // would (a hung server would otherwise hold every connection without opening the breaker).
        pending = doubt.pending;
        this.breaker.failure();
        throw inDoubt(doubt);
      }
      // A session the server ended for idling is this request's trouble, not the server's.
      const failure = err instanceof EndedIdle ? 'busy' : serverFailureOf(doubt === null ? err : doubt.cause);
      if (failure === null) this.breaker.success();
      else {
        broken = err instanceof Error ? err : new Error(String(err));
        // A cancelled or starved statement is this request's trouble, not the server's.
        if (failure !== 'busy') this.serverFailed();
      }
      if (doubt !== null) throw inDoubt(doubt);
      if (err instanceof EndedIdle) throw this.unavailable(err.message, err);
      if (failure !== null) throw this.unavailable(failureDetail(this.name, failure), err);
      throw err;
    } finally {
      if (pending === null) client.release(broken);
      else this.releaseAfter(client, pending);
    }
  }

  /**
   * A commit past its wait bound keeps its connection (and its pool slot) until the server answers,
   * so commits waiting for an absent standby never outnumber the pool. One that has not answered in
   * COMMIT_HOLD_MS gives its slot back: closing the connection does not cancel the server's wait.
   */
  private releaseAfter(client: pg.PoolClient, pending: Promise<unknown>): void {
    let released = false;
    const release = (err?: Error) => {
      if (released) return;
      released = true;
      clearTimeout(hold);
      client.release(err);
    };
    const hold = setTimeout(() => release(new Error('the commit did not answer')), COMMIT_HOLD_MS);
    hold.unref();
    pending.then(
      () => {
        this.breaker.success();
        release();
      },
      (err: unknown) => {
        const failure = serverFailureOf(err);
        if (failure !== null && failure !== 'busy') this.serverFailed();
        release(err instanceof Error ? err : new Error(String(err)));
      },
    );
  }

  /** A statement that commits nothing by itself: bounded client-side a little after the server's timeout. */
  private async statement(
    c: pg.ClientBase,
    text: string,
    params?: readonly unknown[],
  ): Promise<pg.QueryResult> {
    const watch = this.watches.get(c);
    if (watch !== undefined) {
      watch.committing = false;
      watch.cancelled = null;
    }
    const config = {
      text,
      values: params === undefined ? undefined : [...params],
      query_timeout: this.queryTimeoutMs,
    };
    let res: pg.QueryResult;
    try {
      res = await c.query(config as pg.QueryConfig);
    } catch (err) {
      noteDriverError(err);
      throw err;
    }
    // A read that locked rows (FOR KEY SHARE) committed a transaction that waits for the standby too.
    if (watch?.cancelled) throw syncWaitCancelled(watch.cancelled, null);
    return res;
  }

  /**
   * A statement that commits: COMMIT, or a write in autocommit. Neither statement_timeout nor a
   * client-side timeout may cut its wait for the synchronous standby short: PostgreSQL disarms
   * statement_timeout before it commits (so a slow standby never turns into a cancel, which would
   * make an unreplicated commit visible), and this side sets no query timeout on it. Past the wait
   * bound the caller hears write_in_doubt while the commit goes on waiting on its connection.
   */
  private async commit(c: pg.ClientBase, text: string, params?: readonly unknown[]): Promise<pg.QueryResult> {
    const watch = this.watches.get(c);
    if (watch !== undefined) {
      watch.committing = true;
      watch.cancelled = null;
    }
    const sent = c
      .query({ text, values: params === undefined ? undefined : [...params] } as pg.QueryConfig)
      .catch((err: unknown) => {
        noteDriverError(err);
        throw err;
      });
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), this.commitWaitMs);
    });
    let outcome: { res: pg.QueryResult } | { err: unknown } | 'late';
    try {
      outcome = await Promise.race([
        sent.then(
          (res) => ({ res }),
          (err: unknown) => ({ err }),
        ),
        late,
      ]);
    } finally {
      clearTimeout(timer);
    }
    if (outcome === 'late') {
      throw new InDoubt(
        `The change is waiting for the database (${this.name}) to confirm its commit (its synchronous standby may be away), so it may or may not be applied.`,
        null,
        sent,
      );
    }
    if (watch?.cancelled) throw syncWaitCancelled(watch.cancelled, 'err' in outcome ? outcome.err : null);
    if ('err' in outcome) {
      // An answer from the server is definite (the commit failed); a lost connection is not.
      if (serverFailureOf(outcome.err) === 'lost') {
        throw new InDoubt(
          `The connection to the database (${this.name}) was lost while the change was committing, so it may or may not be applied.`,
          outcome.err,
        );
      }
      throw outcome.err;
    }
    return outcome.res;
  }

  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<SqlResult<T>> {
    return this.withClient(async (c) => {
      const res = commitsByItself(sql)
        ? await this.commit(c, sql, params)
        : await this.statement(c, sql, params);
      return { rows: res.rows as T[], affectedRows: res.rowCount ?? 0 };
    });
  }

  exec(sql: string): Promise<void> {
    return this.withClient(async (c) => {
      await this.statement(c, sql);
    });
  }

  async transaction<R>(fn: (tx: SqlClient) => Promise<R>): Promise<R> {
    try {
      return await this.transactionOnce(fn);
    } catch (err) {
      // Ended by the server for idling before its COMMIT: rolled back whole, so it runs again once.
      if (isHopError(err) && err.cause instanceof EndedIdle) return this.transactionOnce(fn);
      throw err;
    }
  }

  private transactionOnce<R>(fn: (tx: SqlClient) => Promise<R>): Promise<R> {
    return this.withClient(async (c) => {
      await this.statement(c, 'BEGIN');
      let out: R;
      try {
        out = await fn(this.txClient(c));
      } catch (err) {
        if (this.endedIdle(c, err)) throw this.idleEnd(err);
        // After a server failure the connection is destroyed, which rolls back; asking would only wait.
        if (serverFailureOf(err) === null) await this.statement(c, 'ROLLBACK').catch(() => {});
        throw err;
      }
      // Paused between its last statement and COMMIT: the server may have ended it meanwhile.
      if (this.endedIdle(c, null)) throw this.idleEnd(null);
      let res: pg.QueryResult;
      try {
        res = await this.commit(c, 'COMMIT');
      } catch (err) {
        // Ended while idle, so the server never took the COMMIT (it sent 25P03 as the answer, or the
        // connection was already closed by it): rolled back, not in doubt.
        const settled = !(err instanceof InDoubt && err.pending !== null);
        if (settled && this.endedIdle(c, err instanceof InDoubt ? err.cause : err)) throw this.idleEnd(err);
        throw err;
      }
      // A transaction a failed statement aborted answers COMMIT with ROLLBACK: never a success.
      if (res.command === 'ROLLBACK') {
        throw new Error('the transaction was rolled back at COMMIT: a statement in it had failed');
      }
      return out;
    });
  }

  private endedIdle(c: pg.ClientBase, err: unknown): boolean {
    return (
      this.watches.get(c)?.endedIdle === true ||
      (err instanceof pg.DatabaseError && err.code === IDLE_IN_TRANSACTION)
    );
  }

  private idleEnd(cause: unknown): EndedIdle {
    return new EndedIdle(
      `The database (${this.name}) ended this request's transaction: it sat idle longer than ${this.opts.idleInTransactionTimeoutMs} ms between two statements (the process was paused or starved), and nothing of it was applied; try again.`,
      { cause },
    );
  }

  /** The SqlClient a transaction body sees: its statements run on the transaction's connection. */
  private txClient(c: pg.ClientBase): SqlClient {
    const tx: SqlClient = {
      query: async <T>(sql: string, params?: readonly unknown[]) => {
        const res = await this.statement(c, sql, params);
        return { rows: res.rows as T[], affectedRows: res.rowCount ?? 0 };
      },
      exec: async (sql) => {
        await this.statement(c, sql);
      },
      // Already in one: the body simply joins it.
      transaction: (fn) => fn(tx),
      async close() {},
    };
    return tx;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}

/** `err`: how the statement failed after the notice (a termination drops the connection). */
function syncWaitCancelled(notice: PgNotice, err: unknown): InDoubt {
  return new InDoubt(
    'The change was committed on the primary, but the wait for its synchronous standby to confirm it was cut short, so it may not survive a failover.',
    err ?? notice,
  );
}

function inDoubt(d: InDoubt): HopError {
  return new HopError('write_in_doubt', `${d.why} Retry with the same Idempotency-Key.`, {
    headers: { 'retry-after': '1' },
    cause: d.cause,
  });
}

function failureDetail(name: string, failure: ServerFailure): string {
  switch (failure) {
    case 'read_only':
      return `The database (${name}) cannot take changes now (read-only: a standby, or a failover under way); try again shortly.`;
    case 'busy':
      return `The database (${name}) could not finish the request in time; try again shortly.`;
    case 'lost':
      return `The database (${name}) failed during the request; try again.`;
  }
}
