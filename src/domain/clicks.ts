// What a click is, and how a batch of clicks becomes rollup increments (DESIGN §7). Pure: the
// click pipeline calls summarizeClicks off the redirect path; stores only add the numbers up.

/** One redirect that counted. Never a raw IP: `visitor` is a salted daily hash. */
export interface ClickEvent {
  /** Time-ordered UUID (v7), made in application code. */
  readonly id: string;
  readonly code: string;
  /** Epoch milliseconds. */
  readonly at: number;
  readonly referrerHost: string | null;
  /** ISO 3166-1 alpha-2, upper case. */
  readonly country: string | null;
  readonly browser: string | null;
  readonly os: string | null;
  /** desktop, mobile, tablet, tv, … */
  readonly device: string | null;
  readonly bot: boolean;
  /** 16 hex digits of a hash over (day salt, IP, user agent). */
  readonly visitor: string;
  /**
   * For a link with redirect rules: which one sent the visitor (1-based; 0 for none, the link's own
   * URL). Absent for a link without rules. Stored with the agent value (agentValueOf), so a link
   * without rules costs nothing more.
   */
  readonly rule?: number;
  /**
   * The request's User-Agent and Referer headers as sent (absent when the request had none), so a
   * link's visits can be listed as they happened (Shlink's visit lists). Held by reference: the
   * enricher hands over the header strings it already has.
   */
  readonly userAgent?: string;
  readonly referer?: string;
}

/**
 * What a redirect hands the click sink for a link with rules: the link key and the rule, as one
 * string (link keys never contain '#'), so the hand-off between threads carries nothing new.
 */
export const clickCode = (key: string, rule: number): string => `${key}#${rule}`;

/** A handed-off code back into the link key and the rule (undefined: the link has no rules). */
export function splitClickCode(code: string): { key: string; rule: number | undefined } {
  const hash = code.indexOf('#');
  return hash === -1
    ? { key: code, rule: undefined }
    : { key: code.slice(0, hash), rule: Number(code.slice(hash + 1)) };
}

/** What leaves Hop of a click (live feed, webhooks): no visitor hash, nothing that identifies a person. */
export function publicClick(e: ClickEvent) {
  return {
    code: e.code,
    at: new Date(e.at).toISOString(),
    referrerHost: e.referrerHost,
    country: e.country,
    browser: e.browser,
    os: e.os,
    device: e.device,
    bot: e.bot,
    ...(e.rule === undefined ? {} : { rule: e.rule }),
  };
}

/**
 * The dimensions rollups are stored by. Every click has exactly one value of each (the empty value
 * when unknown), so any one of them sums to all clicks: COUNTED_BY is the one series and totals
 * read. Browser, OS and device come from one user agent and are stored together as `agent`
 * (joined by AGENT_SEP): three rows per link and hour instead of six, which is most of what
 * writing clicks costs.
 */
export const CLICK_DIMS = ['referrer', 'country', 'agent'] as const;
export type ClickDim = (typeof CLICK_DIMS)[number];
export const COUNTED_BY: ClickDim = 'country';
export const AGENT_SEP = '\u001f';
export type BreakdownDim = 'referrer' | 'country' | 'browser' | 'os' | 'device' | 'rule';

/** The code under which the rollups across all links are kept (no link code is empty). */
export const ALL_LINKS = '';

export interface RollupIncrement {
  readonly code: string;
  /** Start of the UTC hour, epoch ms. */
  readonly hour: number;
  readonly bot: boolean;
  readonly dim: ClickDim;
  /** '' when unknown (no referrer, no country, …). */
  readonly value: string;
  readonly clicks: number;
}

/** One HyperLogLog register of a link's (or all links') visitors on a UTC day. */
export interface VisitorRegister {
  readonly code: string;
  /** Start of the UTC day, epoch ms. */
  readonly day: number;
  readonly bot: boolean;
  readonly reg: number;
  readonly rank: number;
}

export interface ClickSummary {
  readonly rollups: RollupIncrement[];
  readonly visitors: VisitorRegister[];
}

export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

export const floorTo = (ms: number, unit: number): number => ms - (((ms % unit) + unit) % unit);

// 2^10 registers: about 3% standard error, and at most 1024 rows per link and day.
const REG_BITS = 10;
export const HLL_REGISTERS = 1 << REG_BITS;

/** The register a visitor hash lands in and its rank (leading zeros of the rest, plus one). */
export function hllRegister(visitor: string): { reg: number; rank: number } {
  const reg = Number.parseInt(visitor.slice(0, 3), 16) & (HLL_REGISTERS - 1);
  const rest = Number.parseInt(visitor.slice(3, 15), 16); // 48 bits
  const rank = rest === 0 ? 49 : 48 - Math.floor(Math.log2(rest));
  return { reg, rank };
}

/** HyperLogLog estimate from the registers' maxima (absent registers are zero). */
export function estimateVisitors(ranks: Iterable<number>): number {
  const m = HLL_REGISTERS;
  let sum = 0;
  let seen = 0;
  for (const r of ranks) {
    sum += 2 ** -r;
    seen++;
  }
  const zeros = m - seen;
  sum += zeros;
  if (seen === 0) return 0;
  const raw = ((0.7213 / (1 + 1.079 / m)) * m * m) / sum;
  // Small cardinalities: linear counting is far more accurate while registers are still empty.
  const estimate = raw <= 2.5 * m && zeros > 0 ? m * Math.log(m / zeros) : raw;
  return Math.round(estimate);
}

export const BREAKDOWNS: readonly BreakdownDim[] = ['referrer', 'country', 'browser', 'os', 'device', 'rule'];

export type Breakdowns = Record<BreakdownDim, { value: string; clicks: number }[]>;

export const emptyBreakdowns = (): Breakdowns => ({
  referrer: [],
  country: [],
  browser: [],
  os: [],
  device: [],
  rule: [],
});

interface HourSums {
  readonly hour: number;
  readonly bot: boolean;
  readonly values: Record<ClickDim, Map<string, number>>;
}

interface DaySketch {
  readonly day: number;
  readonly bot: boolean;
  readonly ranks: Map<number, number>;
}

interface LinkSums {
  readonly hours: HourSums[];
  readonly days: DaySketch[];
}

/** Counts one click under k; 1 when that made a new row. */
function bump(m: Map<string, number>, k: string): number {
  const n = m.get(k);
  m.set(k, (n ?? 0) + 1);
  return n === undefined ? 1 : 0;
}

/** Browser, OS and device of one click as one stored value. */
export const agentValue = (e: Pick<ClickEvent, 'browser' | 'os' | 'device'>): string =>
  `${e.browser ?? ''}${AGENT_SEP}${e.os ?? ''}${AGENT_SEP}${e.device ?? ''}`;

// The few agent values seen, by browser, OS and device: looking up three short strings that the
// user-agent cache hands out again and again is cheaper than building and hashing a new string for
// every click. Bounded: a flood of odd agents starts it over.
const agentValues = new Map<string | null, Map<string | null, Map<string | null, string>>>();
let agentValueCount = 0;
export function internedAgentValue(e: Pick<ClickEvent, 'browser' | 'os' | 'device'>): string {
  let byOs = agentValues.get(e.browser);
  if (byOs === undefined) {
    if (agentValueCount >= 4096) {
      agentValues.clear();
      agentValueCount = 0;
    }
    byOs = new Map();
    agentValues.set(e.browser, byOs);
  }
  let byDevice = byOs.get(e.os);
  if (byDevice === undefined) {
    byDevice = new Map();
    byOs.set(e.os, byDevice);
  }
  let v = byDevice.get(e.device);
  if (v === undefined) {
    v = agentValue(e);
    byDevice.set(e.device, v);
    agentValueCount++;
  }
  return v;
}

/** The stored agent value of a click: browser, OS and device, and the matched rule when there is one. */
export function agentValueOf(e: Pick<ClickEvent, 'browser' | 'os' | 'device' | 'rule'>): string {
  const v = internedAgentValue(e);
  if (e.rule === undefined) return v;
  // Interned too: the same few strings again and again, never one per click.
  let byRule = ruledAgentValues.get(v);
  if (byRule === undefined) {
    if (ruledAgentValues.size >= 4096) ruledAgentValues.clear();
    byRule = [];
    ruledAgentValues.set(v, byRule);
  }
  byRule[e.rule] ??= `${v}${AGENT_SEP}${e.rule}`;
  return byRule[e.rule]!;
}
const ruledAgentValues = new Map<string, string[]>();

// Nested maps keyed by values already at hand: summing a click builds no strings, which matters
// at tens of thousands of clicks a second on the thread that also serves redirects.
/** Adds one click; returns how many rows (increments and registers) it created. */
function addTo(link: LinkSums, e: ClickEvent, hour: number, day: number, reg: number, rank: number): number {
  let created = 0;
  let h: HourSums | undefined;
  for (const x of link.hours) if (x.hour === hour && x.bot === e.bot) h = x;
  if (h === undefined) {
    h = { hour, bot: e.bot, values: { referrer: new Map(), country: new Map(), agent: new Map() } };
    link.hours.push(h);
  }
  created += bump(h.values.referrer, e.referrerHost ?? '');
  created += bump(h.values.country, e.country ?? '');
  created += bump(h.values.agent, agentValueOf(e));
  let d: DaySketch | undefined;
  for (const x of link.days) if (x.day === day && x.bot === e.bot) d = x;
  if (d === undefined) {
    d = { day, bot: e.bot, ranks: new Map() };
    link.days.push(d);
  }
  const old = d.ranks.get(reg);
  if (old === undefined || rank > old) d.ranks.set(reg, rank);
  return old === undefined ? created + 1 : created;
}

/** Adds one link's sums into `into` (the all-links sums): counts add up, registers keep the maximum. */
function mergeInto(into: LinkSums, link: LinkSums): void {
  for (const h of link.hours) {
    let t: HourSums | undefined;
    for (const x of into.hours) if (x.hour === h.hour && x.bot === h.bot) t = x;
    if (t === undefined) {
      t = { hour: h.hour, bot: h.bot, values: { referrer: new Map(), country: new Map(), agent: new Map() } };
      into.hours.push(t);
    }
    for (const dim of CLICK_DIMS) {
      const m = t.values[dim];
      for (const [value, n] of h.values[dim]) m.set(value, (m.get(value) ?? 0) + n);
    }
  }
  for (const d of link.days) {
    let t: DaySketch | undefined;
    for (const x of into.days) if (x.day === d.day && x.bot === d.bot) t = x;
    if (t === undefined) {
      t = { day: d.day, bot: d.bot, ranks: new Map() };
      into.days.push(t);
    }
    for (const [reg, rank] of d.ranks) if (rank > (t.ranks.get(reg) ?? 0)) t.ranks.set(reg, rank);
  }
}

function emit(code: string, link: LinkSums, rollups: RollupIncrement[], visitors: VisitorRegister[]): void {
  for (const h of link.hours) {
    for (const dim of CLICK_DIMS) {
      for (const [value, clicks] of h.values[dim])
        rollups.push({ code, hour: h.hour, bot: h.bot, dim, value, clicks });
    }
  }
  for (const d of link.days) {
    for (const [reg, rank] of d.ranks) visitors.push({ code, day: d.day, bot: d.bot, reg, rank });
  }
}

export interface ClickChunk extends ClickSummary {
  readonly events: ClickEvent[];
}

/**
 * Sums clicks as they arrive into increments per (code, hour, bot, dimension, value) and visitor
 * registers per (code, day, bot, register), each also under ALL_LINKS; then gives them out in
 * chunks of bounded size, so neither summing nor writing ever holds the thread for long.
 */
export class ClickSums {
  private readonly links = new Map<string, LinkSums>();
  /** The all-links rows go out with the first chunk (merged from the links' then, not per click). */
  private everyLinkTaken = false;
  private readonly events: ClickEvent[] = [];
  private eventsTaken = 0;
  private rowCount = 0;
  add(e: ClickEvent): void {
    const { reg, rank } = hllRegister(e.visitor);
    let link = this.links.get(e.code);
    if (link === undefined) {
      link = { hours: [], days: [] };
      this.links.set(e.code, link);
    }
    this.rowCount += addTo(link, e, floorTo(e.at, HOUR_MS), floorTo(e.at, DAY_MS), reg, rank);
    this.events.push(e);
  }

  /** Rows (increments and registers) of the links' sums, the all-links rows aside. */
  get rows(): number {
    return this.rowCount;
  }

  /** Clicks added and not yet given out in a chunk. */
  get remaining(): number {
    return this.events.length - this.eventsTaken;
  }

  /** Up to about maxRows increments and maxEvents raw events, or null when all are given out. */
  take(maxRows: number, maxEvents: number): ClickChunk | null {
    const rollups: RollupIncrement[] = [];
    const visitors: VisitorRegister[] = [];
    if (!this.everyLinkTaken) {
      const all: LinkSums = { hours: [], days: [] };
      for (const link of this.links.values()) mergeInto(all, link);
      if (all.hours.length > 0) emit(ALL_LINKS, all, rollups, visitors);
      this.everyLinkTaken = true;
    }
    for (const [code, link] of this.links) {
      if (rollups.length + visitors.length >= maxRows) break;
      emit(code, link, rollups, visitors);
      this.links.delete(code);
    }
    const events = this.events.slice(this.eventsTaken, this.eventsTaken + maxEvents);
    this.eventsTaken += events.length;
    if (rollups.length === 0 && visitors.length === 0 && events.length === 0) return null;
    return { rollups, visitors, events };
  }
}

/** Which of `parts` parts a link's rows go to: FNV-1a of the code, stable across processes. */
export function partOf(code: string, parts: number): number {
  if (code === ALL_LINKS || parts <= 1) return 0;
  let h = 0x811c9dc5;
  for (let i = 0; i < code.length; i++) {
    h ^= code.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % parts;
}

/** All of a set of clicks summed at once (tests, tools). */
export function summarizeClicks(events: readonly ClickEvent[]): ClickSummary {
  const sums = new ClickSums();
  for (const e of events) sums.add(e);
  const chunk = sums.take(Number.POSITIVE_INFINITY, 0);
  return { rollups: chunk?.rollups ?? [], visitors: chunk?.visitors ?? [] };
}

/**
 * Rollups as stored (DESIGN §7): one row per (link, hour, bot flag) and write, its values packed
 * into arrays. A value is its dimension's tag and the value ('r' referrer, 'c' country, 'a' agent);
 * a visitor register is reg * 64 + rank. Writing a link's hour as one row instead of one per value
 * and register is what keeps clicks cheap to store: the database's cost is per row.
 */
export interface Pack {
  readonly code: string;
  /** Start of the UTC hour, epoch ms. */
  readonly hour: number;
  readonly bot: boolean;
  clicks: number;
  readonly vals: string[];
  readonly counts: number[];
  readonly regs: number[];
}

export const DIM_TAGS: Record<ClickDim, string> = { referrer: 'r', country: 'c', agent: 'a' };

/**
 * Packs a batch's increments and registers. A day's registers go with the link's earliest pack of
 * that day (registers merge by maximum over a window's days, so which hour holds them is moot).
 */
export function packRollups(
  rollups: readonly RollupIncrement[],
  visitors: readonly VisitorRegister[],
): Pack[] {
  const packs = new Map<string, Pack>();
  const firstOfDay = new Map<string, Pack>();
  const packFor = (code: string, hour: number, bot: boolean): Pack => {
    const key = `${code}\u0000${hour}\u0000${bot}`;
    let p = packs.get(key);
    if (p === undefined) {
      p = { code, hour, bot, clicks: 0, vals: [], counts: [], regs: [] };
      packs.set(key, p);
      const dayKey = `${code}\u0000${floorTo(hour, DAY_MS)}\u0000${bot}`;
      const first = firstOfDay.get(dayKey);
      if (first === undefined || hour < first.hour) firstOfDay.set(dayKey, p);
    }
    return p;
  };
  for (const r of rollups) {
    const p = packFor(r.code, r.hour, r.bot);
    if (r.dim === COUNTED_BY) p.clicks += r.clicks;
    p.vals.push(DIM_TAGS[r.dim] + r.value);
    p.counts.push(r.clicks);
  }
  for (const v of visitors) {
    const p = firstOfDay.get(`${v.code}\u0000${v.day}\u0000${v.bot}`) ?? packFor(v.code, v.day, v.bot);
    p.regs.push(v.reg * 64 + v.rank);
  }
  return [...packs.values()];
}

/**
 * Raw events as stored: one JSON object of columns (field names once per batch, not once per
 * click), about half the bytes of an array of objects.
 */
export function encodeRawClicks(events: readonly ClickEvent[]): string {
  const col = <T>(f: (e: ClickEvent) => T) => events.map(f);
  return JSON.stringify({
    v: 1,
    id: col((e) => e.id),
    code: col((e) => e.code),
    at: col((e) => e.at),
    referrerHost: col((e) => e.referrerHost),
    country: col((e) => e.country),
    browser: col((e) => e.browser),
    os: col((e) => e.os),
    device: col((e) => e.device),
    bot: col((e) => (e.bot ? 1 : 0)),
    visitor: col((e) => e.visitor),
    ...(events.some((e) => e.rule !== undefined) ? { rule: col((e) => e.rule ?? null) } : {}),
    // User agents and referers repeat: each is written once, clicks name it by its place.
    ...dictionaryColumn('ua', events, (e) => e.userAgent),
    ...dictionaryColumn('ref', events, (e) => e.referer),
  });
}

/** A column as a dictionary (`<name>s`) and each click's index into it (-1: none); nothing when no click has one. */
function dictionaryColumn(
  name: string,
  events: readonly ClickEvent[],
  pick: (e: ClickEvent) => string | undefined,
): Record<string, unknown[]> {
  const ids = new Map<string, number>();
  const dict: string[] = [];
  const col = events.map((e) => {
    const v = pick(e);
    if (v === undefined) return -1;
    let id = ids.get(v);
    if (id === undefined) {
      id = dict.length;
      dict.push(v);
      ids.set(v, id);
    }
    return id;
  });
  return dict.length === 0 ? {} : { [`${name}s`]: dict, [name]: col };
}

/** The value a dictionary column gives click i, if any. */
function fromDictionary(c: Record<string, unknown[]>, name: string, i: number): string | undefined {
  const id = c[name]?.[i];
  return typeof id === 'number' && id >= 0 ? (c[`${name}s`]?.[id] as string | undefined) : undefined;
}

export function decodeRawClicks(text: string): ClickEvent[] {
  const c = JSON.parse(text) as Record<string, unknown[]>;
  const at = (k: string, i: number) => c[k]?.[i] as never;
  return (c.id ?? []).map((_, i) => ({
    id: at('id', i),
    code: at('code', i),
    at: at('at', i),
    referrerHost: at('referrerHost', i),
    country: at('country', i),
    browser: at('browser', i),
    os: at('os', i),
    device: at('device', i),
    bot: at('bot', i) === 1,
    visitor: at('visitor', i),
    ...(typeof c.rule?.[i] === 'number' ? { rule: c.rule[i] as number } : {}),
    ...optionalText('userAgent', fromDictionary(c, 'ua', i)),
    ...optionalText('referer', fromDictionary(c, 'ref', i)),
  }));
}

/** `{[name]: value}`, or nothing when there is no value (optional fields stay absent, not undefined). */
export const optionalText = <K extends string>(name: K, value: string | undefined): { [k in K]?: string } =>
  (value === undefined ? {} : { [name]: value }) as { [k in K]?: string };

/**
 * A chunk split by the shard that owns each link. The all-links rows are kept per shard (and summed
 * across shards when read), so each part gets its own, summed from its links' rows: the input's
 * all-links rows are not used. Exact, because a link's rows are all in one chunk and the all-links
 * visitor register is the maximum of the links' registers.
 */
export function splitByShard(chunk: ClickChunk, shardOf: (code: string) => number): Map<number, ClickChunk> {
  const parts = new Map<
    number,
    ClickChunk & { all: Map<string, RollupIncrement>; allVisitors: Map<string, VisitorRegister> }
  >();
  const part = (code: string) => {
    const shard = shardOf(code);
    let p = parts.get(shard);
    if (p === undefined) {
      p = { rollups: [], visitors: [], events: [], all: new Map(), allVisitors: new Map() };
      parts.set(shard, p);
    }
    return p;
  };
  for (const r of chunk.rollups) {
    if (r.code === ALL_LINKS) continue;
    const p = part(r.code);
    p.rollups.push(r);
    const k = `${r.hour}\u0000${r.bot}\u0000${r.dim}\u0000${r.value}`;
    const sum = p.all.get(k);
    p.all.set(k, { ...r, code: ALL_LINKS, clicks: (sum?.clicks ?? 0) + r.clicks });
  }
  for (const v of chunk.visitors) {
    if (v.code === ALL_LINKS) continue;
    const p = part(v.code);
    p.visitors.push(v);
    const k = `${v.day}\u0000${v.bot}\u0000${v.reg}`;
    const max = p.allVisitors.get(k);
    if (max === undefined || max.rank < v.rank) p.allVisitors.set(k, { ...v, code: ALL_LINKS });
  }
  for (const e of chunk.events) part(e.code).events.push(e);
  const out = new Map<number, ClickChunk>();
  for (const [shard, p] of parts) {
    out.set(shard, {
      rollups: [...p.all.values(), ...p.rollups],
      visitors: [...p.allVisitors.values(), ...p.visitors],
      events: p.events,
    });
  }
  return out;
}
