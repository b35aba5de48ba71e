// The embedded database's first start copies a shipped data directory instead of running initdb;
// the copy must come from the installed PGlite, land whole, and refuse an archive that would write
// outside the directory.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { extractTar, seedDataDir, templateFits } from '../../src/storage/embedded/data-template.ts';
import { tempDir } from '../support/hop-process.ts';

test('the shipped template was made by the installed PGlite (after an upgrade: node --import tsx scripts/make-db-template.ts)', () => {
  assert.ok(templateFits(), 'src/storage/embedded/template/pgdata.json names another PGlite version');
});

test('an empty data directory is filled from the template; one holding a database is left alone', async () => {
  const dir = tempDir('hop-template-');
  try {
    const pg = join(dir.path, 'pg');
    assert.equal(await seedDataDir(pg), true);
    assert.match(readFileSync(join(pg, 'PG_VERSION'), 'utf8'), /^\d+\n$/);
    assert.ok(existsSync(join(pg, 'global', 'pg_control')));
    assert.ok(!existsSync(`${pg}.seeding`), 'the staging copy was renamed into place');
    assert.equal(await seedDataDir(pg), false, 'a second seeding leaves the database as it is');
  } finally {
    dir.remove();
  }
});

test('an archive entry that would land outside the directory is refused', async () => {
  const header = Buffer.alloc(512);
  header.write('../escape', 0, 'utf8');
  header.write('0000644\0', 100, 'latin1');
  header.write('00000000000\0', 124, 'latin1');
  header.write('0', 156, 'latin1');
  const dir = tempDir('hop-template-');
  try {
    await assert.rejects(
      extractTar(Readable.from([Buffer.concat([header, Buffer.alloc(1024)])]), join(dir.path, 'x')),
      /unsafe path/,
    );
  } finally {
    dir.remove();
  }
});
