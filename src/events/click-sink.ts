// The ClickSink port: the redirect hands over a click and returns at once; where the click
// goes (an in-process batch writer, Redis Streams) is the adapter's business.
import type { ClickEvent } from '../storage/ports.ts';

export interface ClickSink {
  /** False when clicks go nowhere: the redirect then skips building the event at all. */
  readonly active: boolean;
  /** Never blocks and never throws: a full sink drops and counts. */
  record(event: ClickEvent): void;
  /** Writes everything buffered so far. */
  flush(): Promise<void>;
  /** Flushes and stops; after it, record() drops. */
  close(): Promise<void>;
}

export const noopClickSink: ClickSink = {
  active: false,
  record() {},
  async flush() {},
  async close() {},
};
