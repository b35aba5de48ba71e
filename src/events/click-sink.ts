// The ClickSink port: the redirect hands over a click and returns at once; where the click
// goes (an in-process batch writer, Redis Streams) is the adapter's business.
import type { ClickEvent, PendingClicks, StatsQuery } from '../storage/ports.ts';

export interface ClickSink {
  /** False when clicks go nowhere: the redirect then skips building the event at all. */
  readonly active: boolean;
  /** Never blocks and never throws: a full sink drops and counts. */
  record(event: ClickEvent): void;
  /** Writes everything buffered so far. */
  flush(): Promise<void>;
  /** Flushes and stops; after it, record() drops. */
  close(): Promise<void>;
  /** Clicks held in this process that stats must count too (a sink that folds them later). */
  heldFor?(query: StatsQuery): PendingClicks;
  /** A link's clicks held in this process that its stored total lacks yet (same sinks). */
  heldClicks?(code: string): number;
}

export const noopClickSink: ClickSink = {
  active: false,
  record() {},
  async flush() {},
  async close() {},
};
