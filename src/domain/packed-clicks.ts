// Raw click batches as the embedded writer stores them: a binary layout with per-batch
// dictionaries, in base64 text. About 50 bytes a click instead of the ~127 of JSON columns; the
// embedded database takes text parameters far faster than bytea ones, and the cost of storing a
// batch follows its size. Pure: no I/O.
import { agentValueOf, type ClickEvent, decodeRawClicks, encodeRawClicks } from './clicks.ts';

const PREFIX = 'p2:';
// Batches stored before user agents and referers were kept (p1) have no such columns.
const PREFIX_V1 = 'p1:';
// Per click: ms after the batch's first click (u32), code (u32), referrer, country and agent
// (u16 each), the event id (16 bytes), the visitor hash (8 bytes), then the user agent and the
// referer as sent (u16 each).
const STRIDE_V1 = 4 + 4 + 2 + 2 + 2 + 16 + 8;
const STRIDE = STRIDE_V1 + 2 + 2;
const hexByte = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

interface Dictionaries {
  codes: string[];
  referrers: (string | null)[];
  countries: (string | null)[];
  /** browser, os, device, bot, and the matched rule when the link has rules */
  agents: [string | null, string | null, string | null, boolean, number?][];
  /** User agents and referers as sent (null: the request had none). */
  uas?: (string | null)[];
  refs?: (string | null)[];
}

/** Index of `key` in `list`, added when new. */
function idOf<K>(ids: Map<K, number>, list: unknown[], key: K, value: unknown = key): number {
  let id = ids.get(key);
  if (id === undefined) {
    id = list.length;
    list.push(value);
    ids.set(key, id);
  }
  return id;
}

/** A lower-case hex digit's value, or -1. */
const hexValue = (c: number): number => (c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : -1);

/**
 * Writes the hex digits of `s` as `bytes` bytes at `at`, a dash allowed only where `dashes` says
 * (UUID layout); false when `s` does not have that shape.
 */
function putHex(view: Uint8Array, at: number, s: string, bytes: number, dashes: boolean): boolean {
  if (s.length !== bytes * 2 + (dashes ? 4 : 0)) return false;
  let o = at;
  for (let i = 0; i < s.length; i += 2) {
    if (dashes && (i === 8 || i === 13 || i === 18 || i === 23)) {
      if (s.charCodeAt(i) !== 45) return false;
      i++;
    }
    const hi = hexValue(s.charCodeAt(i));
    const lo = hexValue(s.charCodeAt(i + 1));
    if (hi < 0 || lo < 0) return false;
    view[o++] = (hi << 4) | lo;
  }
  return true;
}

function hexOf(bytes: Uint8Array, at: number, n: number, dashes: boolean): string {
  let s = '';
  for (let i = 0; i < n; i++) {
    s += hexByte[bytes[at + i]!];
    if (dashes && (i === 3 || i === 5 || i === 7 || i === 9)) s += '-';
  }
  return s;
}

/**
 * A batch packed for storage. Falls back to JSON columns (decodeRawClicks reads both) when a click
 * does not fit the layout: an id that is no UUID, a visitor hash that is not 16 hex digits.
 */
export function packClicks(events: readonly ClickEvent[]): string {
  const d: Dictionaries = { codes: [], referrers: [], countries: [], agents: [], uas: [], refs: [] };
  const uaIds = new Map<string | null, number>();
  const refIds = new Map<string | null, number>();
  const codeIds = new Map<string, number>();
  const referrerIds = new Map<string | null, number>();
  const countryIds = new Map<string | null, number>();
  // By the interned agent value, one map per bot flag: no key is built per click.
  const agentIds = [new Map<string, number>(), new Map<string, number>()] as const;
  const base = events.reduce((m, e) => Math.min(m, e.at), Number.POSITIVE_INFINITY);
  const cols = new Uint8Array(events.length * STRIDE);
  const view = new DataView(cols.buffer);
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    const delta = e.at - base;
    const o = i * STRIDE;
    if (
      !Number.isInteger(delta) ||
      delta > 0xffffffff ||
      !putHex(cols, o + 14, e.id, 16, true) ||
      !putHex(cols, o + 30, e.visitor, 8, false)
    )
      return encodeRawClicks(events);
    view.setUint32(o, delta);
    view.setUint32(o + 4, idOf(codeIds, d.codes, e.code));
    view.setUint16(o + 8, idOf(referrerIds, d.referrers, e.referrerHost));
    view.setUint16(o + 10, idOf(countryIds, d.countries, e.country));
    // The interned value writes null as '': an empty field (never seen from the parser) gets a key
    // of its own, so that both read back as written.
    const plain = e.browser !== '' && e.os !== '' && e.device !== '';
    const key = plain ? agentValueOf(e) : `\u0001${JSON.stringify([e.browser, e.os, e.device, e.rule])}`;
    // The dictionary entry is made only for an agent the batch has not seen (not once per click).
    const agents = agentIds[e.bot ? 1 : 0];
    let agent = agents.get(key);
    if (agent === undefined) {
      agent = d.agents.length;
      d.agents.push(
        e.rule === undefined
          ? [e.browser, e.os, e.device, e.bot]
          : [e.browser, e.os, e.device, e.bot, e.rule],
      );
      agents.set(key, agent);
    }
    view.setUint16(o + 12, agent);
    view.setUint16(o + 38, idOf(uaIds, d.uas!, e.userAgent ?? null));
    view.setUint16(o + 40, idOf(refIds, d.refs!, e.referer ?? null));
  }
  // A batch holds at most a few thousand clicks: u16 indexes always suffice, but say so if not.
  if (
    Math.max(d.referrers.length, d.countries.length, d.agents.length, d.uas!.length, d.refs!.length) > 0xffff
  )
    return encodeRawClicks(events);
  const dict = JSON.stringify(d);
  return `${PREFIX}${events.length}:${base}:${dict.length}:${dict}${Buffer.from(cols.buffer).toString('base64')}`;
}

/**
 * Reads a stored batch: packed, or the JSON columns of older batches and the click stream. With
 * `start` and `count`, only those clicks (a run of one link's; the rest are not made).
 */
export function unpackClicks(text: string, start = 0, count = Number.POSITIVE_INFINITY): ClickEvent[] {
  const v1 = text.startsWith(PREFIX_V1);
  if (!v1 && !text.startsWith(PREFIX)) return decodeRawClicks(text).slice(start, start + count);
  const stride = v1 ? STRIDE_V1 : STRIDE;
  const { n, base, d, cols } = readHeader(text);
  const view = new DataView(cols.buffer);
  const out: ClickEvent[] = [];
  for (let i = start, end = Math.min(n, start + count); i < end; i++) {
    const o = i * stride;
    const [browser, os, device, bot, rule] = d.agents[view.getUint16(o + 12)]!;
    const ua = v1 ? null : d.uas?.[view.getUint16(o + 38)];
    const ref = v1 ? null : d.refs?.[view.getUint16(o + 40)];
    out.push({
      id: hexOf(cols, o + 14, 16, true),
      code: d.codes[view.getUint32(o + 4)]!,
      at: base + view.getUint32(o),
      referrerHost: d.referrers[view.getUint16(o + 8)] ?? null,
      country: d.countries[view.getUint16(o + 10)] ?? null,
      browser,
      os,
      device,
      bot,
      visitor: hexOf(cols, o + 30, 8, false),
      ...(rule === undefined ? {} : { rule }),
      ...(ua === null || ua === undefined ? {} : { userAgent: ua }),
      ...(ref === null || ref === undefined ? {} : { referer: ref }),
    });
  }
  return out;
}

/** A packed batch read for regrouping: its header, dictionaries and fixed-size records. */
interface PackedBatch {
  readonly base: number;
  readonly n: number;
  readonly d: Dictionaries;
  readonly cols: Uint8Array;
  readonly view: DataView;
}

/** A packed batch's header, dictionaries and records (either layout; the prefixes are as long). */
function readHeader(text: string): { n: number; base: number; d: Dictionaries; cols: Uint8Array } {
  let at = PREFIX.length;
  const field = () => {
    const end = text.indexOf(':', at);
    const v = Number(text.slice(at, end));
    at = end + 1;
    return v;
  };
  const n = field();
  const base = field();
  const dictLength = field();
  const d = JSON.parse(text.slice(at, at + dictLength)) as Dictionaries;
  return { n, base, d, cols: new Uint8Array(Buffer.from(text.slice(at + dictLength), 'base64')) };
}

function readPacked(text: string): PackedBatch | null {
  if (!text.startsWith(PREFIX)) return null;
  const { n, base, d, cols } = readHeader(text);
  if (cols.length !== n * STRIDE || d.uas === undefined || d.refs === undefined) return null;
  return { base, n, d, cols, view: new DataView(cols.buffer, cols.byteOffset, cols.byteLength) };
}

/** One row's worth of regrouped clicks, packed, with what its head needs. */
export interface RegroupedRow {
  readonly key: string;
  readonly data: string;
  readonly first: number;
  readonly last: number;
  readonly visits: number;
  readonly bots: number;
  /** Per link in the row: [visits, bots]. */
  readonly perLink: Map<string, [number, number]>;
}

/**
 * Packed batches' clicks regrouped into rows without making an object per click: each click's
 * fixed-size record is copied into its row and its dictionary indexes remapped. `rowOf` names the
 * row of a link, given how many clicks the link has in all the batches; a row holds at most
 * `maxPerRow` clicks, in time order. Null when a batch is not in the current packed layout (the
 * caller then unpacks and packs).
 */
export function regroupPacked(
  texts: readonly string[],
  rowOf: (code: string, clicks: number) => string,
  maxPerRow: number,
): RegroupedRow[] | null {
  const batches: PackedBatch[] = [];
  for (const t of texts) {
    if (t === '') continue;
    const b = readPacked(t);
    if (b === null) return null;
    batches.push(b);
  }
  // Clicks per link, then each link's row; per batch, each of its codes' row (no lookup per click).
  const perCode = new Map<string, number>();
  for (const b of batches) {
    const counts = new Int32Array(b.d.codes.length);
    for (let i = 0; i < b.n; i++) counts[b.view.getUint32(i * STRIDE + 4)]!++;
    for (const [k, c] of b.d.codes.entries()) perCode.set(c, (perCode.get(c) ?? 0) + counts[k]!);
  }
  const rowKeys: string[] = [];
  const rowIndex = new Map<string, number>();
  for (const [code, n] of perCode) {
    const key = rowOf(code, n);
    if (!rowIndex.has(key)) {
      rowIndex.set(key, rowKeys.length);
      rowKeys.push(key);
    }
  }
  const rowOfCode = batches.map((b) =>
    Int32Array.from(b.d.codes, (c) => rowIndex.get(rowOf(c, perCode.get(c)!))!),
  );
  // Each row's clicks as (time, batch, record) triples.
  const members: number[][] = rowKeys.map(() => []);
  batches.forEach((b, bi) => {
    const rows = rowOfCode[bi]!;
    for (let i = 0; i < b.n; i++) {
      const o = i * STRIDE;
      members[rows[b.view.getUint32(o + 4)]!]!.push(b.base + b.view.getUint32(o), bi, i);
    }
  });
  const out: RegroupedRow[] = [];
  members.forEach((m, r) => {
    const order = Array.from({ length: m.length / 3 }, (_, j) => j).sort((x, y) => m[x * 3]! - m[y * 3]!);
    // A row's clicks are at most maxPerRow, and within a u32 of milliseconds of its first (the
    // layout's time offset): a row spanning more starts another instead of wrapping around.
    let from = 0;
    for (let j = 1; j <= order.length; j++) {
      if (j < order.length && j - from < maxPerRow && m[order[j]! * 3]! - m[order[from]! * 3]! <= 0xffffffff)
        continue;
      out.push(packRow(rowKeys[r]!, batches, m, order.slice(from, j)));
      from = j;
    }
  });
  return out;
}

/** The clicks `order` names (indexes into the triples of `m`) as one packed row. */
function packRow(
  key: string,
  batches: readonly PackedBatch[],
  m: readonly number[],
  order: readonly number[],
): RegroupedRow {
  const d: Dictionaries = { codes: [], referrers: [], countries: [], agents: [], uas: [], refs: [] };
  const lists: unknown[][] = [d.codes, d.referrers, d.countries, d.agents, d.uas!, d.refs!];
  // (source batch, dictionary, old index) -> new index, one map for the row.
  const remapped = new Map<number, number>();
  // Values already in the new dictionaries, so that two batches' same value is one entry.
  const seen: Map<string, number>[] = Array.from({ length: 6 }, () => new Map());
  const remap = (bi: number, kind: number, old: number): number => {
    const k = (old * 8 + kind) * 1024 + bi;
    let id = remapped.get(k);
    if (id !== undefined) return id;
    const b = batches[bi]!.d;
    const value = [b.codes, b.referrers, b.countries, b.agents, b.uas!, b.refs!][kind]![old];
    const text = JSON.stringify(value);
    id = seen[kind]!.get(text);
    if (id === undefined) {
      id = lists[kind]!.length;
      lists[kind]!.push(value);
      seen[kind]!.set(text, id);
    }
    remapped.set(k, id);
    return id;
  };
  const base = m[order[0]! * 3]!;
  const cols = new Uint8Array(order.length * STRIDE);
  const view = new DataView(cols.buffer);
  const perLink = new Map<string, [number, number]>();
  let bots = 0;
  for (let j = 0; j < order.length; j++) {
    const t = order[j]! * 3;
    const bi = m[t + 1]!;
    const b = batches[bi]!;
    const src = m[t + 2]! * STRIDE;
    const o = j * STRIDE;
    // The id and visitor hash as they are; every other field is rewritten below.
    for (let k = 14; k < 38; k++) cols[o + k] = b.cols[src + k]!;
    const codeOld = b.view.getUint32(src + 4);
    const agentOld = b.view.getUint16(src + 12);
    view.setUint32(o, m[t]! - base);
    view.setUint32(o + 4, remap(bi, 0, codeOld));
    view.setUint16(o + 8, remap(bi, 1, b.view.getUint16(src + 8)));
    view.setUint16(o + 10, remap(bi, 2, b.view.getUint16(src + 10)));
    view.setUint16(o + 12, remap(bi, 3, agentOld));
    view.setUint16(o + 38, remap(bi, 4, b.view.getUint16(src + 38)));
    view.setUint16(o + 40, remap(bi, 5, b.view.getUint16(src + 40)));
    const bot = b.d.agents[agentOld]![3];
    if (bot) bots++;
    const code = b.d.codes[codeOld]!;
    const c = perLink.get(code);
    if (c === undefined) perLink.set(code, [1, bot ? 1 : 0]);
    else {
      c[0]++;
      if (bot) c[1]++;
    }
  }
  const dict = JSON.stringify(d);
  return {
    key,
    data: `${PREFIX}${order.length}:${base}:${dict.length}:${dict}${Buffer.from(cols.buffer).toString('base64')}`,
    first: base,
    last: m[order.at(-1)! * 3]!,
    visits: order.length,
    bots,
    perLink,
  };
}
