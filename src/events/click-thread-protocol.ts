// What the redirect thread and the embedded database's thread say to each other about clicks
// (thread-click-sink.ts on one side, click-thread-host.ts on the other).
import type { ClickEvent } from '../domain/clicks.ts';

export interface ClickThreadOptions {
  readonly flushMs: number;
  readonly batchSize: number;
  readonly maxBuffered: number;
  readonly foldMs: number;
  readonly foldRows: number;
  readonly trustProxy: string | boolean;
  readonly countryHeader: string | null;
  readonly codeLength: number;
  readonly logLevel: string;
}

/**
 * Clicks as the redirects saw them, one column per request field: strings the requests already
 * held, copied once per hand-over. Everything derived from them is made on the database's thread.
 */
export interface CapturedClicks {
  /** Numbers the hand-overs, so the redirect thread knows which ones the other side has taken. */
  readonly seq: number;
  readonly codes: string[];
  readonly at: number[];
  readonly peers: (string | undefined)[];
  readonly forwarded: (string | string[] | undefined)[];
  readonly agents: (string | undefined)[];
  readonly referers: (string | undefined)[];
  /** The CDN country header's values, when one is configured. */
  readonly countries: (string | string[] | undefined)[] | null;
  /** Send the enriched events back: the live feed or click webhooks are listening. */
  readonly echo: boolean;
}

/** Counts the writer made since the last notice, replayed into the process's metrics. */
export interface ClickMetricDeltas {
  recorded: number;
  dropped: number;
  failed: number;
  written: [events: number, seconds: number][];
  folded: [clicks: number, rows: number, seconds: number][];
}

/** Sent unasked by the database's thread (id -1). */
export interface ClickNotice {
  readonly id: -1;
  readonly kind: 'clicks';
  /** The last hand-over taken. */
  readonly seq: number;
  /** Clicks taken and not yet stored raw (the bound on held clicks counts them). */
  readonly buffered: number;
  readonly metrics: ClickMetricDeltas;
  readonly events: ClickEvent[];
}
