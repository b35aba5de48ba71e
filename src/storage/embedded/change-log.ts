// The embedded default's durable record of link changes (DESIGN §12). PGlite runs with fsync off
// (its file system cannot fsync), so a power loss may take recent commits with it. Every change
// is already an outbox row (§6); this log copies the outbox's new rows to an append-only file
// and fsyncs it before a create, update or delete is answered. Writes that arrive together share
// one read and one fsync (group commit). At start-up the log is replayed over whatever the
// database holds: the last consistent state, or a restored backup.
//
// Files: one directory of segments, `<after>.log`, each holding the changes with seq > after, in
// seq order, one line each: `<crc32 hex> <seq> <change JSON>`. A torn last line (the write a crash
// interrupted, never acknowledged) is cut off on open; damage anywhere else is an error.
import {
  closeSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { decodeChange, encodeChange } from '../../events/change-stream.ts';
import type { ChangeEvent } from '../ports.ts';

/** What the log reads from and replays into: the embedded store's outbox. */
export interface ChangeSource {
  readChanges(afterSeq: number, limit: number): Promise<ChangeEvent[]>;
  lastChangeSeq(): Promise<number>;
  applyChanges(changes: readonly ChangeEvent[]): Promise<number>;
}

export interface ChangeLogObserver {
  /** One group commit: how many changes it appended and how long the read, write and fsync took. */
  synced(changes: number, seconds: number): void;
}

const SEGMENT_BYTES = 64 * 1024 * 1024;
const READ_PAGE = 1_000;
const REPLAY_BATCH = 500;
const NAME = /^(\d{20})\.log$/;

const segmentName = (after: number): string => `${String(after).padStart(20, '0')}.log`;

export function encodeLine(c: ChangeEvent): string {
  const body = `${c.seq} ${encodeChange(c)}`;
  return `${crc32(body).toString(16).padStart(8, '0')} ${body}\n`;
}

/** A line's change, or null when the line is damaged (a wrong checksum, a partial line). */
export function decodeLine(line: string): ChangeEvent | null {
  const sp = line.indexOf(' ');
  if (sp !== 8) return null;
  const body = line.slice(9);
  if (crc32(body).toString(16).padStart(8, '0') !== line.slice(0, 8)) return null;
  const sp2 = body.indexOf(' ');
  const seq = Number(body.slice(0, sp2));
  if (!Number.isSafeInteger(seq) || seq <= 0) return null;
  try {
    return decodeChange(seq, body.slice(sp2 + 1));
  } catch {
    return null;
  }
}

export class ChangeLogDamaged extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChangeLogDamaged';
  }
}

export class ChangeLogGap extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChangeLogGap';
  }
}

interface Segment {
  readonly after: number;
  readonly path: string;
}

/** A segment's changes, in order; a damaged last line counts only where `tornTailAllowed`. */
function readSegment(
  seg: Segment,
  tornTailAllowed: boolean,
): { changes: ChangeEvent[]; goodBytes: number; torn: boolean } {
  const buf = readFileSync(seg.path);
  const changes: ChangeEvent[] = [];
  let start = 0;
  let last = seg.after;
  while (start < buf.length) {
    const nl = buf.indexOf(10, start);
    const end = nl < 0 ? buf.length : nl;
    const change = nl < 0 ? null : decodeLine(buf.toString('utf8', start, end));
    if (change === null || change.seq <= last) {
      // Only the very end may be damaged: the append a crash cut short, which no one was told of.
      if (tornTailAllowed && (nl < 0 || nl === buf.length - 1))
        return { changes, goodBytes: start, torn: true };
      throw new ChangeLogDamaged(
        `The change log ${seg.path} is damaged at byte ${start} (${change === null ? 'a line fails its checksum' : `seq ${change.seq} after ${last}`}). ` +
          'Move the log away and restore the newest backup, then replay what the log holds up to that point.',
      );
    }
    changes.push(change);
    last = change.seq;
    start = end + 1;
  }
  return { changes, goodBytes: buf.length, torn: false };
}

export class ChangeLog {
  private fh: FileHandle;
  private bytes: number;
  private lastLogged: number;
  private running: Promise<void> | null = null;
  private next: Promise<void> | null = null;
  private closed = false;

  private constructor(
    readonly dir: string,
    private readonly source: ChangeSource,
    private readonly observer: ChangeLogObserver | null,
    private segments: Segment[],
    fh: FileHandle,
    bytes: number,
    lastLogged: number,
  ) {
    this.fh = fh;
    this.bytes = bytes;
    this.lastLogged = lastLogged;
  }

  /**
   * Opens (or starts) the log in `dir`, replays into `source` what it holds beyond the database,
   * then appends what the database holds beyond it (commits whose fsync a crash pre-empted: never
   * acknowledged, but kept). Refuses a log that starts after the database ends: the changes in
   * between are in neither, and starting would hide that.
   */
  static async open(
    dir: string,
    source: ChangeSource,
    observer: ChangeLogObserver | null = null,
  ): Promise<{ log: ChangeLog; replayed: number; tornBytes: number }> {
    mkdirSync(dir, { recursive: true });
    const segments = listSegments(dir);
    const dbSeq = await source.lastChangeSeq();
    let replayed = 0;
    let tornBytes = 0;
    // The highest seq in the files, where appending resumes (none read yet: null).
    let logTail: number | null = null;
    if (segments.length === 0) {
      segments.push({ after: dbSeq, path: join(dir, segmentName(dbSeq)) });
      createSegmentFile(dir, segments[0]!.path);
    } else {
      let pending: ChangeEvent[] = [];
      for (const [i, seg] of segments.entries()) {
        const covered = Math.max(dbSeq, logTail ?? dbSeq);
        if (seg.after > covered) {
          throw new ChangeLogGap(
            `The change log in ${dir} goes on after change ${seg.after}, but the database and the log before it end at ${covered}: ` +
              `changes ${covered + 1} to ${seg.after} are in neither. Restore the newest backup (hop restore) before starting, ` +
              'or move the log away to start without it.',
          );
        }
        const isLast = i === segments.length - 1;
        const read = readSegment(seg, isLast);
        if (read.torn) {
          tornBytes = statSize(seg.path) - read.goodBytes;
          truncateTo(seg.path, read.goodBytes);
        }
        logTail = Math.max(logTail ?? 0, seg.after);
        for (const c of read.changes) {
          logTail = c.seq;
          if (c.seq <= dbSeq) continue;
          pending.push(c);
          if (pending.length >= REPLAY_BATCH) {
            replayed += await source.applyChanges(pending);
            pending = [];
          }
        }
      }
      if (pending.length > 0) replayed += await source.applyChanges(pending);
    }
    const tail = segments[segments.length - 1]!;
    const fh = await open(tail.path, 'a');
    const log = new ChangeLog(dir, source, observer, segments, fh, statSize(tail.path), logTail ?? dbSeq);
    await log.sync();
    return { log, replayed, tornBytes };
  }

  /**
   * Point in time: replays into `source` the logged changes it lacks made before `until`, and
   * writes nothing to the log (it may be another Hop's, still in use). For a side copy restored
   * from a backup, brought up to just before a mistake. Returns how many were applied.
   */
  static async replayUntil(dir: string, source: ChangeSource, until: Date): Promise<number> {
    const segments = listSegments(dir);
    const dbSeq = await source.lastChangeSeq();
    const first = segments[0];
    if (first !== undefined && first.after > dbSeq) {
      throw new ChangeLogGap(
        `The change log in ${dir} starts after change ${first.after}, but the copy holds changes only up to ${dbSeq}: restore an older backup.`,
      );
    }
    let applied = 0;
    let pending: ChangeEvent[] = [];
    for (const [i, seg] of segments.entries()) {
      for (const c of readSegment(seg, i === segments.length - 1).changes) {
        if (c.seq <= dbSeq) continue;
        if (c.at >= until) {
          if (pending.length > 0) applied += await source.applyChanges(pending);
          return applied;
        }
        pending.push(c);
        if (pending.length >= REPLAY_BATCH) {
          applied += await source.applyChanges(pending);
          pending = [];
        }
      }
    }
    if (pending.length > 0) applied += await source.applyChanges(pending);
    return applied;
  }

  /**
   * pruneThrough for a log no process has open (a backup of a stopped data directory): removes the
   * segments whose changes all lie at or below `seq`; the last segment always stays.
   */
  static pruneDir(dir: string, seq: number): number {
    return dropCovered(dir, listSegments(dir), seq);
  }

  /** The highest seq the log holds on disk. */
  get lastSeq(): number {
    return this.lastLogged;
  }

  /**
   * Resolves once every change committed before the call is in the log and fsynced. Callers that
   * arrive while a sync runs share the next one (its read may predate their commit).
   */
  sync(): Promise<void> {
    if (this.running === null) return this.start();
    this.next ??= this.running
      .catch(() => {})
      .then(() => {
        this.next = null;
        return this.start();
      });
    return this.next;
  }

  private start(): Promise<void> {
    const run = this.appendNew().finally(() => {
      if (this.running === run) this.running = null;
    });
    this.running = run;
    return run;
  }

  private async appendNew(): Promise<void> {
    if (this.closed) throw new Error('the change log is closed');
    const t0 = performance.now();
    let appended = 0;
    for (;;) {
      const page = await this.source.readChanges(this.lastLogged, READ_PAGE);
      if (page.length === 0) break;
      const text = page.map(encodeLine).join('');
      const buf = Buffer.from(text, 'utf8');
      await this.fh.write(buf, 0, buf.length);
      this.bytes += buf.length;
      this.lastLogged = page[page.length - 1]!.seq;
      appended += page.length;
      if (page.length < READ_PAGE) break;
    }
    if (appended === 0) return;
    await this.fh.datasync();
    this.observer?.synced(appended, (performance.now() - t0) / 1000);
    if (this.bytes >= SEGMENT_BYTES) await this.rotate();
  }

  /** Starts a new segment after the last logged change. */
  private async rotate(): Promise<void> {
    const seg = { after: this.lastLogged, path: join(this.dir, segmentName(this.lastLogged)) };
    if (seg.path === this.segments[this.segments.length - 1]!.path) return;
    createSegmentFile(this.dir, seg.path);
    const fh = await open(seg.path, 'a');
    await this.fh.close();
    this.fh = fh;
    this.bytes = 0;
    this.segments.push(seg);
  }

  /**
   * A backup holds every change up to `seq`: segments whose changes all lie at or below it are no
   * longer needed to rebuild the database, and go. The segment being written is kept.
   */
  async pruneThrough(seq: number): Promise<number> {
    await this.sync();
    await this.rotate();
    return dropCovered(this.dir, this.segments, seq);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.sync().catch(() => {});
    this.closed = true;
    await this.fh.close();
  }
}

/**
 * Removes (from disk and from `segments`) the leading segments whose changes all lie at or below
 * `seq`: the next one starts at or below it. The last segment always stays.
 */
function dropCovered(dir: string, segments: Segment[], seq: number): number {
  let removed = 0;
  while (segments.length > 1 && segments[1]!.after <= seq) {
    rmSync(segments.shift()!.path, { force: true });
    removed++;
  }
  if (removed > 0) fsyncDir(dir);
  return removed;
}

function listSegments(dir: string): Segment[] {
  return readdirSync(dir)
    .map((name) => NAME.exec(name))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ after: Number(m[1]), path: join(dir, m[0]) }))
    .sort((a, b) => a.after - b.after);
}

/** A new empty segment whose name is durable too (the directory entry is fsynced). */
function createSegmentFile(dir: string, path: string): void {
  closeSync(openSync(path, 'a'));
  fsyncDir(dir);
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function statSize(path: string): number {
  return statSync(path).size;
}

function truncateTo(path: string, bytes: number): void {
  const fd = openSync(path, 'r+');
  try {
    ftruncateSync(fd, bytes);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
