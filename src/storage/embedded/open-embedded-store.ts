// The embedded default: Hop's SQL store on an in-process PGlite, migrated on open.
import { SqlStore } from '../sql/sql-store.ts';
import { openPglite } from './pglite-client.ts';

export async function openEmbeddedStore(opts: {
  dataDir: string | null;
  codeLength: number;
}): Promise<SqlStore> {
  const db = await openPglite(opts.dataDir);
  const store = new SqlStore(db, { kind: 'embedded', codeLength: opts.codeLength });
  try {
    await store.migrate();
  } catch (err) {
    await store.close();
    throw err;
  }
  return store;
}
