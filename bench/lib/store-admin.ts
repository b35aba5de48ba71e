// Changes and inspects a stopped Hop's embedded database between `hop import` and `hop serve`:
// drops an index for a deliberately naive schema, refreshes the planner's statistics, and captures
// the query plan of the redirect lookup. It runs as a child process of its own, like the servers:
// PGlite's WASM heap in the generator would cost it memory and a garbage-collection pause later,
// inside some measured run.
import { realpathSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lockDataDir } from '../../src/storage/embedded/data-dir-lock.ts';
import { spawnChild } from './child.ts';

/** Hop's redirect lookup, verbatim from its SQL store: the plan shown is the plan Hop gets. */
export const REDIRECT_LOOKUP_SQL =
  'SELECT code, url, redirect_type, forward_query, expires_at, max_clicks, disabled, deleted_at ' +
  'FROM links WHERE code = $1';

export interface StoreAdminRequest {
  /** Hop's data directory (the database is in its `pg` subdirectory). */
  dataDir: string;
  /** Drops the primary key of links, and with it the only index on code. For the benchmark only. */
  dropPrimaryKey: boolean;
  /** Code of an existing link whose lookup is explained. */
  explainCode: string;
}

export interface StoreAdminResult {
  /** EXPLAIN (ANALYZE, BUFFERS) of the redirect lookup, one line per element. */
  plan: string[];
  /** `indexname: indexdef` of every index left on links. */
  indexes: string[];
  rows: number;
}

const SELF = fileURLToPath(import.meta.url);

/** Runs the request in a child process; the data directory must not be open anywhere else. */
export async function adminStore(
  req: StoreAdminRequest,
  verbose = false,
  timeoutMs = 300_000,
): Promise<StoreAdminResult> {
  const child = spawnChild('store-admin', process.execPath, ['--import', 'tsx', SELF, JSON.stringify(req)], {
    echoStderr: verbose,
  });
  let result: StoreAdminResult | null = null;
  child.onStdoutLine((line) => {
    if (!line.startsWith('{')) return;
    try {
      result = JSON.parse(line) as StoreAdminResult;
    } catch {
      // Not the result line.
    }
  });
  const timer = setTimeout(() => void child.stop(2000), timeoutMs);
  const code = await child.exited;
  clearTimeout(timer);
  if (code !== '0' || result === null) {
    throw new Error(`store-admin failed (exit ${code}):\n${child.outputTail()}`);
  }
  return result;
}

async function main(req: StoreAdminRequest): Promise<StoreAdminResult> {
  // Taken the way Hop takes it, so a Hop started meanwhile refuses the directory.
  const unlock = lockDataDir(req.dataDir);
  try {
    // Loaded here, not at the top: the generator imports this module for adminStore alone.
    const { PGlite } = await import('@electric-sql/pglite');
    const { pg_trgm } = await import('@electric-sql/pglite/contrib/pg_trgm');
    const db = await PGlite.create({ dataDir: join(req.dataDir, 'pg'), extensions: { pg_trgm } });
    try {
      if (req.dropPrimaryKey) await db.exec('ALTER TABLE links DROP CONSTRAINT links_pkey');
      // Fresh statistics, so that the plan is the one the planner picks for this data and not a guess.
      await db.exec('ANALYZE links');
      // One untimed execution first: the plan's timing and buffers then show the steady state Hop
      // runs in (table pages in shared buffers), not the first read from disk.
      await db.query(REDIRECT_LOOKUP_SQL, [req.explainCode]);
      const explained = await db.query<{ 'QUERY PLAN': string }>(
        `EXPLAIN (ANALYZE, BUFFERS) ${REDIRECT_LOOKUP_SQL}`,
        [req.explainCode],
      );
      const indexes = await db.query<{ indexname: string; indexdef: string }>(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'links' ORDER BY indexname",
      );
      const count = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM links');
      return {
        plan: explained.rows.map((r) => r['QUERY PLAN']),
        indexes: indexes.rows.map((r) => `${r.indexname}: ${r.indexdef}`),
        rows: count.rows[0]?.n ?? 0,
      };
    } finally {
      await db.close();
    }
  } finally {
    unlock();
  }
}

// Run as a script (by adminStore) rather than imported; argv[1] may reach this file through a symlink.
if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === SELF) {
  main(JSON.parse(process.argv[2] ?? '{}') as StoreAdminRequest).then(
    (result) => process.stdout.write(`${JSON.stringify(result)}\n`),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
