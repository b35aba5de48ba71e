// SqlClient over one PostgreSQL server: a bounded pool with a bounded wait queue, an acquire
// timeout and a statement timeout, so overload turns into a fast 503 instead of piled-up work or
// a connection storm. Failures of the server itself become HopError 'unavailable'.
import pg from 'pg';
import { HopError, isHopError } from '../../domain/errors.ts';
import type { SqlClient, SqlResult } from '../sql/sql-client.ts';

export interface PoolOptions {
  /** Connections at most (the pool-sizing rule: about 2 × the server's cores + its spindles). */
  readonly size: number;
  /** Callers allowed to wait for a connection; one more is refused at once. */
  readonly maxWaiting: number;
  /** Longest a caller waits for a connection before it is refused. */
  readonly acquireTimeoutMs: number;
  /** Every statement is cancelled by the server after this long. */
  readonly statementTimeoutMs: number;
}

export interface PoolStats {
  readonly total: number;
  readonly idle: number;
  readonly waiting: number;
  readonly max: number;
}

/** What the pool reports to metrics: acquire waits and refusals. */
export interface PoolObserver {
  acquired(server: string, seconds: number): void;
  refused(server: string, reason: 'queue_full' | 'timeout' | 'down'): void;
}

const RETRY_AFTER = { 'retry-after': '1' };

/** SQLSTATE classes that mean "the server cannot serve now", not "the statement is wrong". */
const UNAVAILABLE_STATES = /^(08|53|57)/;

/** True for failures of the connection or the server; false for errors in what was asked. */
export function isServerFailure(err: unknown): boolean {
  if (isHopError(err)) return err.code === 'unavailable';
  if (err instanceof pg.DatabaseError) return UNAVAILABLE_STATES.test(err.code ?? '');
  return err instanceof Error;
}

// PostgreSQL bigint (int8) arrives as a string by default, as PGlite's does for the SQL store;
// timestamps as Date, jsonb parsed: the SQL store reads both drivers' rows alike.

export class PgPool implements SqlClient {
  readonly name: string;
  readonly url: string;
  private readonly pool: pg.Pool;
  private readonly opts: PoolOptions;
  private readonly observer: PoolObserver | null;
  private closed = false;

  constructor(name: string, url: string, opts: PoolOptions, observer: PoolObserver | null = null) {
    this.name = name;
    this.url = url;
    this.opts = opts;
    this.observer = observer;
    this.pool = new pg.Pool({
      connectionString: url,
      max: opts.size,
      connectionTimeoutMillis: opts.acquireTimeoutMs,
      idleTimeoutMillis: 30_000,
      statement_timeout: opts.statementTimeoutMs,
      // The client gives up a little after the server would have cancelled, in case the server hangs.
      query_timeout: opts.statementTimeoutMs + 1_000,
      application_name: 'hop',
      keepAlive: true,
    });
    // An idle connection the server dropped: the pool discards it; the next query reconnects.
    this.pool.on('error', () => {});
    // A server that dies between two queries on a checked-out connection reports it as an event;
    // without a listener that would crash the process. The next query on it fails and says so.
    this.pool.on('connect', (client) => client.on('error', () => {}));
  }

  stats(): PoolStats {
    return {
      total: this.pool.totalCount,
      idle: this.pool.idleCount,
      waiting: this.pool.waitingCount,
      max: this.opts.size,
    };
  }

  private unavailable(detail: string, cause: unknown): HopError {
    return new HopError('unavailable', detail, { headers: RETRY_AFTER, cause });
  }

  private async acquire(): Promise<pg.PoolClient> {
    if (this.closed) throw this.unavailable('The database connection is closed.', null);
    if (this.pool.waitingCount >= this.opts.maxWaiting && this.pool.idleCount === 0) {
      this.observer?.refused(this.name, 'queue_full');
      throw this.unavailable(`The database (${this.name}) is busy; try again shortly.`, null);
    }
    const started = performance.now();
    try {
      const client = await this.pool.connect();
      this.observer?.acquired(this.name, (performance.now() - started) / 1000);
      return client;
    } catch (err) {
      const timedOut = err instanceof Error && /timeout/i.test(err.message);
      this.observer?.refused(this.name, timedOut ? 'timeout' : 'down');
      throw this.unavailable(
        timedOut
          ? `No database connection (${this.name}) came free in ${this.opts.acquireTimeoutMs} ms; try again shortly.`
          : `The database (${this.name}) does not answer; try again shortly.`,
        err,
      );
    }
  }

  /** Runs fn on one pooled connection; a connection that failed is destroyed, not reused. */
  private async withClient<R>(fn: (c: pg.PoolClient) => Promise<R>): Promise<R> {
    const client = await this.acquire();
    let broken: Error | undefined;
    try {
      return await fn(client);
    } catch (err) {
      if (isServerFailure(err)) {
        broken = err instanceof Error ? err : new Error(String(err));
        throw this.unavailable(`The database (${this.name}) failed during the request; try again.`, err);
      }
      throw err;
    } finally {
      client.release(broken);
    }
  }

  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<SqlResult<T>> {
    return this.withClient((c) => runQuery<T>(c, sql, params));
  }

  exec(sql: string): Promise<void> {
    return this.withClient(async (c) => {
      await c.query(sql);
    });
  }

  transaction<R>(fn: (tx: SqlClient) => Promise<R>): Promise<R> {
    return this.withClient(async (c) => {
      await c.query('BEGIN');
      try {
        const out = await fn(txClient(c));
        await c.query('COMMIT');
        return out;
      } catch (err) {
        await c.query('ROLLBACK').catch(() => {});
        throw err;
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}

async function runQuery<T>(
  c: pg.ClientBase,
  sql: string,
  params?: readonly unknown[],
): Promise<SqlResult<T>> {
  const res = await c.query(sql, params === undefined ? undefined : [...params]);
  return { rows: res.rows as T[], affectedRows: res.rowCount ?? 0 };
}

/** The SqlClient a transaction body sees: its statements run on the transaction's connection. */
function txClient(c: pg.ClientBase): SqlClient {
  const tx: SqlClient = {
    query: (sql, params) => runQuery(c, sql, params),
    async exec(sql) {
      await c.query(sql);
    },
    // Already in one: the body simply joins it.
    transaction: (fn) => fn(tx),
    async close() {},
  };
  return tx;
}
