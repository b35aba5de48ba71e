// What a failure of a PostgreSQL statement says about the server, and whether a statement that
// failed may still have committed: the rules the pool answers 503 unavailable or write_in_doubt by.
import pg from 'pg';

/**
 * - `lost`: the connection or the server went away (reset, shutdown, crash, no answer). Every
 *   connection to the server is suspect; a statement that was committing may have committed.
 * - `read_only`: the server answers but cannot take writes now (a standby, a demoted primary).
 * - `busy`: the statement was cancelled (statement timeout) or the server is short of resources.
 * - null: the statement itself was refused (a constraint, bad SQL); the server is fine.
 */
export type ServerFailure = 'lost' | 'read_only' | 'busy';

/** Errors node-postgres raised about the connection itself (not a server's error response). */
const driverErrors = new WeakSet<object>();

/** Marks an error a query on a connection rejected with, when it is not the server's answer. */
export function noteDriverError(err: unknown): void {
  if (err instanceof Error && !(err instanceof pg.DatabaseError)) driverErrors.add(err);
}

export function serverFailureOf(err: unknown): ServerFailure | null {
  if (err instanceof pg.DatabaseError) return failureOfState(err.code ?? '', err.message);
  if (err === null || typeof err !== 'object') return null;
  // Anything else a query rejected with came from the connection: reset, closed, read timeout.
  if (driverErrors.has(err)) return 'lost';
  // Socket errors carry an errno code (ECONNRESET, EPIPE, ETIMEDOUT…) wherever they surface.
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && /^E[A-Z]+$/.test(code) ? 'lost' : null;
}

function failureOfState(state: string, message: string): ServerFailure | null {
  // 25006: a write in a read-only transaction: the server is a standby, or demoted, or set read-only.
  if (state === '25006') return 'read_only';
  // WAL control functions on a standby (the lag probe of a primary that was demoted).
  if (state === '55000' && /recovery is in progress/i.test(message)) return 'read_only';
  // 57014: cancelled, by statement_timeout or a cancel request: this statement, not the server.
  // 25P03: this session sat idle in a transaction too long; the server ended it, not itself.
  if (state === '57014' || state === '25P03') return 'busy';
  // 08: connection exceptions. 57: operator intervention (57P01 admin shutdown, 57P02 crash
  // shutdown, 57P03 cannot connect now, 57P05 idle session timeout).
  if (state.startsWith('08') || state.startsWith('57')) return 'lost';
  // 53: insufficient resources (too many connections, out of memory, disk full).
  if (state.startsWith('53')) return 'busy';
  return null;
}

/** The fields of a notice (node-postgres's NoticeMessage) that matter here. */
export interface PgNotice {
  readonly code?: string | undefined;
  readonly message?: string | undefined;
  readonly detail?: string | undefined;
}

/**
 * PostgreSQL's notice when a commit's wait for its synchronous standby was cut short: WARNING
 * 01000 "canceling wait for synchronous replication due to user request" (a cancel request), or
 * WARNING 57P01 "canceling the wait for synchronous replication and terminating connection due to
 * administrator command" (pg_terminate_backend, a fast shutdown). Either way the transaction has
 * already committed locally but the standby may not have it, and the statement still reports
 * success: such an answer must never become a 2xx. Messages are matched in English (the server's
 * default lc_messages); a statement that commits treats any 01000 warning as this one too.
 */
export function isSyncWaitCancelled(notice: PgNotice, committing: boolean): boolean {
  if (notice.code === '57P01') return true;
  if (notice.code !== '01000') return false;
  return (
    committing || /synchronous replication|committed locally/i.test(`${notice.message} ${notice.detail}`)
  );
}

/**
 * A statement that commits by itself (autocommit) a transaction that may wait for the synchronous
 * standby: INSERT, UPDATE, DELETE or MERGE, a WITH whose parts write, or a read that locks rows
 * (FOR SHARE, FOR UPDATE…: the lock is written to WAL). Decides that such a statement is given the
 * commit's wait (no client-side timeout) and that a lost connection answers write_in_doubt rather
 * than unavailable; a statement this misses is still checked for the synchronous-wait notice.
 */
export function commitsByItself(sql: string): boolean {
  const head = /^\s*(\w+)/.exec(sql)?.[1]?.toUpperCase();
  if (head === 'INSERT' || head === 'UPDATE' || head === 'DELETE' || head === 'MERGE') return true;
  if (head === 'WITH' && /\b(INSERT|UPDATE|DELETE|MERGE)\b/i.test(sql)) return true;
  return (
    (head === 'SELECT' || head === 'WITH') &&
    /\bFOR\s+(NO\s+KEY\s+UPDATE|UPDATE|KEY\s+SHARE|SHARE)\b/i.test(sql)
  );
}
