// The embedded database's logical backup and restore: a snapshot read on the database thread
// (backup-thread.mjs), written as a gzipped frame stream (backup-format.ts) to FILE.tmp, fsynced
// and renamed; a restore into an empty data directory that loads the tables into a database
// migrated to the backup's schema and checks every table's rows and sha256 against the manifest.
import {
  closeSync,
  createReadStream,
  createWriteStream,
  existsSync,
  fsyncSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import type { DatabaseThread } from '../ports.ts';
import { listMigrations, migrate } from '../sql/migrate.ts';
import type { SqlClient } from '../sql/sql-client.ts';
import {
  BACKUP_FORMAT,
  BACKUP_VERSION,
  BackupDecoder,
  BackupFormatError,
  encodeManifest,
  encodeStart,
  encodeTable,
  type Manifest,
  type SequenceState,
  type TableHeader,
} from './backup-format.ts';
import { installedPgliteVersion } from './data-template.ts';
import { openPglite } from './pglite-client.ts';

export interface SnapshotTable extends TableHeader {
  readonly csv: Uint8Array;
}

export interface Snapshot {
  readonly manifest: Manifest;
  readonly tables: readonly SnapshotTable[];
  /** How long the database answered nothing else (the snapshot's transaction). */
  readonly pauseMs: number;
}

interface ThreadSnapshot {
  tables: SnapshotTable[];
  migrations: string[];
  lastChangeSeq: number;
  sequences: SequenceState[];
  pauseMs: number;
}

/** Reads the whole database on its thread (the thread flushes the clicks it holds first). */
export async function takeSnapshot(thread: DatabaseThread): Promise<Snapshot> {
  const createdAt = new Date().toISOString();
  const s = await thread.call<ThreadSnapshot>({ op: 'backup-snapshot' });
  return {
    manifest: {
      format: BACKUP_FORMAT,
      version: BACKUP_VERSION,
      createdAt,
      pglite: installedPgliteVersion(),
      migrations: s.migrations,
      tables: s.tables.map(({ table, rows, bytes, sha256 }) => ({ table, rows, bytes, sha256 })),
      lastChangeSeq: s.lastChangeSeq,
      sequences: s.sequences,
    },
    tables: s.tables,
    pauseMs: s.pauseMs,
  };
}

/** The snapshot as the file's bytes: gzip over the frames. */
export function backupStream(s: Snapshot): Readable {
  function* frames() {
    yield encodeStart();
    for (const t of s.tables) yield* encodeTable(t, t.csv);
    yield encodeManifest(s.manifest);
  }
  // Level 6 is zlib's default; CSV of codes and URLs packs about 3 to 4 times.
  return Readable.from(frames(), { objectMode: false }).pipe(createGzip());
}

/**
 * Writes bytes to FILE.tmp, fsyncs, runs `check` on the written file (if given), renames it to
 * FILE and fsyncs the directory. Returns the size.
 */
export async function writeDurably(
  file: string,
  source: Readable,
  check: (tmp: string) => Promise<void> = async () => {},
): Promise<number> {
  const tmp = `${file}.tmp`;
  try {
    await pipeline(source, createWriteStream(tmp, { mode: 0o600 }));
    const fd = openSync(tmp, 'r+');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    await check(tmp);
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  try {
    const dir = openSync(dirname(resolve(file)), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  } catch {
    // Some file systems cannot fsync a directory; the file itself is synced.
  }
  return statSync(file).size;
}

export async function writeBackupFile(s: Snapshot, file: string): Promise<number> {
  return writeDurably(file, backupStream(s));
}

/** What a gzip error means to someone holding a backup file. */
function readError(err: unknown): Error {
  if (err instanceof BackupFormatError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'Z_BUF_ERROR' || /unexpected end of file/i.test(e.message ?? ''))
    return new BackupFormatError('the backup is truncated (its gzip stream ends early)');
  if (typeof e.code === 'string' && e.code.startsWith('Z_'))
    return new BackupFormatError(`the backup is corrupt or not a Hop backup (gzip: ${e.message})`);
  return e;
}

/**
 * Decodes a backup's bytes (gzipped) and checks it whole: every table's size and sha256, and the
 * manifest. `onTable` receives each table as it is read (omit it to check without keeping them).
 */
export async function readBackup(
  source: Readable,
  onTable: (t: SnapshotTable) => void = () => {},
): Promise<Manifest> {
  const decoder = new BackupDecoder();
  try {
    await pipeline(
      source,
      createGunzip(),
      new Writable({
        write(chunk: Buffer, _enc, done) {
          try {
            for (const f of decoder.push(chunk)) if (f.kind === 'table') onTable({ ...f.header, csv: f.csv });
            done();
          } catch (err) {
            done(err as Error);
          }
        },
      }),
    );
  } catch (err) {
    throw readError(err);
  }
  return decoder.end();
}

/** Reads and checks a backup file; its tables, when asked for, are kept in memory. */
export async function readBackupFile(
  file: string,
  keepTables = false,
): Promise<{ manifest: Manifest; tables: SnapshotTable[] }> {
  const tables: SnapshotTable[] = [];
  const manifest = await readBackup(createReadStream(file), keepTables ? (t) => tables.push(t) : undefined);
  return { manifest, tables };
}

// --- restore ---

export interface RestoreReport {
  readonly manifest: Manifest;
  readonly tables: readonly {
    table: string;
    rows: number;
    restoredRows: number;
    ok: boolean;
  }[];
  /** Migrations this Hop applied after loading the backup (it was taken by an older one). */
  readonly newerMigrations: readonly string[];
  readonly ok: boolean;
  readonly seconds: number;
}

export class RestoreRefused extends Error {
  override name = 'RestoreRefused';
}

/** Applies exactly these migrations (known to this Hop, in its order) to a new database. */
async function migrateExactly(db: SqlClient, versions: readonly string[]): Promise<void> {
  await db.exec(
    'CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
  );
  const wanted = new Set(versions);
  for (const m of listMigrations()) {
    if (!wanted.has(m.version)) continue;
    await db.transaction(async (tx) => {
      await tx.exec(m.sql);
      await tx.query('INSERT INTO schema_migrations (version) VALUES ($1)', [m.version]);
    });
  }
}

/**
 * Restores a backup file into an empty (or missing) data directory, then checks it: each table's
 * rows and the sha256 of its ordered CSV export must equal the manifest's. The check runs on the
 * loaded data, before migrations newer than the backup (which may rewrite rows by design) are
 * applied. A restore that fails or does not match leaves no database behind.
 */
export async function restoreBackup(file: string, dataDir: string): Promise<RestoreReport> {
  const started = performance.now();
  if (!existsSync(file)) throw new RestoreRefused(`No backup file at ${file}.`);
  if (existsSync(dataDir) && (!statSync(dataDir).isDirectory() || readdirSync(dataDir).length > 0))
    throw new RestoreRefused(
      `The data directory ${dataDir} is not empty: a restore goes into an empty (or missing) directory. Move its contents away, or restore with --data-dir into another one.`,
    );
  let read: { manifest: Manifest; tables: SnapshotTable[] };
  try {
    read = await readBackupFile(file, true);
  } catch (err) {
    if (err instanceof BackupFormatError)
      throw new RestoreRefused(`Cannot restore ${basename(file)}: ${err.message}.`);
    throw err;
  }
  const { manifest, tables } = read;
  const known = new Set(listMigrations().map((m) => m.version));
  const unknown = manifest.migrations.filter((v) => !known.has(v));
  if (unknown.length > 0)
    throw new RestoreRefused(
      `The backup was taken by a newer Hop: this one does not know its migrations ${unknown.join(', ')}. Restore it with that Hop (or a newer one).`,
    );
  const madeDir = !existsSync(dataDir);
  const db = await openPglite(dataDir);
  let report: RestoreReport;
  try {
    await migrateExactly(db, manifest.migrations);
    const thread = db.thread!;
    await thread.call({
      op: 'backup-load',
      tables: tables.map((t) => ({ table: t.table, columns: t.columns, csv: t.csv })),
      sequences: manifest.sequences,
    });
    const check = await thread.call<ThreadSnapshot>({ op: 'backup-snapshot', keepCsv: false });
    const restored = new Map(check.tables.map((t) => [t.table, t]));
    const compared = manifest.tables.map((t) => {
      const r = restored.get(t.table);
      return {
        table: t.table,
        rows: t.rows,
        restoredRows: r?.rows ?? 0,
        ok: r !== undefined && r.rows === t.rows && r.sha256 === t.sha256 && r.bytes === t.bytes,
      };
    });
    for (const extra of check.tables.filter((t) => !manifest.tables.some((m) => m.table === t.table)))
      compared.push({ table: extra.table, rows: 0, restoredRows: extra.rows, ok: false });
    const ok = compared.every((c) => c.ok);
    const newer = ok ? (await migrate(db)).applied : [];
    report = {
      manifest,
      tables: compared,
      newerMigrations: newer,
      ok,
      seconds: (performance.now() - started) / 1000,
    };
  } catch (err) {
    await db.close();
    discard(dataDir, madeDir);
    throw err;
  }
  await db.close();
  if (!report.ok) discard(dataDir, madeDir);
  return report;
}

/** Removes what a failed restore made, so no half-restored database is ever served. */
function discard(dataDir: string, madeDir: boolean): void {
  if (madeDir) rmSync(dataDir, { recursive: true, force: true });
  else for (const e of readdirSync(dataDir)) rmSync(join(dataDir, e), { recursive: true, force: true });
}
