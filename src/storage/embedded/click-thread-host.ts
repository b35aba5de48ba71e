// The embedded click pipeline's database-thread side, loaded by pglite-worker.mjs. It enriches
// the clicks the redirect thread handed over, and runs the folding writer (FoldingClickSink) on
// this thread's own connection: raw batches and rollups go to the database without crossing
// threads, and the held sums live here, where stats and link totals add them in step with the
// rollups (the same statement, or the same turn as the read's answer).

import type { PGlite, Transaction } from '@electric-sql/pglite';
import { ClickEnricher, type ClickRequest } from '../../analytics/click-enricher.ts';
import { VisitorSalts } from '../../analytics/visitor-salts.ts';
import type { ClickEvent } from '../../domain/clicks.ts';
import { linkKey } from '../../domain/domains.ts';
import { statsCounting } from '../../events/click-sink.ts';
import {
  type CapturedClicks,
  type ClickMetricDeltas,
  type ClickNotice,
  type ClickThreadOptions,
  decodeCapture,
  type ReadColumns,
} from '../../events/click-thread-protocol.ts';
import { FoldingClickSink } from '../../events/folding-click-sink.ts';
import { createLogger, type Logger } from '../../logger.ts';
import type { ClickMetrics } from '../../metrics/metrics.ts';
import type { StatsQuery } from '../ports.ts';
import type { SqlClient } from '../sql/sql-client.ts';
import { SqlStore } from '../sql/sql-store.ts';

// Counts reach the process's metrics at least this often while the writer works.
const NOTICE_MS = 250;

/** SqlClient over this thread's PGlite: no messages, no copies. */
function localClient(db: PGlite | Transaction): SqlClient {
  return {
    async query<T>(sql: string, params: readonly unknown[] = []) {
      const r = await db.query<T>(sql, params as unknown[]);
      return { rows: r.rows, affectedRows: r.affectedRows ?? 0 };
    },
    async exec(sql: string) {
      await db.exec(sql);
    },
    transaction<R>(fn: (tx: SqlClient) => Promise<R>): Promise<R> {
      if (!('transaction' in db)) throw new Error('nested transactions are not supported');
      return db.transaction((tx) => fn(localClient(tx)));
    },
    async close() {},
  };
}

const noDeltas = (): ClickMetricDeltas => ({ recorded: 0, dropped: 0, failed: 0, written: [], folded: [] });

/** The writer's counts, gathered for the next notice. */
class MetricDeltas implements ClickMetrics {
  d = noDeltas();
  clicksRecorded(n: number) {
    this.d.recorded += n;
  }
  clicksDropped(n: number) {
    this.d.dropped += n;
  }
  clickBatchFailed() {
    this.d.failed++;
  }
  clickBatchWritten(events: number, seconds: number) {
    this.d.written.push([events, seconds]);
  }
  clicksFolded(clicks: number, rows: number, seconds: number) {
    this.d.folded.push([clicks, rows, seconds]);
  }
  get empty(): boolean {
    const d = this.d;
    return d.recorded + d.dropped + d.failed + d.written.length + d.folded.length === 0;
  }
  take(): ClickMetricDeltas {
    const d = this.d;
    this.d = noDeltas();
    return d;
  }
}

export class ClickThreadHost {
  private seq = 0;
  private closed = false;
  private echoed: ClickEvent[] | null = null;
  private readonly deltas: MetricDeltas;
  private readonly timer: NodeJS.Timeout;
  private readonly store: SqlStore;
  private readonly sink: FoldingClickSink;
  private readonly enricher: ClickEnricher;
  private readonly salts: VisitorSalts;
  private readonly countryHeader: string | null;
  private readonly notify: (n: ClickNotice) => void;
  private readonly log: Logger;

  private constructor(
    parts: {
      store: SqlStore;
      sink: FoldingClickSink;
      enricher: ClickEnricher;
      salts: VisitorSalts;
      deltas: MetricDeltas;
      log: Logger;
    },
    countryHeader: string | null,
    notify: (n: ClickNotice) => void,
  ) {
    this.store = parts.store;
    this.sink = parts.sink;
    this.enricher = parts.enricher;
    this.salts = parts.salts;
    this.deltas = parts.deltas;
    this.log = parts.log;
    this.countryHeader = countryHeader;
    this.notify = notify;
    this.timer = setInterval(() => {
      if (!this.deltas.empty) this.report();
    }, NOTICE_MS);
    this.timer.unref();
  }

  /** Opens the writer, which first finishes what a previous process left (and logs it). */
  static async open(
    db: PGlite,
    o: ClickThreadOptions,
    notify: (n: ClickNotice) => void,
  ): Promise<ClickThreadHost> {
    const log = createLogger(o.logLevel);
    const store = new SqlStore(localClient(db), { kind: 'embedded', codeLength: o.codeLength });
    const salts = new VisitorSalts(store, log);
    await salts.start();
    const enricher = new ClickEnricher({ trustProxy: o.trustProxy, countryHeader: o.countryHeader }, salts);
    const deltas = new MetricDeltas();
    let host: ClickThreadHost | null = null;
    const sink = await FoldingClickSink.open(
      store,
      {
        flushMs: o.flushMs,
        batchSize: o.batchSize,
        maxBuffered: o.maxBuffered,
        foldMs: o.foldMs,
        foldRows: o.foldRows,
        onClick: (e) => host?.echoed?.push(e),
      },
      deltas,
      log,
    );
    host = new ClickThreadHost(
      { store, sink, enricher, salts, deltas, log },
      o.countryHeader?.toLowerCase() ?? null,
      notify,
    );
    return host;
  }

  /** Enriches and records a hand-over, then tells the redirect thread where the writer stands. */
  take(b: CapturedClicks): void {
    this.echoed = b.echo ? [] : null;
    const columns = decodeCapture(b);
    if (columns === null) {
      // A hand-over whose columns disagree is a bug on the other side: its clicks cannot be told
      // apart, so all of them are dropped, counted and logged.
      const n = b.count;
      this.dropped(n, new Error(`a hand-over of ${n} clicks whose columns do not hold ${n} values each`));
    } else {
      this.record(columns);
    }
    this.seq = b.seq;
    this.report();
  }

  private record({ codes, at, peers, forwarded, agents, referers, countries }: ReadColumns): void {
    const headers: Record<string, string | string[] | undefined> = {};
    const socket: { remoteAddress: string | undefined } = { remoteAddress: undefined };
    const req: ClickRequest = { headers, socket };
    const country = this.countryHeader;
    let failed = 0;
    let firstError: unknown = null;
    for (let i = 0; i < codes.length; i++) {
      headers['user-agent'] = agents[i];
      headers['x-forwarded-for'] = forwarded[i];
      headers.referer = referers[i];
      if (country !== null) headers[country] = countries?.[i];
      socket.remoteAddress = peers[i];
      // A click that cannot be enriched or summed is a bug; it must not take the rest of the
      // hand-over with it, nor vanish unseen: it is counted as dropped, and logged.
      try {
        const code = codes[i];
        // '' would be the all-links rollups' code.
        if (code === undefined) throw new Error('a click without a link code');
        this.sink.record(this.enricher.eventFor(code, req, at[i]));
      } catch (err) {
        failed++;
        firstError ??= err;
      }
    }
    if (failed > 0) this.dropped(failed, firstError);
  }

  private dropped(clicks: number, err: unknown): void {
    this.deltas.clicksDropped(clicks);
    this.log.error({ err, clicks }, 'clicks dropped: they could not be recorded');
  }

  private report(): void {
    const events = this.echoed ?? [];
    this.echoed = null;
    this.notify({
      id: -1,
      kind: 'clicks',
      seq: this.seq,
      buffered: this.sink.buffered,
      metrics: this.deltas.take(),
      events,
    });
  }

  /** Adds the held clicks to rows just read with their stored totals (see FoldingClickSink.heldClicks). */
  addHeld(rows: { code?: unknown; domain?: unknown; clicks?: unknown; bot_clicks?: unknown }[]): void {
    for (const r of rows) {
      if (typeof r.code !== 'string') continue;
      const key = linkKey(typeof r.domain === 'string' ? r.domain : '', r.code);
      r.clicks = Number(r.clicks ?? 0) + this.sink.heldClicks(key);
      if (r.bot_clicks !== undefined)
        r.bot_clicks = Number(r.bot_clicks ?? 0) + this.sink.heldClicks(key, true);
    }
  }

  clickStats(q: StatsQuery) {
    return statsCounting(this.store, this.sink, q);
  }

  async flush(): Promise<void> {
    await this.sink.flush();
    this.report();
  }

  async settle(): Promise<void> {
    await this.sink.settle();
    this.report();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.salts.stop();
    await this.sink.close();
    this.report();
  }
}
