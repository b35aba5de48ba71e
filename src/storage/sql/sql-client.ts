// The smallest SQL surface Hop's queries need, so the same SQL runs on PGlite and on
// PostgreSQL servers (DESIGN §1).

export interface SqlResult<T> {
  readonly rows: T[];
  readonly affectedRows: number;
}

export interface SqlClient {
  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<SqlResult<T>>;
  /** Runs `fn` in one transaction; rolls back when it throws. */
  transaction<R>(fn: (tx: SqlClient) => Promise<R>): Promise<R>;
  /** Runs a script of several statements (migrations). */
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
}
