// SqlClient over PGlite: PostgreSQL compiled to WASM, in this process (the embedded default).
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite, type Transaction } from '@electric-sql/pglite';
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm';
import type { SqlClient, SqlResult } from '../sql/sql-client.ts';

type Queryable = Pick<PGlite, 'query' | 'exec'> | Transaction;

function wrap(q: Queryable, transaction: SqlClient['transaction'], close: () => Promise<void>): SqlClient {
  return {
    async query<T>(sql: string, params: readonly unknown[] = []): Promise<SqlResult<T>> {
      const res = await q.query<T>(sql, params as unknown[]);
      return { rows: res.rows, affectedRows: res.affectedRows ?? 0 };
    },
    transaction,
    async exec(sql: string) {
      await q.exec(sql);
    },
    close,
  };
}

/** PGlite allows one process per data directory; a lock file turns a second opener away clearly. */
function lockDataDir(dir: string): () => void {
  mkdirSync(dir, { recursive: true });
  const lockPath = join(dir, 'hop.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockPath, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(lockPath, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(lockPath, 'utf8'));
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
        throw new Error(
          `The data directory ${dir} is in use by process ${pid}. Stop that Hop first, or use the HTTP API.`,
        );
      }
      rmSync(lockPath, { force: true }); // stale: its owner is gone
    }
  }
  throw new Error(`Could not lock the data directory ${dir}.`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** `dataDir` null keeps everything in memory (tests). */
export async function openPglite(dataDir: string | null): Promise<SqlClient> {
  const unlock = dataDir === null ? () => {} : lockDataDir(dataDir);
  let db: PGlite;
  try {
    db = await PGlite.create({
      ...(dataDir === null ? {} : { dataDir: join(dataDir, 'pg') }),
      extensions: { pg_trgm },
    });
  } catch (err) {
    unlock();
    throw err;
  }
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await db.close();
    unlock();
  };
  const transaction = <R>(fn: (tx: SqlClient) => Promise<R>): Promise<R> =>
    db.transaction((tx) =>
      fn(
        wrap(
          tx,
          () => Promise.reject(new Error('nested transactions are not supported')),
          () => Promise.resolve(),
        ),
      ),
    );
  return wrap(db, transaction, close);
}
