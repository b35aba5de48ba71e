// The embedded default: Hop's SQL store on an in-process PGlite, migrated on open.
import { migrate, pendingMigrations } from '../sql/migrate.ts';
import { SqlStore } from '../sql/sql-store.ts';
import { openPglite, type PgliteOptions, SMALL_DATABASE } from './pglite-client.ts';

export async function openEmbeddedStore(opts: {
  dataDir: string | null;
  codeLength: number;
  database?: PgliteOptions;
}): Promise<SqlStore> {
  const database = opts.database ?? SMALL_DATABASE;
  let db = await openPglite(opts.dataDir, database);
  let appliedBefore: string[] = [];
  // Schema changes (a first start, an upgrade) leave the database thread larger for good (about
  // 10 MB resident, measured on a first start): they run on a thread of their own, which is then
  // closed and opened again. In memory there is nothing to open again.
  if (opts.dataDir !== null && (await pendingMigrations(db).catch(() => [])).length > 0) {
    try {
      appliedBefore = (await migrate(db)).applied;
    } finally {
      await db.close();
    }
    db = await openPglite(opts.dataDir, database);
  }
  const store = new SqlStore(db, { kind: 'embedded', codeLength: opts.codeLength, appliedBefore });
  try {
    await store.migrate();
  } catch (err) {
    await store.close();
    throw err;
  }
  return store;
}
