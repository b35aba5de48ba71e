// The embedded click pipeline (DESIGN §7). A redirect adds its click to in-memory sums and returns.
// Every flush interval the new clicks are stored raw: one row per batch, durable at once, so a
// SIGKILL loses at most one interval. Every few minutes (or when the sums hold foldRows rows) a fold
// writes the sums into the rollups. Folding minutes of clicks at once is what makes recording cheap:
// each rollup row costs the embedded database about 15-20 µs, and a long tail of links touched
// once or twice per second costs two or three rows per click when written each second, far fewer
// when summed over minutes. Stats count the sums not folded yet (PendingClicks), so a click shows at
// once. A fold writes its rows as ledger batches whose ids follow from the fold's id; the raw
// batches name the fold before the first is written, so a crash part way through is finished on the
// next start from the raw batches, each rollup batch applied once.

import { createHash } from 'node:crypto';
import {
  ALL_LINKS,
  type ClickEvent,
  type ClickSummary,
  COUNTED_BY,
  DAY_MS,
  floorTo,
  partOf,
} from '../domain/clicks.ts';
import { keyOnDomain } from '../domain/domains.ts';
import { FlatClickSums } from '../domain/flat-click-sums.ts';
import type { Logger } from '../logger.ts';
import type { ClickMetrics } from '../metrics/metrics.ts';
import type { ClickLog, ClickStore, PendingClicks, StatsQuery, VisitStore } from '../storage/ports.ts';
import type { EventSink } from './click-sink.ts';
import { uuid7 } from './uuid7.ts';

export interface FoldingClickSinkOptions {
  readonly flushMs: number;
  /** Clicks waiting to be stored that start a flush before the interval is up. */
  readonly batchSize: number;
  /** Clicks not yet stored raw, at most; beyond it new clicks are dropped and counted. */
  readonly maxBuffered: number;
  /** Longest a click waits to be folded into the rollups. */
  readonly foldMs: number;
  /** Increments and registers held in memory that start a fold early (memory stays bounded at about twice this). */
  readonly foldRows: number;
  /** Told of every click as it is accepted (the live feed). */
  readonly onClick?: (event: ClickEvent) => void;
  /** About how many rows each of a fold's rollup batches holds (default 1,000). */
  readonly rowsPerPart?: number;
}

/** Clicks summed together and folded together. */
interface Generation {
  readonly sums: FlatClickSums;
  /** Not yet stored raw. */
  pending: ClickEvent[];
  /** A raw batch whose write failed: written again first, as it is (same id). */
  retry: { readonly id: string; readonly events: ClickEvent[] } | null;
  /** Raw batches stored. */
  readonly stored: string[];
}

interface Fold {
  readonly gen: Generation;
  readonly id: string;
  readonly parts: number;
  /** The ledger id of each part's rollup batch. */
  readonly batchIds: readonly string[];
  begun: boolean;
  nextPart: number;
  /** Makes one part's rows (made when the part is written, not all at once). */
  part: ((k: number) => ClickSummary) | null;
  /** Clicks (all-links rows aside) and rows written so far, for the metrics. */
  clicks: number;
  rows: number;
  readonly started: number;
}

const MAX_EVENTS_PER_RAW_BATCH = 2_000;
// A rollup batch's transaction holds the embedded database: about this many rows keep it short.
const ROWS_PER_PART = 1_000;
// The writer rests this many times as long as its last batch took, so it uses at most a third of
// a core: under overload folds come less often and sum more, and redirects keep the CPU.
const REST_FACTOR = 2;

const newGeneration = (): Generation => ({
  sums: new FlatClickSums(),
  pending: [],
  retry: null,
  stored: [],
});

/** The ledger id of a fold's part: fixed by the fold, so a redone fold meets its own entries. */
export function foldBatchId(foldId: string, part: number): string {
  const h = createHash('sha256').update(`${foldId}/${part}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${((Number.parseInt(h[16]!, 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class FoldingClickSink implements EventSink {
  readonly active = true;
  private current = newGeneration();
  private folding: Fold | null = null;
  private writing: Promise<void> | null = null;
  /** Folded raw batches wait to be split into visit rows. */
  private splitDue = false;
  private lastFold = performance.now();
  private lastRaw = performance.now();
  private closed = false;
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;
  private readonly store: Pick<ClickStore, 'recordClickBatch'> &
    ClickLog &
    Partial<Pick<VisitStore, 'splitVisits'>>;
  private readonly opts: FoldingClickSinkOptions;
  private readonly metrics: ClickMetrics;
  private readonly log: Logger;

  private constructor(
    store: Pick<ClickStore, 'recordClickBatch'> & ClickLog & Partial<Pick<VisitStore, 'splitVisits'>>,
    opts: FoldingClickSinkOptions,
    metrics: ClickMetrics,
    log: Logger,
  ) {
    this.store = store;
    this.opts = opts;
    this.metrics = metrics;
    this.log = log;
  }

  /** Finishes what a previous process left (folds begun, raw batches unfolded), then starts. */
  static async open(
    store: Pick<ClickStore, 'recordClickBatch'> & ClickLog & Partial<Pick<VisitStore, 'splitVisits'>>,
    opts: FoldingClickSinkOptions,
    metrics: ClickMetrics,
    log: Logger,
  ): Promise<FoldingClickSink> {
    const sink = new FoldingClickSink(store, opts, metrics, log);
    const begun = new Map<string, Fold>();
    let recovered = 0;
    for (const b of await store.unfoldedClicks()) {
      recovered += b.events.length;
      let gen = sink.current;
      if (b.fold !== null) {
        let f = begun.get(b.fold.id);
        if (f === undefined) {
          f = sink.newFold(newGeneration(), b.fold.id, b.fold.parts);
          f.begun = true;
          begun.set(b.fold.id, f);
        }
        gen = f.gen;
      }
      for (const e of b.events) gen.sums.add(e);
      gen.stored.push(b.id);
    }
    for (const f of begun.values()) {
      sink.folding = f;
      await sink.advanceFold(f);
    }
    if (recovered > 0)
      log.info({ clicks: recovered, folds: begun.size }, 'clicks not yet folded taken up again');
    // Folded batches a previous process left unsplit are split when the writer is idle.
    sink.splitDue = store.splitVisits !== undefined;
    sink.schedule(opts.flushMs);
    return sink;
  }

  private newFold(gen: Generation, id: string, parts: number): Fold {
    return {
      gen,
      id,
      parts,
      batchIds: Array.from({ length: parts }, (_, k) => foldBatchId(id, k)),
      begun: false,
      nextPart: 0,
      part: null,
      clicks: 0,
      rows: 0,
      started: performance.now(),
    };
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.writeSome()
        .catch(() => {})
        .finally(() => {
          if (!this.stopped) this.schedule(this.opts.flushMs);
        });
    }, ms);
    this.timer.unref();
  }

  record(event: ClickEvent): void {
    if (
      this.closed ||
      this.buffered >= this.opts.maxBuffered ||
      this.current.sums.rows >= 2 * this.opts.foldRows
    ) {
      this.metrics.clicksDropped(1);
      return;
    }
    this.current.sums.add(event);
    this.current.pending.push(event);
    this.metrics.clicksRecorded(1);
    this.opts.onClick?.(event);
    if (this.current.pending.length >= this.opts.batchSize && this.writing === null) {
      void this.writeSome().catch(() => {});
    }
  }

  /** Clicks accepted but not yet stored raw. */
  get buffered(): number {
    // Asked on every click: no closure here.
    const c = this.current;
    const f = this.folding?.gen;
    const folding = f === undefined ? 0 : f.pending.length + (f.retry?.events.length ?? 0);
    return c.pending.length + (c.retry?.events.length ?? 0) + folding;
  }

  /** The held clicks that a stats query must count (see PendingClicks). */
  heldFor(q: StatsQuery): PendingClicks {
    const out: {
      rollups: PendingClicks['rollups'][number][];
      visitors: PendingClicks['visitors'][number][];
    } = {
      rollups: [],
      visitors: [],
    };
    const firstDay = floorTo(q.from, DAY_MS);
    const add = (sums: FlatClickSums, batchOf: (code: string) => string | null) => {
      const rowsOf = (code: string) => {
        const own = sums.rowsOf(code);
        const batch = batchOf(code);
        for (const r of own.rollups) {
          if (r.hour >= q.from && r.hour < q.to && (q.includeBots || !r.bot))
            out.rollups.push({ ...r, batch });
        }
        for (const v of own.visitors) {
          if (v.day >= firstDay && v.day < q.to && (q.includeBots || !v.bot))
            out.visitors.push({ ...v, batch });
        }
      };
      // One domain's links: each link's own rows (they carry the series, breakdowns and top links).
      if (q.code === ALL_LINKS && q.domain !== undefined) {
        for (const key of sums.linkKeys()) if (keyOnDomain(key, q.domain)) rowsOf(key);
        return;
      }
      rowsOf(q.code);
      if (q.code !== ALL_LINKS) return;
      for (const h of sums.linkHours()) {
        if (h.hour < q.from || h.hour >= q.to || (h.bot && !q.includeBots)) continue;
        out.rollups.push({ ...h, dim: COUNTED_BY, value: '', batch: batchOf(h.code) });
      }
    };
    add(this.current.sums, () => null);
    const f = this.folding;
    if (f !== null) add(f.gen.sums, (code) => f.batchIds[partOf(code, f.parts)] ?? null);
    return out;
  }

  /**
   * A link's clicks held here and not in its stored total yet. Called once the total has been
   * read: the database answers in the order asked, so every rollup batch written before that read
   * has had its answer taken in (nextPart) by the time the read's answer arrives.
   */
  heldClicks(code: string, botsOnly = false): number {
    const f = this.folding;
    const folding =
      f !== null && partOf(code, f.parts) >= f.nextPart ? f.gen.sums.clicksOf(code, botsOnly) : 0;
    return this.current.sums.clicksOf(code, botsOnly) + folding;
  }

  /** One pass at a time; concurrent callers share the one in progress. */
  private writeSome(): Promise<void> {
    if (this.writing !== null) return this.writing;
    const p: Promise<void> = this.pass().finally(() => {
      if (this.writing === p) this.writing = null;
    });
    this.writing = p;
    return p;
  }

  private async pass(): Promise<void> {
    if (this.folding !== null) await this.advanceFold(this.folding);
    await this.storeRaw(this.current);
    const rows = this.current.sums.rows;
    const due = rows >= this.opts.foldRows || performance.now() - this.lastFold >= this.opts.foldMs;
    if (rows > 0 && due) {
      const gen = this.current;
      this.current = newGeneration();
      this.lastFold = performance.now();
      const perPart = this.opts.rowsPerPart ?? ROWS_PER_PART;
      this.folding = this.newFold(gen, uuid7(), Math.max(1, Math.ceil(rows / perPart)));
      await this.advanceFold(this.folding);
    }
    await this.splitVisits(true);
  }

  /** Stores a generation's waiting clicks raw, batch by batch. */
  private async storeRaw(gen: Generation): Promise<void> {
    this.lastRaw = performance.now();
    for (;;) {
      let b = gen.retry;
      if (b === null) {
        if (gen.pending.length === 0) return;
        b = { id: uuid7(), events: gen.pending.splice(0, MAX_EVENTS_PER_RAW_BATCH) };
        gen.retry = b;
      }
      const started = performance.now();
      try {
        await this.store.writeRawClicks(b.id, b.events);
      } catch (err) {
        this.metrics.clickBatchFailed();
        this.log.warn({ err, batch: b.id, events: b.events.length }, 'click batch write failed; will retry');
        throw err;
      }
      gen.retry = null;
      gen.stored.push(b.id);
      this.metrics.clickBatchWritten(b.events.length, (performance.now() - started) / 1000);
    }
  }

  /** Takes a fold from wherever it stopped to its end; throws (to be resumed) when a write fails. */
  private async advanceFold(f: Fold): Promise<void> {
    await this.storeRaw(f.gen);
    if (!f.begun) {
      await this.store.beginFold({ id: f.id, parts: f.parts }, f.gen.stored);
      f.begun = true;
    }
    f.part ??= f.gen.sums.parts(f.parts);
    while (f.nextPart < f.parts) {
      const part = f.part(f.nextPart);
      const started = performance.now();
      await this.store.recordClickBatch({ id: f.batchIds[f.nextPart]!, events: [], ...part });
      f.nextPart++;
      f.rows += part.rollups.length + part.visitors.length;
      for (const r of part.rollups) if (r.code !== ALL_LINKS && r.dim === COUNTED_BY) f.clicks += r.clicks;
      if (this.stopped) continue;
      // Newer clicks still reach the disk every flush interval, however long the fold.
      if (performance.now() - this.lastRaw >= this.opts.flushMs) await this.storeRaw(this.current);
      await sleep(REST_FACTOR * (performance.now() - started));
    }
    await this.store.endFold(f.id);
    this.folding = null;
    this.metrics.clicksFolded(f.clicks, f.rows, (performance.now() - f.started) / 1000);
    this.splitDue = this.store.splitVisits !== undefined;
  }

  /**
   * Moves the folded raw batches into visit rows, a group per transaction, resting between groups
   * as a fold does. Only while the writer has nothing else to do (`whenIdle`): recording comes
   * first, and the raw batches wait (visit lists read them as they are meanwhile).
   */
  private async splitVisits(whenIdle: boolean): Promise<void> {
    while (this.splitDue && this.store.splitVisits !== undefined) {
      if (whenIdle && (this.stopped || this.buffered >= this.opts.batchSize)) return;
      const started = performance.now();
      if ((await this.store.splitVisits()) === 0) this.splitDue = false;
      else if (whenIdle) await sleep(REST_FACTOR * (performance.now() - started));
    }
  }

  async flush(): Promise<void> {
    while (this.writing !== null) await this.writing.catch(() => {});
    while (this.buffered > 0) {
      const before = this.buffered;
      await this.writeSome().catch(() => {});
      if (this.buffered >= before) break;
    }
  }

  /** Stores, folds and splits everything held now (a delete of visits must find them all). */
  async settle(): Promise<void> {
    await this.flush();
    while (this.writing !== null) await this.writing.catch(() => {});
    this.lastFold = Number.NEGATIVE_INFINITY;
    await this.writeSome();
    if (this.folding !== null) await this.advanceFold(this.folding);
    await this.splitVisits(false);
  }

  /** Stores and folds everything held; what cannot be written now is taken up on the next start. */
  async close(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    while (this.writing !== null) await this.writing.catch(() => {});
    this.lastFold = Number.NEGATIVE_INFINITY;
    try {
      await this.writeSome();
      if (this.folding !== null) await this.advanceFold(this.folding);
    } catch (err) {
      this.log.warn({ err, waiting: this.buffered }, 'clicks not all folded at shutdown');
    }
    this.closed = true;
  }
}
