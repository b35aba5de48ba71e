// The embedded backup's file format: frames read back as written, in any chunking, a table split
// in several chunks reads back whole, and a file that is cut, damaged, reordered or something else
// is refused with a message that says which.
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
  type Frame,
  type Manifest,
  TableEncoder,
  type TableSummary,
} from '../../src/storage/embedded/backup-format.ts';
import { readBackup } from '../../src/storage/embedded/embedded-backup.ts';

/** Each table as its CSV in chunks (the first with the header row), as the database thread reads it. */
const source = [
  { table: 'api_keys', columns: ['id', 'name'], chunks: [['id,name\n', 0]] as const },
  {
    table: 'links',
    columns: ['code', 'url'],
    chunks: [
      ['code,url\nabc,"https://a.example/?x=1,2"\n', 1],
      ['zz,"line\nbreak"\n', 1],
      ['zzz,https://c.example/\nzzzz,https://d.example/\n', 2],
    ] as const,
  },
];

/** A table's frames and its summary. */
function encodeTable(t: (typeof source)[number]): { frames: Buffer[]; summary: TableSummary } {
  const enc = new TableEncoder(t.table, t.columns);
  const frames = [enc.start()];
  for (const [csv, rows] of t.chunks) frames.push(...enc.chunk(rows, Buffer.from(csv)));
  const { frame, summary } = enc.end();
  return { frames: [...frames, frame], summary };
}

const encoded = source.map(encodeTable);

const manifest: Manifest = {
  format: BACKUP_FORMAT,
  version: BACKUP_VERSION,
  createdAt: '2025-01-02T03:04:05.000Z',
  pglite: '0.0.0',
  migrations: ['001_links'],
  tables: encoded.map((e) => e.summary),
  lastChangeSeq: 42,
  sequences: [{ sequence: 'outbox_seq_seq', table: 'outbox', column: 'seq', last: '42', called: true }],
};

const file = (tables = encoded.map((e) => e.frames)): Buffer =>
  Buffer.concat([encodeStart(), ...tables.flat(), encodeManifest(manifest)]);

function decode(bytes: Buffer, chunk = bytes.length): { frames: Frame[]; manifest: Manifest } {
  const d = new BackupDecoder();
  const frames: Frame[] = [];
  for (let at = 0; at < bytes.length; at += chunk) frames.push(...d.push(bytes.subarray(at, at + chunk)));
  return { frames, manifest: d.end() };
}

/** Each table's CSV as read back: its chunks joined in order. */
function tablesOf(frames: Frame[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of frames) if (f.kind === 'chunk') out[f.table] = (out[f.table] ?? '') + f.csv.toString();
  return out;
}

describe('backup format', () => {
  test('frames read back as written, whole or a byte at a time', () => {
    for (const chunk of [Number.MAX_SAFE_INTEGER, 1, 7]) {
      const r = decode(file(), chunk);
      assert.deepEqual(r.manifest, manifest);
      assert.deepEqual(
        r.frames.filter((f) => f.kind === 'table').map((f) => [f.table, f.columns]),
        source.map((t) => [t.table, t.columns]),
      );
      assert.deepEqual(
        r.frames.flatMap((f) => (f.kind === 'table-end' ? [f.summary] : [])),
        manifest.tables,
      );
    }
  });

  test('a table split in several chunks reads back whole, with its rows and the sha256 of its whole CSV', () => {
    const r = decode(file(), 5);
    const links = source[1]!;
    assert.equal(tablesOf(r.frames).links, links.chunks.map(([csv]) => csv).join(''));
    assert.deepEqual(
      r.frames.flatMap((f) => (f.kind === 'chunk' && f.table === 'links' ? [[f.index, f.rows]] : [])),
      [
        [0, 1],
        [1, 1],
        [2, 2],
      ],
    );
    const summary = manifest.tables.find((t) => t.table === 'links')!;
    assert.equal(summary.rows, 4);
    assert.equal(summary.chunks, 3);
    // The same CSV in one chunk has the same whole-table hash: chunking does not change it.
    const whole = encodeTable({
      ...links,
      chunks: [[links.chunks.map(([csv]) => csv).join(''), 4]] as never,
    });
    assert.equal(whole.summary.sha256, summary.sha256);
  });

  test('a missing or reordered chunk is refused', () => {
    // links' frames: start, (line, bytes) x 3, end.
    const [start, l0, d0, l1, d1, l2, d2, end] = encoded[1]!.frames as [Buffer, ...Buffer[]];
    const withLinks = (frames: Buffer[]) => file([encoded[0]!.frames, frames]);
    assert.throws(
      () => decode(withLinks([start, l0!, d0!, l2!, d2!, end!])),
      /table links has chunk 2 where chunk 1 belongs/,
    );
    assert.throws(
      () => decode(withLinks([start, l1!, d1!, l0!, d0!, l2!, d2!, end!])),
      /table links has chunk 1 where chunk 0 belongs/,
    );
    assert.throws(
      () => decode(withLinks([start, l0!, d0!, l1!, d1!, end!])),
      /table links has 2 chunks, its end says 3/,
    );
    // A chunk's line renumbered to fit where it was moved: the whole table's sha256 still tells.
    const renumber = (l: Buffer, to: number) =>
      Buffer.from(l.toString().replace(/"chunk":\d+/, `"chunk":${to}`));
    assert.throws(
      () => decode(withLinks([start, l0!, d0!, renumber(l2!, 1), d2!, renumber(l1!, 2), d1!, end!])),
      /table links does not match its sha256/,
    );
  });

  test('a file cut inside a table or before its manifest is refused as truncated', () => {
    const whole = file();
    const inChunk = whole.indexOf('abc,');
    assert.throws(
      () => decode(whole.subarray(0, inChunk)),
      /truncated: table links has \d+ of its chunk 0's \d+ bytes/,
    );
    const beforeEnd = whole.indexOf('{"end":"links"');
    assert.throws(
      () => decode(whole.subarray(0, beforeEnd)),
      /truncated: table links ends after 3 chunks, without its end/,
    );
    const beforeManifest = whole.indexOf('{"manifest"');
    assert.throws(() => decode(whole.subarray(0, beforeManifest)), /truncated: .*without its manifest/);
    assert.throws(() => decode(Buffer.alloc(0)), /empty, not a Hop backup/);
  });

  test('a changed byte, a header that lies, or another file is refused as corrupt', () => {
    const damaged = file();
    damaged[damaged.indexOf('abc,')] = 'x'.charCodeAt(0);
    assert.throws(() => decode(damaged), /table links's chunk 0 does not match its sha256/);
    assert.throws(() => decode(Buffer.from('id,name\n1,2\n')), /not a Hop backup/);
    const newer = Buffer.from(`${JSON.stringify({ format: BACKUP_FORMAT, version: 99 })}\n`);
    assert.throws(() => decode(newer), /format version 99; this Hop reads version 2/);
    const older = Buffer.from(`${JSON.stringify({ format: BACKUP_FORMAT, version: 1 })}\n`);
    assert.throws(() => decode(older), /format version 1; this Hop reads version 2/);
    const extra = Buffer.concat([file(), Buffer.from('more')]);
    assert.throws(() => decode(extra), /data after its manifest/);
    assert.throws(() => decode(file([encoded[0]!.frames])), /do not match its manifest's list/);
    const lyingEnd = file().toString().replace('"rows":4', '"rows":5');
    assert.throws(() => decode(Buffer.from(lyingEnd)), /table links does not match its sha256/);
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
