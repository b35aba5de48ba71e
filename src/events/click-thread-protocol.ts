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
 * Clicks as the redirects saw them. Each text column holds the clicks' values as Latin-1 bytes, each
 * value followed by CAPTURE_SEPARATOR (nothing before it for a value the request lacked). Node reads
 * header bytes as Latin-1 characters, so the bytes are the request's own; the columns' memory moves
 * to the database's thread instead of being copied, and one bulk write per column is all a hand-over
 * costs the redirect thread. No value holds the separator: codes are [A-Za-z0-9_-], addresses are
 * addresses, and Node's HTTP parser refuses header values with line breaks.
 */
export interface CapturedClicks {
  /** Numbers the hand-overs, so the redirect thread knows which ones the other side has taken. */
  readonly seq: number;
  readonly count: number;
  readonly codes: Uint8Array;
  /** Each click's time, epoch ms. */
  readonly at: Float64Array;
  readonly peers: Uint8Array;
  readonly forwarded: Uint8Array;
  readonly agents: Uint8Array;
  readonly referers: Uint8Array;
  /** The CDN country header's values, when one is configured. */
  readonly countries: Uint8Array | null;
  /** Send the enriched events back: the live feed or click webhooks are listening. */
  readonly echo: boolean;
}

/** The byte that ends each value of a column ('\n'). */
export const CAPTURE_SEPARATOR = 10;

/** A column of values, in memory of its own (so that it can be moved to another thread). */
export function captureColumn(values: readonly (string | undefined)[]): Uint8Array {
  let length = values.length;
  for (const v of values) if (v !== undefined) length += v.length;
  const bytes = Buffer.allocUnsafeSlow(length);
  let at = 0;
  for (const v of values) {
    if (v !== undefined) at += bytes.write(v, at, 'latin1');
    bytes[at++] = CAPTURE_SEPARATOR;
  }
  return bytes;
}

/**
 * A column's values (undefined for a value the request lacked), or null when it does not hold
 * `count` of them. Each value is a string of its own, not a slice of a larger one that a cache
 * keeping it would keep alive.
 */
export function readColumn(column: Uint8Array, count: number): (string | undefined)[] | null {
  const bytes = Buffer.from(column.buffer, column.byteOffset, column.byteLength);
  const values = new Array<string | undefined>(count);
  let start = 0;
  for (let i = 0; i < count; i++) {
    const end = bytes.indexOf(CAPTURE_SEPARATOR, start);
    if (end < 0) return null;
    values[i] = end === start ? undefined : bytes.toString('latin1', start, end);
    start = end + 1;
  }
  return start === bytes.length ? values : null;
}

/** A hand-over's request fields, one array per field, as the redirect thread gathers them. */
export interface ClickColumns {
  readonly codes: string[];
  readonly at: number[];
  readonly peers: (string | undefined)[];
  readonly forwarded: (string | undefined)[];
  readonly agents: (string | undefined)[];
  readonly referers: (string | undefined)[];
  readonly countries: (string | undefined)[] | null;
}

/** A hand-over as the database's thread reads it back: undefined for a value the request lacked. */
export interface ReadColumns {
  readonly codes: (string | undefined)[];
  readonly at: Float64Array;
  readonly peers: (string | undefined)[];
  readonly forwarded: (string | undefined)[];
  readonly agents: (string | undefined)[];
  readonly referers: (string | undefined)[];
  readonly countries: (string | undefined)[] | null;
}

/** A hand-over, and the buffers to move (not copy) to the database's thread with it. */
export function encodeCapture(
  c: ClickColumns,
  seq: number,
  echo: boolean,
): { batch: CapturedClicks; transfer: ArrayBuffer[] } {
  const batch: CapturedClicks = {
    seq,
    count: c.codes.length,
    codes: captureColumn(c.codes),
    at: Float64Array.from(c.at),
    peers: captureColumn(c.peers),
    forwarded: captureColumn(c.forwarded),
    agents: captureColumn(c.agents),
    referers: captureColumn(c.referers),
    countries: c.countries === null ? null : captureColumn(c.countries),
    echo,
  };
  const moved = [batch.codes, batch.at, batch.peers, batch.forwarded, batch.agents, batch.referers];
  if (batch.countries !== null) moved.push(batch.countries);
  return { batch, transfer: moved.map((a) => a.buffer as ArrayBuffer) };
}

/** A hand-over's columns, or null when one of them does not hold its count of values. */
export function decodeCapture(b: CapturedClicks): ReadColumns | null {
  const n = b.count;
  const codes = readColumn(b.codes, n);
  const peers = readColumn(b.peers, n);
  const forwarded = readColumn(b.forwarded, n);
  const agents = readColumn(b.agents, n);
  const referers = readColumn(b.referers, n);
  const countries = b.countries === null ? null : readColumn(b.countries, n);
  if (codes === null || peers === null || forwarded === null || agents === null || referers === null)
    return null;
  if ((b.countries !== null && countries === null) || b.at.length !== n) return null;
  return { codes, at: b.at, peers, forwarded, agents, referers, countries };
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
