// The embedded backup's file format, without I/O: frames that the file's gzip stream carries.
// A start line names the format. Each table is a JSON header line, then its CSV in chunks (each a
// JSON line with the chunk's number, rows, size and sha256, then exactly that many bytes; the
// first chunk holds the CSV's header row), then an end line with the table's rows, size and the
// sha256 of its whole CSV (the chunks' bytes in order); a manifest line ends the file. A reader
// checks every chunk, every table's totals and the manifest's list as it goes, so a cut, damaged
// or reordered file is refused instead of restoring part of a database, and holds one chunk at a time.
import { createHash, type Hash } from 'node:crypto';

export const BACKUP_FORMAT = 'hop-embedded-backup';
/** 2: tables in chunks (1 held each table's CSV whole). */
export const BACKUP_VERSION = 2;

/** A table as the manifest and its end line list it. */
export interface TableSummary {
  readonly table: string;
  readonly rows: number;
  readonly bytes: number;
  /** sha256 of the table's whole CSV: its chunks' bytes in order. */
  readonly sha256: string;
  readonly chunks: number;
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
  readonly tables: readonly TableSummary[];
  /** The newest change in the outbox the backup holds (0: none). */
  readonly lastChangeSeq: number;
  readonly sequences: readonly SequenceState[];
}

export type Frame =
  | { readonly kind: 'table'; readonly table: string; readonly columns: readonly string[] }
  /** `csv` starts with the CSV's header row when `index` is 0. */
  | {
      readonly kind: 'chunk';
      readonly table: string;
      readonly index: number;
      readonly rows: number;
      readonly csv: Buffer;
    }
  | { readonly kind: 'table-end'; readonly summary: TableSummary }
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

/**
 * Writes one table's frames as its chunks come, counting its rows and bytes and hashing its whole
 * CSV on the way (nothing of it is kept).
 */
export class TableEncoder {
  readonly table: string;
  private readonly columns: readonly string[];
  private readonly hash: Hash = createHash('sha256');
  private chunks = 0;
  private rows = 0;
  private bytes = 0;

  constructor(table: string, columns: readonly string[]) {
    this.table = table;
    this.columns = columns;
  }

  start(): Buffer {
    return line({ table: this.table, columns: this.columns });
  }

  /** A chunk's header line and its bytes (the first chunk starts with the CSV's header row). */
  chunk(rows: number, csv: Uint8Array): Buffer[] {
    const data = Buffer.from(csv.buffer, csv.byteOffset, csv.byteLength);
    this.hash.update(data);
    const frame = line({ chunk: this.chunks, rows, bytes: data.byteLength, sha256: sha256Hex(data) });
    this.chunks++;
    this.rows += rows;
    this.bytes += data.byteLength;
    return [frame, data];
  }

  /** The end line, and the table as the manifest lists it. */
  end(): { frame: Buffer; summary: TableSummary } {
    const summary: TableSummary = {
      table: this.table,
      rows: this.rows,
      bytes: this.bytes,
      sha256: this.hash.digest('hex'),
      chunks: this.chunks,
    };
    const { table, ...rest } = summary;
    return { frame: line({ end: table, ...rest }), summary };
  }
}

export function encodeManifest(manifest: Manifest): Buffer {
  return line({ manifest });
}

/** Longest JSON line a reader accepts: a header or the manifest, never the data. */
const MAX_LINE = 4 * 1024 * 1024;
/** Largest chunk a reader accepts (a writer aims at a few MB; one huge row can make it more). */
const MAX_CHUNK = 1024 * 1024 * 1024;

const isString = (v: unknown): v is string => typeof v === 'string';
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isSha = (v: unknown): v is string => isString(v) && /^[0-9a-f]{64}$/.test(v);

const corrupt = (what: string) => new BackupFormatError(`the backup is corrupt: ${what}`);

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
    throw corrupt('its manifest is malformed');
  if (m.version !== BACKUP_VERSION)
    throw new BackupFormatError(
      `the backup is format version ${String(m.version)}; this Hop reads version ${BACKUP_VERSION}`,
    );
  return m as Manifest;
}

const summaryKey = (t: TableSummary) => `${t.table}:${t.rows}:${t.bytes}:${t.sha256}:${t.chunks}`;

/** The table being read: its header, and its chunks so far. */
interface OpenTable {
  readonly table: string;
  readonly hash: Hash;
  chunks: number;
  rows: number;
  bytes: number;
  /** The chunk whose bytes come next, once its line is read. */
  chunk: { index: number; rows: number; bytes: number; sha256: string } | null;
}

/**
 * Reads frames from the decompressed bytes as they come: push() returns the frames completed so
 * far (each chunk checked against its line, each table against its end line), end() says whether
 * the file was whole. It holds at most one chunk's bytes.
 */
export class BackupDecoder {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private started = false;
  private table: OpenTable | null = null;
  private manifest: Manifest | null = null;
  private readonly seen: TableSummary[] = [];

  push(chunk: Uint8Array): Frame[] {
    if (chunk.byteLength === 0) return [];
    if (this.manifest !== null) throw corrupt('data after its manifest');
    this.pending.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.pendingBytes += chunk.byteLength;
    const frames: Frame[] = [];
    for (;;) {
      const want = this.table?.chunk ?? null;
      if (want !== null) {
        if (this.pendingBytes < want.bytes) break;
        const all = this.take();
        const csv = all.subarray(0, want.bytes);
        this.keep(all.subarray(want.bytes));
        frames.push(this.finishChunk(this.table!, csv));
        continue;
      }
      const all = this.take();
      const nl = all.indexOf(0x0a);
      if (nl < 0) {
        if (all.length > MAX_LINE) throw corrupt('a frame header is too long');
        this.keep(all);
        break;
      }
      this.keep(all.subarray(nl + 1));
      const frame = this.readLine(all.subarray(0, nl));
      if (frame !== null) frames.push(frame);
      if (this.manifest !== null) {
        if (this.pendingBytes > 0) throw corrupt('data after its manifest');
        break;
      }
    }
    return frames;
  }

  /** The manifest, once the whole file has been pushed; throws if it ended early. */
  end(): Manifest {
    if (!this.started) throw new BackupFormatError('the file is empty, not a Hop backup');
    const t = this.table;
    if (t?.chunk != null)
      throw new BackupFormatError(
        `the backup is truncated: table ${t.table} has ${this.pendingBytes} of its chunk ${t.chunk.index}'s ${t.chunk.bytes} bytes`,
      );
    if (t !== null)
      throw new BackupFormatError(
        `the backup is truncated: table ${t.table} ends after ${t.chunks} chunks, without its end`,
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
      if (this.started) throw corrupt('a frame header is not JSON');
      throw new BackupFormatError('the file is not a Hop backup');
    }
    if (v === null || typeof v !== 'object') throw corrupt('a frame header is not an object');
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
    const t = this.table;
    if (t !== null) return 'end' in o ? this.endTable(t, o) : this.startChunk(t, o);
    if ('manifest' in o) {
      const manifest = manifestOf(o.manifest);
      const listed = manifest.tables.map(summaryKey).join(',');
      if (listed !== this.seen.map(summaryKey).join(','))
        throw corrupt("its tables do not match its manifest's list");
      this.manifest = manifest;
      return { kind: 'manifest', manifest };
    }
    const { table, columns } = o;
    if (!isString(table) || !Array.isArray(columns) || !columns.every(isString))
      throw corrupt('a table header is malformed');
    this.table = { table, hash: createHash('sha256'), chunks: 0, rows: 0, bytes: 0, chunk: null };
    return { kind: 'table', table, columns };
  }

  private startChunk(t: OpenTable, o: Record<string, unknown>): null {
    const { chunk, rows, bytes, sha256 } = o;
    if (!isCount(chunk) || !isCount(rows) || !isCount(bytes) || !isSha(sha256))
      throw corrupt(`a chunk header of table ${t.table} is malformed`);
    if (chunk !== t.chunks)
      throw corrupt(`table ${t.table} has chunk ${chunk} where chunk ${t.chunks} belongs`);
    if (bytes > MAX_CHUNK) throw corrupt(`table ${t.table}'s chunk ${chunk} is too large`);
    t.chunk = { index: chunk, rows, bytes, sha256 };
    return null;
  }

  private finishChunk(t: OpenTable, csv: Buffer): Frame {
    const c = t.chunk!;
    if (sha256Hex(csv) !== c.sha256)
      throw corrupt(`table ${t.table}'s chunk ${c.index} does not match its sha256`);
    t.hash.update(csv);
    t.chunks++;
    t.rows += c.rows;
    t.bytes += c.bytes;
    t.chunk = null;
    return { kind: 'chunk', table: t.table, index: c.index, rows: c.rows, csv };
  }

  private endTable(t: OpenTable, o: Record<string, unknown>): Frame {
    const { end, rows, bytes, sha256, chunks } = o;
    if (end !== t.table || !isCount(rows) || !isCount(bytes) || !isSha(sha256) || !isCount(chunks))
      throw corrupt(`the end of table ${t.table} is malformed`);
    const summary: TableSummary = { table: t.table, rows, bytes, sha256, chunks };
    if (chunks !== t.chunks || chunks === 0)
      throw corrupt(`table ${t.table} has ${t.chunks} chunks, its end says ${chunks}`);
    if (rows !== t.rows || bytes !== t.bytes || sha256 !== t.hash.digest('hex'))
      throw corrupt(`table ${t.table} does not match its sha256`);
    this.seen.push(summary);
    this.table = null;
    return { kind: 'table-end', summary };
  }
}
