// The embedded database's logical backup and restore: a snapshot read on the database thread
// (backup-thread.mjs) in chunks that stream, as they are read, into a gzipped frame stream
// (backup-format.ts) to FILE.tmp, fsynced and renamed; a restore into an empty data directory that
// loads the tables chunk by chunk into a database migrated to the backup's schema and checks every
// table's rows and sha256 against the manifest. Neither holds more than a few chunks in memory.
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
  type Frame,
  type Manifest,
  type SequenceState,
  TableEncoder,
  type TableSummary,
} from './backup-format.ts';
import { installedPgliteVersion } from './data-template.ts';
import { openPglite } from './pglite-client.ts';

/** A backup once its snapshot's transaction has ended. */
export interface BackupSummary {
  readonly manifest: Manifest;
  /** How long the database answered nothing else (the snapshot's transaction). */
  readonly pauseMs: number;
  readonly tables: number;
  readonly rows: number;
}

export interface BackupRun {
  /** When the snapshot was asked for (the manifest's createdAt). */
  readonly createdAt: Date;
  /** The file's bytes (gzip over the frames), produced as the database thread reads the chunks. */
  readonly body: Readable;
  /** Settles when the snapshot's transaction has ended (the manifest is then the body's last frame). */
  readonly done: Promise<BackupSummary>;
}

/** What the database thread answers an export with (its chunks came before, as notices). */
interface ExportResult {
  migrations: string[];
  lastChangeSeq: number;
  sequences: SequenceState[];
  pauseMs: number;
}

type ExportNotice =
  | { kind: 'backup-table'; stream: number; table: string; columns: string[] }
  | { kind: 'backup-chunk'; stream: number; table: string; index: number; rows: number; csv: Uint8Array };

/** Each thread's running exports by stream id: one notice listener per thread dispatches to them. */
const exportsByThread = new WeakMap<DatabaseThread, Map<number, (n: ExportNotice) => void>>();
let nextStream = 1;

function listenExport(thread: DatabaseThread, stream: number, fn: (n: ExportNotice) => void): () => void {
  let streams = exportsByThread.get(thread);
  if (streams === undefined) {
    const all = new Map<number, (n: ExportNotice) => void>();
    thread.onNotice((n) => {
      const s = (n as { stream?: unknown }).stream;
      if (typeof s === 'number') all.get(s)?.(n as ExportNotice);
    });
    exportsByThread.set(thread, all);
    streams = all;
  }
  streams.set(stream, fn);
  return () => streams.delete(stream);
}

/**
 * Starts a backup on the database's thread (the thread flushes the clicks it holds first). Its
 * chunks become frames as they arrive; a chunk is acknowledged once the reader has taken it, and
 * the thread reads on only while little is unacknowledged, so memory stays bounded however large
 * the database (and a slow reader lengthens the snapshot's pause). Destroying `body` before the
 * end cancels the snapshot.
 */
export function startBackup(thread: DatabaseThread): BackupRun {
  const createdAt = new Date();
  const stream = nextStream++;
  const summaries: TableSummary[] = [];
  let table: TableEncoder | null = null;
  let owed = 0;
  let settled = false;
  const frames = new Readable({
    read() {
      if (owed === 0 || settled) return;
      thread.post({ op: 'backup-ack', stream, bytes: owed });
      owed = 0;
    },
    destroy(err, callback) {
      if (!settled) thread.post({ op: 'backup-cancel', stream });
      callback(err);
    },
  });
  const endTable = () => {
    if (table === null) return;
    const { frame, summary } = table.end();
    summaries.push(summary);
    frames.push(frame);
    table = null;
  };
  const stop = listenExport(thread, stream, (n) => {
    if (frames.destroyed) return;
    if (n.kind === 'backup-table') {
      endTable();
      table = new TableEncoder(n.table, n.columns);
      frames.push(table.start());
      return;
    }
    if (table?.table !== n.table) {
      frames.destroy(new Error(`backup: a chunk of ${n.table} came outside its table`));
      return;
    }
    let more = true;
    for (const b of table.chunk(n.rows, n.csv)) more = frames.push(b);
    // Taken at once while the reader wants more; otherwise when it next asks (read()).
    if (more) thread.post({ op: 'backup-ack', stream, bytes: n.csv.byteLength });
    else owed += n.csv.byteLength;
  });
  frames.push(encodeStart());
  const done = thread.call<ExportResult>({ op: 'backup-export', stream }).then(
    (r) => {
      settled = true;
      stop();
      endTable();
      const manifest: Manifest = {
        format: BACKUP_FORMAT,
        version: BACKUP_VERSION,
        createdAt: createdAt.toISOString(),
        pglite: installedPgliteVersion(),
        migrations: r.migrations,
        tables: summaries,
        lastChangeSeq: r.lastChangeSeq,
        sequences: r.sequences,
      };
      frames.push(encodeManifest(manifest));
      frames.push(null);
      return {
        manifest,
        pauseMs: r.pauseMs,
        tables: summaries.length,
        rows: summaries.reduce((n, t) => n + t.rows, 0),
      };
    },
    (err: unknown) => {
      settled = true;
      stop();
      frames.destroy(err as Error);
      throw err;
    },
  );
  // A caller that only reads the body learns of a failure from it.
  done.catch(() => {});
  // Level 6 is zlib's default; CSV of codes and URLs packs about 4 to 5 times.
  const body = createGzip();
  pipeline(frames, body).catch(() => {});
  return { createdAt, body, done };
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

/** Takes a backup into FILE (durably, as writeDurably does). */
export async function writeBackupFile(
  thread: DatabaseThread,
  file: string,
): Promise<BackupSummary & { bytes: number }> {
  const run = startBackup(thread);
  const bytes = await writeDurably(file, run.body);
  return { ...(await run.done), bytes };
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
 * Decodes a backup's bytes (gzipped) and checks it whole: every chunk's size and sha256, every
 * table's totals, and the manifest. `onFrame` receives each frame as it is read, and the file is
 * read on only once the promise it returns settles (omit it to check without keeping anything).
 */
export async function readBackup(
  source: Readable,
  onFrame: (f: Frame) => void | Promise<void> = () => {},
): Promise<Manifest> {
  const decoder = new BackupDecoder();
  try {
    await pipeline(
      source,
      createGunzip(),
      new Writable({
        write(chunk: Buffer, _enc, done) {
          (async () => {
            for (const f of decoder.push(chunk)) await onFrame(f);
          })().then(() => done(), done);
        },
      }),
    );
  } catch (err) {
    throw readError(err);
  }
  return decoder.end();
}

/** Reads and checks a backup file whole, holding one chunk at a time; its manifest. */
export async function readBackupFile(file: string): Promise<Manifest> {
  return readBackup(createReadStream(file));
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

/** What the database thread answers a restore's check with. */
interface CheckResult {
  tables: { table: string; rows: number; bytes: number; sha256: string }[];
}

/** Chunks a restore hands the database thread before it waits for the first of them. */
const LOAD_AHEAD = 2;

/** Loads the backup's chunks into the open load, as the file is read a second time. */
async function loadChunks(thread: DatabaseThread, file: string): Promise<void> {
  const columns = new Map<string, readonly string[]>();
  const inFlight: Promise<unknown>[] = [];
  await readBackup(createReadStream(file), async (f) => {
    if (f.kind === 'table') columns.set(f.table, f.columns);
    if (f.kind !== 'chunk') return;
    // Its own copy: the decoder's buffer may hold the next frame's bytes too.
    const loaded = thread.call({
      op: 'backup-load-chunk',
      table: f.table,
      columns: columns.get(f.table),
      index: f.index,
      csv: new Uint8Array(f.csv),
    });
    loaded.catch(() => {});
    inFlight.push(loaded);
    while (inFlight.length >= LOAD_AHEAD) await inFlight.shift();
  });
  for (const l of inFlight) await l;
}

/**
 * Restores a backup file into an empty (or missing) data directory, then checks it: each table's
 * rows and the sha256 of its ordered CSV export must equal the manifest's. The file is read twice,
 * a chunk at a time: once to check it whole (and learn its migrations, listed in its manifest at
 * the end) before anything is made, then to load it into a database migrated to the backup's
 * schema, in one transaction. The check runs on the loaded data, before migrations newer than the
 * backup (which may rewrite rows by design) are applied. A restore that fails or does not match
 * leaves no database behind.
 */
export async function restoreBackup(file: string, dataDir: string): Promise<RestoreReport> {
  const started = performance.now();
  if (!existsSync(file)) throw new RestoreRefused(`No backup file at ${file}.`);
  if (existsSync(dataDir) && (!statSync(dataDir).isDirectory() || readdirSync(dataDir).length > 0))
    throw new RestoreRefused(
      `The data directory ${dataDir} is not empty: a restore goes into an empty (or missing) directory. Move its contents away, or restore with --data-dir into another one.`,
    );
  const refused = (err: unknown) =>
    err instanceof BackupFormatError
      ? new RestoreRefused(`Cannot restore ${basename(file)}: ${err.message}.`)
      : err;
  let manifest: Manifest;
  try {
    manifest = await readBackupFile(file);
  } catch (err) {
    throw refused(err);
  }
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
    await thread.call({ op: 'backup-load-begin' });
    try {
      await loadChunks(thread, file);
      await thread.call({ op: 'backup-load-end', sequences: manifest.sequences });
    } catch (err) {
      await thread.call({ op: 'backup-load-abort' }).catch(() => {});
      throw refused(err);
    }
    const check = await thread.call<CheckResult>({ op: 'backup-check' });
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
