// The embedded change log (DESIGN §12) on real PGlite databases in memory: what a logged store
// acknowledged is in the log, a fresh database rebuilt from the log holds it, a torn last line is
// cut off, damage and gaps are refused.
import assert from 'node:assert/strict';
import { appendFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { HopError } from '../../src/domain/errors.ts';
import {
  ChangeLog,
  ChangeLogDamaged,
  ChangeLogGap,
  decodeLine,
} from '../../src/storage/embedded/change-log.ts';
import { withChangeLog } from '../../src/storage/embedded/logged-store.ts';
import { openEmbeddedStore } from '../../src/storage/embedded/open-embedded-store.ts';
import type { SqlStore } from '../../src/storage/sql/sql-store.ts';
import { fields, newLink } from '../support/fixtures.ts';
import { tempDir } from '../support/hop-process.ts';

const open = () => openEmbeddedStore({ dataDir: null, codeLength: 7 });
const dirs: { remove(): void }[] = [];
const logDir = () => {
  const d = tempDir('hop-changelog-');
  dirs.push(d);
  return join(d.path, 'changes');
};
after(() => {
  for (const d of dirs) d.remove();
});

const lines = (dir: string) =>
  readdirSync(dir)
    .sort()
    .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean));

async function createSome(store: SqlStore, n: number, tag: string): Promise<Map<string, string>> {
  const made = new Map<string, string>();
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const url = `https://example.com/${tag}/${i}`;
      const r = await store.createLink(newLink({ f: { url } }));
      assert.equal(r.kind, 'created');
      if (r.kind === 'created') made.set(r.link.code, url);
    }),
  );
  return made;
}

describe('the embedded change log', () => {
  test('concurrent writes share fsyncs, and every acknowledged one is in the log', async () => {
    const dir = logDir();
    const raw = await open();
    const syncs: number[] = [];
    const { log } = await ChangeLog.open(dir, raw, { synced: (n) => syncs.push(n) });
    const store = withChangeLog(raw, log);
    const made = await createSome(store, 60, 'a');
    const logged = new Set(lines(dir).map((l) => decodeLine(l)?.link.code));
    for (const code of made.keys()) assert.ok(logged.has(code), `${code} acknowledged but not logged`);
    assert.equal(
      syncs.reduce((a, b) => a + b, 0),
      60,
    );
    assert.ok(syncs.length < 60, `group commit: ${syncs.length} fsyncs for 60 writes`);
    assert.equal(log.lastSeq, await raw.lastChangeSeq());
    await store.close();
  });

  test('a database lost entirely is rebuilt from the log: links, edits, tombstones, and seqs go on', async () => {
    const dir = logDir();
    const first = await open();
    const { log } = await ChangeLog.open(dir, first);
    const store = withChangeLog(first, log);
    const made = await createSome(store, 120, 'b');
    const [edited, gone] = [...made.keys()];
    await store.updateLink(edited!, { url: 'https://example.com/edited' }, new Date());
    assert.equal(await store.deleteLink(gone!, new Date()), true);
    const lastSeq = await first.lastChangeSeq();
    const before = new Map<string, unknown>();
    for (const code of made.keys()) before.set(code, await first.getLink(code));
    assert.equal((before.get(edited!) as { url: string }).url, 'https://example.com/edited');
    // The machine dies: the database is gone, the log is what was fsynced.
    await store.close();

    const fresh = await open();
    const reopened = await ChangeLog.open(dir, fresh);
    assert.equal(reopened.replayed, 122);
    assert.equal(await fresh.lastChangeSeq(), lastSeq);
    for (const code of made.keys()) assert.deepEqual(await fresh.getLink(code), before.get(code), code);
    // A deleted code stays retired, and new changes come after the replayed ones.
    assert.equal((await fresh.createLink(newLink({ alias: gone! }))).kind, 'alias_taken');
    const next = await withChangeLog(fresh, reopened.log).createLink(newLink());
    assert.equal(next.kind, 'created');
    assert.ok((await fresh.lastChangeSeq()) > lastSeq);
    await reopened.log.close();
    await fresh.close();
  });

  test('commits a crash kept from the log are appended at the next start', async () => {
    const dir = logDir();
    const db = await open();
    const { log } = await ChangeLog.open(dir, db);
    await createSome(withChangeLog(db, log), 5, 'c');
    await log.close();
    // Committed, then the process died before its fsync: never acknowledged, but kept.
    await createSome(db, 7, 'c2');
    const again = await ChangeLog.open(dir, db);
    assert.equal(again.replayed, 0);
    assert.equal(again.log.lastSeq, await db.lastChangeSeq());
    assert.equal(lines(dir).length, 12);
    await again.log.close();
    await db.close();
  });

  test('a torn last line is cut off; damage before the end is refused', async () => {
    const dir = logDir();
    const db = await open();
    const { log } = await ChangeLog.open(dir, db);
    await createSome(withChangeLog(db, log), 10, 'd');
    await log.close();
    await db.close();
    const [segment] = readdirSync(dir);
    const path = join(dir, segment!);
    const whole = readFileSync(path, 'utf8');
    appendFileSync(path, whole.split('\n')[0]!.slice(0, 40)); // an append cut short

    const fresh = await open();
    const reopened = await ChangeLog.open(dir, fresh);
    assert.equal(reopened.replayed, 10);
    assert.ok(reopened.tornBytes > 0);
    assert.equal(readFileSync(path, 'utf8'), whole);
    await reopened.log.close();
    await fresh.close();

    const ls = whole.split('\n');
    ls[3] = ls[3]!.replace('https://example.com', 'https://evil.example');
    writeFileSync(path, ls.join('\n'));
    const other = await open();
    await assert.rejects(ChangeLog.open(dir, other), ChangeLogDamaged);
    await other.close();
  });

  test('after a backup the log is pruned; a database older than the log is refused, not half-rebuilt', async () => {
    const dir = logDir();
    const db = await open();
    const { log } = await ChangeLog.open(dir, db);
    const store = withChangeLog(db, log);
    await createSome(store, 8, 'e');
    const backupSeq = await db.lastChangeSeq();
    assert.equal(await log.pruneThrough(backupSeq), 1);
    await createSome(store, 4, 'e2');
    assert.equal(lines(dir).length, 4);
    await store.close();

    const empty = await open();
    await assert.rejects(ChangeLog.open(dir, empty), (err: Error) => {
      assert.ok(err instanceof ChangeLogGap);
      assert.match(err.message, /changes 1 to 8 are in neither/);
      return true;
    });
    await empty.close();
  });

  test('a backup of a stopped data directory prunes the log without opening it', async () => {
    const dir = logDir();
    const db = await open();
    const { log } = await ChangeLog.open(dir, db);
    const store = withChangeLog(db, log);
    await createSome(store, 5, 'f');
    assert.equal(await log.pruneThrough(0), 0); // starts a new segment after change 5
    await createSome(store, 3, 'f2');
    await store.close();
    assert.equal(readdirSync(dir).length, 2);
    assert.equal(ChangeLog.pruneDir(dir, 4), 0, 'the first segment holds change 5, newer than the backup');
    assert.equal(ChangeLog.pruneDir(dir, 7), 1);
    assert.equal(ChangeLog.pruneDir(dir, 100), 0, 'the last segment always stays');
    assert.equal(lines(dir).length, 3);
  });

  test('a change committed but not logged answers write_in_doubt; the retry with its key settles it', async () => {
    const dir = logDir();
    const db = await open();
    let failing = false;
    const source = {
      readChanges: (after: number, limit: number) =>
        failing ? Promise.reject(new Error('disk full')) : db.readChanges(after, limit),
      lastChangeSeq: () => db.lastChangeSeq(),
      applyChanges: (c: Parameters<SqlStore['applyChanges']>[0]) => db.applyChanges(c),
    };
    const { log } = await ChangeLog.open(dir, source);
    const store = withChangeLog(db, log);
    const req = newLink({
      f: fields({ url: 'https://example.com/doubt' }),
      idempotency: { scope: 'key_1', key: 'k-1', requestHash: 'h-1' },
    });
    failing = true;
    await assert.rejects(store.createLink(req), (err: unknown) => {
      assert.ok(err instanceof HopError);
      assert.equal(err.code, 'write_in_doubt');
      assert.equal(err.status, 503);
      return true;
    });
    // The API's retry looks the key up first: the stored answer is not repeated while the log fails.
    const notBefore = new Date(0);
    await assert.rejects(store.getIdempotency('key_1', 'k-1', notBefore), /write_in_doubt/);
    failing = false;
    assert.notEqual(await store.getIdempotency('key_1', 'k-1', notBefore), null);
    assert.match(lines(dir).join('\n'), /example\.com\/doubt/);
    const retried = await store.createLink(req);
    assert.equal(retried.kind, 'replayed');
    await store.close();
  });
});
