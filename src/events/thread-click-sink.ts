// The embedded click pipeline's redirect-thread side. A redirect copies a few request fields into
// columns and returns; every few milliseconds the columns go to the database's own thread, which
// enriches, sums, stores and folds them there (click-thread-host.ts). The redirect thread is the
// one every request waits for: it keeps none of the per-click work, none of the held sums (whose
// size slowed its garbage collection) and none of the long steps (encoding a batch, building a
// fold), which stalled every connection while they ran.
import type { ClickRequest } from '../analytics/click-enricher.ts';
import type { ClickEvent } from '../domain/clicks.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { ClickStats, DatabaseThread, StatsQuery } from '../storage/ports.ts';
import type { ClickIntake, ClickSink } from './click-sink.ts';
import {
  type ClickColumns,
  type ClickNotice,
  type ClickThreadOptions,
  encodeCapture,
} from './click-thread-protocol.ts';

// Clicks wait at most this long on the redirect thread, or until this many are taken. Posting a
// hand-over costs the redirect thread 0.1-0.2 ms (measured), little of it per click, so fewer, larger
// ones cost it less; stats and link reads hand over first, so they count every click anyway.
const HANDOFF_MS = 50;
const HANDOFF_CLICKS = 2_000;

const emptyColumns = (countries: boolean): ClickColumns => ({
  codes: [],
  at: [],
  peers: [],
  forwarded: [],
  agents: [],
  referers: [],
  countries: countries ? [] : null,
});

/** A header's value as one string: Node joins repeated headers, except the few it keeps as arrays. */
const one = (v: string | string[] | undefined): string | undefined =>
  typeof v === 'string' || v === undefined ? v : v.join(', ');

export interface ThreadClickSinkOptions extends ClickThreadOptions {
  /** Told of every click once enriched (the live feed, webhooks), when `listening` says so. */
  readonly onClick?: (event: ClickEvent) => void;
  readonly listening?: () => boolean;
}

export class ThreadClickSink implements ClickSink, ClickIntake {
  readonly active = true;
  private cols: ClickColumns;
  private readonly countryHeader: string | null;
  private seq = 0;
  /** Hand-overs not yet taken by the other side: [seq, clicks]. */
  private readonly inFlight: [number, number][] = [];
  private inFlightClicks = 0;
  /** Clicks the other side has taken and not yet stored raw. */
  private held = 0;
  private closed = false;
  private readonly timer: NodeJS.Timeout;
  private readonly thread: DatabaseThread;
  private readonly opts: ThreadClickSinkOptions;
  private readonly metrics: Metrics;

  private constructor(thread: DatabaseThread, opts: ThreadClickSinkOptions, metrics: Metrics) {
    this.thread = thread;
    this.opts = opts;
    this.metrics = metrics;
    this.countryHeader = opts.countryHeader?.toLowerCase() ?? null;
    this.cols = emptyColumns(this.countryHeader !== null);
    thread.onNotice((n) => this.notice(n as ClickNotice));
    // A link's total read now counts the clicks just made.
    thread.beforeHeldRead(() => this.handOff());
    this.timer = setInterval(() => this.handOff(), HANDOFF_MS);
    this.timer.unref();
  }

  /** Starts the writer on the database's thread (it first finishes what a previous process left). */
  static async open(
    thread: DatabaseThread,
    opts: ThreadClickSinkOptions,
    metrics: Metrics,
  ): Promise<ThreadClickSink> {
    const { onClick: _onClick, listening: _listening, ...options } = opts;
    await thread.call({ op: 'clicks-open', options });
    return new ThreadClickSink(thread, opts, metrics);
  }

  take(code: string, req: ClickRequest): void {
    const c = this.cols;
    if (this.closed || c.codes.length + this.inFlightClicks + this.held >= this.opts.maxBuffered) {
      this.metrics.clicksDropped(1);
      return;
    }
    const h = req.headers;
    c.codes.push(code);
    c.at.push(Date.now());
    c.peers.push(req.socket.remoteAddress);
    c.forwarded.push(one(h['x-forwarded-for']));
    c.agents.push(h['user-agent']);
    c.referers.push(h.referer);
    if (this.countryHeader !== null) c.countries?.push(one(h[this.countryHeader]));
    if (c.codes.length >= HANDOFF_CLICKS) this.handOff();
  }

  private handOff(): void {
    const n = this.cols.codes.length;
    if (n === 0) return;
    const echo = this.opts.onClick !== undefined && (this.opts.listening?.() ?? true);
    const { batch, transfer } = encodeCapture(this.cols, ++this.seq, echo);
    this.cols = emptyColumns(this.countryHeader !== null);
    this.inFlight.push([batch.seq, n]);
    this.inFlightClicks += n;
    this.thread.post({ op: 'clicks', batch }, transfer);
  }

  private notice(n: ClickNotice): void {
    if (n.kind !== 'clicks') return;
    while (this.inFlight.length > 0 && this.inFlight[0]![0] <= n.seq)
      this.inFlightClicks -= this.inFlight.shift()![1];
    this.held = n.buffered;
    const m = n.metrics;
    if (m.recorded > 0) this.metrics.clicksRecorded(m.recorded);
    if (m.dropped > 0) this.metrics.clicksDropped(m.dropped);
    for (let i = 0; i < m.failed; i++) this.metrics.clickBatchFailed();
    for (const [events, seconds] of m.written) this.metrics.clickBatchWritten(events, seconds);
    for (const [clicks, rows, seconds] of m.folded) this.metrics.clicksFolded(clicks, rows, seconds);
    const onClick = this.opts.onClick;
    if (onClick !== undefined) for (const e of n.events) onClick(e);
  }

  /** Stats are read on the database's thread, where the held clicks are counted in step with the rollups. */
  clickStats(query: StatsQuery): Promise<ClickStats> {
    this.handOff();
    const { pending: _pending, ...q } = query;
    return this.thread.call<ClickStats>({ op: 'click-stats', query: q });
  }

  async flush(): Promise<void> {
    this.handOff();
    await this.thread.call({ op: 'clicks-flush' });
  }

  async settle(): Promise<void> {
    this.handOff();
    await this.thread.call({ op: 'clicks-settle' });
  }

  /** Hands over what is left and lets the other side store and fold everything it holds. */
  async close(): Promise<void> {
    if (this.closed) return;
    clearInterval(this.timer);
    this.handOff();
    this.closed = true;
    await this.thread.call({ op: 'clicks-close' });
  }
}
