// The click pipeline's ports. The redirect hands a click to the ClickIntake and returns at once;
// where the click is enriched and where it goes (an in-process batch writer, the embedded
// database's own thread, Redis Streams) is the adapters' business.
import type { ClickRequest } from '../analytics/click-enricher.ts';
import type { ClickEvent, ClickStats, PendingClicks, StatsQuery } from '../storage/ports.ts';

/** The redirect's side: the click as the request told it. Never blocks and never throws. */
export interface ClickIntake {
  /** False when clicks go nowhere: the redirect then skips even this call. */
  readonly active: boolean;
  take(code: string, req: ClickRequest): void;
}

/** What holds clicks not yet written: the process flushes it and closes it, and stats ask it. */
export interface ClickSink {
  readonly active: boolean;
  /** Writes everything buffered so far. */
  flush(): Promise<void>;
  /** Flushes and stops; after it, new clicks are dropped. */
  close(): Promise<void>;
  /** Clicks held in this process that stats must count too (a sink that folds them later). */
  heldFor?(query: StatsQuery): PendingClicks;
  /** A link's clicks held in this process that its stored total lacks yet (same sinks). */
  heldClicks?(code: string): number;
  /**
   * Stats with the held clicks counted, where only the sink can count them in step with the
   * rollups (it holds them on the database's own thread).
   */
  clickStats?(query: StatsQuery): Promise<ClickStats>;
}

/** A sink of enriched events, on the redirect's thread. */
export interface EventSink extends ClickSink {
  /** Never blocks and never throws: a full sink drops and counts. */
  record(event: ClickEvent): void;
}

export const noopClickSink: ClickSink & ClickIntake = {
  active: false,
  take() {},
  async flush() {},
  async close() {},
};
