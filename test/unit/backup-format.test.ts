// The embedded backup's file format: frames read back as written, in any chunking, and a file that
// is cut, damaged or something else is refused with a message that says which.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import {
  BACKUP_FORMAT,
  BACKUP_VERSION,
  BackupDecoder,
  encodeManifest,
  encodeStart,
  encodeTable,
  type Frame,
  type Manifest,
  sha256Hex,
} from '../../src/storage/embedded/backup-format.ts';
import { readBackup } from '../../src/storage/embedded/embedded-backup.ts';

const tables = [
  { table: 'api_keys', csv: Buffer.from('id,name\n') },
  { table: 'links', csv: Buffer.from('code,url\nabc,"https://a.example/?x=1,2"\nzz,"line\nbreak"\n') },
].map((t) => ({
  header: {
    table: t.table,
    rows: t.csv.toString().split('\n').length - 2,
    bytes: t.csv.length,
    sha256: sha256Hex(t.csv),
    columns: t.csv.toString().split('\n')[0]!.split(','),
  },
  csv: t.csv,
}));

const manifest: Manifest = {
  format: BACKUP_FORMAT,
  version: BACKUP_VERSION,
  createdAt: '2025-01-02T03:04:05.000Z',
  pglite: '0.0.0',
  migrations: ['001_links'],
  tables: tables.map(({ header: { table, rows, bytes, sha256 } }) => ({ table, rows, bytes, sha256 })),
  lastChangeSeq: 42,
  sequences: [{ sequence: 'outbox_seq_seq', table: 'outbox', column: 'seq', last: '42', called: true }],
};

const file = (): Buffer =>
  Buffer.concat([
    encodeStart(),
    ...tables.flatMap((t) => encodeTable(t.header, t.csv)),
    encodeManifest(manifest),
  ]);

function decode(bytes: Buffer, chunk = bytes.length): { frames: Frame[]; manifest: Manifest } {
  const d = new BackupDecoder();
  const frames: Frame[] = [];
  for (let at = 0; at < bytes.length; at += chunk) frames.push(...d.push(bytes.subarray(at, at + chunk)));
  return { frames, manifest: d.end() };
}

describe('backup format', () => {
  test('frames read back as written, whole or a byte at a time', () => {
    for (const chunk of [Number.MAX_SAFE_INTEGER, 1, 7]) {
      const r = decode(file(), chunk);
      assert.deepEqual(r.manifest, manifest);
      const read = r.frames.filter((f) => f.kind === 'table');
      assert.deepEqual(
        read.map((f) => [f.header.table, f.header.rows, f.csv.toString()]),
        tables.map((t) => [t.header.table, t.header.rows, t.csv.toString()]),
      );
    }
  });

  test('a file cut inside a table or before its manifest is refused as truncated', () => {
    const whole = file();
    const inTable = whole.indexOf('abc,');
    assert.throws(
      () => decode(whole.subarray(0, inTable)),
      /truncated: table links has \d+ of its \d+ bytes/,
    );
    const beforeManifest = whole.indexOf('{"manifest"');
    assert.throws(() => decode(whole.subarray(0, beforeManifest)), /truncated: .*without its manifest/);
    assert.throws(() => decode(Buffer.alloc(0)), /empty, not a Hop backup/);
  });

  test('a changed byte, a header that lies, or another file is refused as corrupt', () => {
    const damaged = file();
    damaged[damaged.indexOf('abc,')] = 'x'.charCodeAt(0);
    assert.throws(() => decode(damaged), /table links does not match its sha256/);
    assert.throws(() => decode(Buffer.from('id,name\n1,2\n')), /not a Hop backup/);
    const newer = Buffer.from(`${JSON.stringify({ format: BACKUP_FORMAT, version: 99 })}\n`);
    assert.throws(() => decode(newer), /format version 99; this Hop reads version 1/);
    const extra = Buffer.concat([file(), Buffer.from('more')]);
    assert.throws(() => decode(extra), /data after its manifest/);
    const wrongList = Buffer.concat([
      encodeStart(),
      ...encodeTable(tables[0]!.header, tables[0]!.csv),
      encodeManifest(manifest),
    ]);
    assert.throws(() => decode(wrongList), /do not match its manifest's list/);
  });

  test('a gzip stream cut short is refused as truncated', async () => {
    const gz = gzipSync(file());
    const manifestRead = await readBackup(Readable.from([gz]));
    assert.equal(manifestRead.lastChangeSeq, 42);
    await assert.rejects(readBackup(Readable.from([gz.subarray(0, gz.length - 20)])), /truncated/);
    await assert.rejects(
      readBackup(Readable.from([Buffer.from('not gzip at all')])),
      /corrupt or not a Hop backup/,
    );
  });
});
