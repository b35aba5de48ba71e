// Makes the embedded database's data-directory template (src/storage/embedded/template/): a fresh
// PGlite initdb, archived, so Hop's first start copies it instead of running initdb (which peaks
// near 750 MB). Run it after upgrading @electric-sql/pglite; a test fails until it has been run.
// `node --import tsx scripts/make-db-template.ts` (about 10 s and most of a GB, once, here).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { DB_TEMPLATE_DIR } from '../src/paths.ts';
import { installedPgliteVersion } from '../src/storage/embedded/data-template.ts';

const DIR = DB_TEMPLATE_DIR;

const db = await PGlite.create();
const pgVersion = (await db.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]!.v;
const archive = await db.dumpDataDir('gzip');
await db.close();
mkdirSync(DIR, { recursive: true });
writeFileSync(join(DIR, 'pgdata.tar.gz'), Buffer.from(await archive.arrayBuffer()));
// What the template is good for: the loader compares `pglite` with the installed version.
writeFileSync(
  join(DIR, 'pgdata.json'),
  `${JSON.stringify({ pglite: installedPgliteVersion(), postgres: pgVersion }, null, 2)}\n`,
);
console.log(`template for PGlite ${installedPgliteVersion()} (PostgreSQL ${pgVersion}) written to ${DIR}`);
