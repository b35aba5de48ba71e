// The smallest SQL surface Hop's queries need, so the same SQL runs on PGlite and on
// PostgreSQL servers (DESIGN §1).
import type { DatabaseThread } from '../ports.ts';

export interface SqlResult<T> {
  readonly rows: T[];
  readonly affectedRows: number;
}

export interface QueryOptions {
  /**
   * The rows carry a link's `code` and stored `clicks`: add the clicks held outside the rollups
   * where they are held (the embedded click writer on the database's thread). Ignored elsewhere.
   */
  readonly heldClicks?: boolean;
}

export interface SqlClient {
  query<T = Record<string, unknown>>(
    sql: string,
    params?: readonly unknown[],
    opts?: QueryOptions,
  ): Promise<SqlResult<T>>;
  /** Runs `fn` in one transaction; rolls back when it throws. */
  transaction<R>(fn: (tx: SqlClient) => Promise<R>): Promise<R>;
  /** Runs a script of several statements (migrations). */
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
  /** Present on the embedded database: its thread. */
  readonly thread?: DatabaseThread;
}
