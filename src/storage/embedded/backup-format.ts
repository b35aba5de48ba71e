// The embedded backup's file format, without I/O: frames that the file's gzip stream carries.
// A start line names the format; each table is a JSON header line and then exactly `bytes` bytes
// of CSV (with its header row, ordered by primary key); a manifest line ends the file. A reader
// checks every table's size and sha256 and the manifest's list, so a cut or damaged file is
// refused instead of restoring part of a database.
import { createHash } from 'node:crypto';

export const BACKUP_FORMAT = 'hop-embedded-backup';
export const BACKUP_VERSION = 1;

export interface TableHeader {
  readonly table: string;
  readonly rows: number;
  readonly bytes: number;
  readonly sha256: string;
  readonly columns: readonly string[];
}

/** A sequence's state when the backup was taken, and the column it numbers (if any). */
export interface SequenceState {
  readonly sequence: string;
  readonly table: string | null;
  readonly column: string | null;
  /** last_value, as text (bigint). */
  readonly last: string;
  readonly called: boolean;
}

export interface Manifest {
  readonly format: typeof BACKUP_FORMAT;
  readonly version: number;
  /** ISO 8601, UTC: when the snapshot was read. */
  readonly createdAt: string;
  readonly pglite: string;
  /** schema_migrations at the snapshot, in order. */
  readonly migrations: readonly string[];
  readonly tables: readonly Omit<TableHeader, 'columns'>[];
  /** The newest change in the outbox the backup holds (0: none). */
  readonly lastChangeSeq: number;
  readonly sequences: readonly SequenceState[];
}

export type Frame =
  | { readonly kind: 'table'; readonly header: TableHeader; readonly csv: Buffer }
  | { readonly kind: 'manifest'; readonly manifest: Manifest };

export class BackupFormatError extends Error {
  override name = 'BackupFormatError';
}

const line = (value: unknown): Buffer => Buffer.from(`${JSON.stringify(value)}\n`);

export const sha256Hex = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** The first frame: what the file is. */
export function encodeStart(): Buffer {
  return line({ format: BACKUP_FORMAT, version: BACKUP_VERSION });
}

/** A table frame: its header line, then its CSV as it is. */
export function encodeTable(header: TableHeader, csv: Uint8Array): Buffer[] {
  if (csv.byteLength !== header.bytes)
    throw new Error(`table ${header.table}: ${csv.byteLength} bytes, header says ${header.bytes}`);
  const { table, rows, bytes, sha256, columns } = header;
  return [
    line({ table, rows, bytes, sha256, columns }),
    Buffer.from(csv.buffer, csv.byteOffset, csv.byteLength),
  ];
}

export function encodeManifest(manifest: Manifest): Buffer {
  return line({ manifest });
}

/** Longest JSON line a reader accepts: a header or the manifest, never the data. */
const MAX_LINE = 4 * 1024 * 1024;

const isString = (v: unknown): v is string => typeof v === 'string';
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function tableHeader(v: Record<string, unknown>): TableHeader {
  const { table, rows, bytes, sha256, columns } = v;
  if (
    !isString(table) ||
    !isCount(rows) ||
    !isCount(bytes) ||
    !isString(sha256) ||
    !/^[0-9a-f]{64}$/.test(sha256) ||
    !Array.isArray(columns) ||
    !columns.every(isString)
  )
    throw new BackupFormatError('the backup is corrupt: a table header is malformed');
  return { table, rows, bytes, sha256, columns };
}

function manifestOf(v: unknown): Manifest {
  const m = v as Partial<Manifest> | null;
  if (
    m === null ||
    typeof m !== 'object' ||
    m.format !== BACKUP_FORMAT ||
    !isString(m.createdAt) ||
    !isString(m.pglite) ||
    !Array.isArray(m.migrations) ||
    !m.migrations.every(isString) ||
    !Array.isArray(m.tables) ||
    !isCount(m.lastChangeSeq) ||
    !Array.isArray(m.sequences)
  )
    throw new BackupFormatError('the backup is corrupt: its manifest is malformed');
  if (m.version !== BACKUP_VERSION)
    throw new BackupFormatError(
      `the backup is format version ${String(m.version)}; this Hop reads version ${BACKUP_VERSION}`,
    );
  return m as Manifest;
}

/**
 * Reads frames from the decompressed bytes as they come: push() returns the frames completed so
 * far (each table checked against its header), end() says whether the file was whole.
 */
export class BackupDecoder {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private started = false;
  private table: TableHeader | null = null;
  private manifest: Manifest | null = null;
  private readonly seen: Omit<TableHeader, 'columns'>[] = [];

  push(chunk: Uint8Array): Frame[] {
    if (chunk.byteLength === 0) return [];
    if (this.manifest !== null) throw new BackupFormatError('the backup is corrupt: data after its manifest');
    this.pending.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.pendingBytes += chunk.byteLength;
    const frames: Frame[] = [];
    for (;;) {
      if (this.table !== null) {
        if (this.pendingBytes < this.table.bytes) break;
        const all = this.take();
        const csv = all.subarray(0, this.table.bytes);
        this.keep(all.subarray(this.table.bytes));
        frames.push(this.finishTable(this.table, csv));
        this.table = null;
        continue;
      }
      const all = this.take();
      const nl = all.indexOf(0x0a);
      if (nl < 0) {
        if (all.length > MAX_LINE)
          throw new BackupFormatError('the backup is corrupt: a frame header is too long');
        this.keep(all);
        break;
      }
      this.keep(all.subarray(nl + 1));
      const frame = this.readLine(all.subarray(0, nl));
      if (frame !== null) frames.push(frame);
      if (this.manifest !== null) {
        if (this.pendingBytes > 0)
          throw new BackupFormatError('the backup is corrupt: data after its manifest');
        break;
      }
    }
    return frames;
  }

  /** The manifest, once the whole file has been pushed; throws if it ended early. */
  end(): Manifest {
    if (!this.started) throw new BackupFormatError('the file is empty, not a Hop backup');
    if (this.table !== null)
      throw new BackupFormatError(
        `the backup is truncated: table ${this.table.table} has ${this.pendingBytes} of its ${this.table.bytes} bytes`,
      );
    if (this.manifest === null)
      throw new BackupFormatError(
        `the backup is truncated: it ends after ${this.seen.length} tables, without its manifest`,
      );
    return this.manifest;
  }

  private take(): Buffer {
    const b = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    this.pending = [];
    this.pendingBytes = 0;
    return b;
  }

  private keep(b: Buffer): void {
    if (b.length === 0) return;
    this.pending.push(b);
    this.pendingBytes += b.length;
  }

  private readLine(raw: Buffer): Frame | null {
    let v: unknown;
    try {
      v = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new BackupFormatError(
        this.started ? 'the backup is corrupt: a frame header is not JSON' : 'the file is not a Hop backup',
      );
    }
    if (v === null || typeof v !== 'object')
      throw new BackupFormatError('the backup is corrupt: a frame header is not an object');
    const o = v as Record<string, unknown>;
    if (!this.started) {
      if (o.format !== BACKUP_FORMAT) throw new BackupFormatError('the file is not a Hop backup');
      if (o.version !== BACKUP_VERSION)
        throw new BackupFormatError(
          `the backup is format version ${String(o.version)}; this Hop reads version ${BACKUP_VERSION}`,
        );
      this.started = true;
      return null;
    }
    if ('manifest' in o) {
      const manifest = manifestOf(o.manifest);
      this.checkManifest(manifest);
      this.manifest = manifest;
      return { kind: 'manifest', manifest };
    }
    this.table = tableHeader(o);
    return null;
  }

  private finishTable(header: TableHeader, csv: Buffer): Frame {
    if (sha256Hex(csv) !== header.sha256)
      throw new BackupFormatError(`the backup is corrupt: table ${header.table} does not match its sha256`);
    const { table, rows, bytes, sha256 } = header;
    this.seen.push({ table, rows, bytes, sha256 });
    return { kind: 'table', header, csv };
  }

  private checkManifest(m: Manifest): void {
    const listed = m.tables.map((t) => `${t.table}:${t.rows}:${t.bytes}:${t.sha256}`).join(',');
    const read = this.seen.map((t) => `${t.table}:${t.rows}:${t.bytes}:${t.sha256}`).join(',');
    if (listed !== read)
      throw new BackupFormatError("the backup is corrupt: its tables do not match its manifest's list");
  }
}
