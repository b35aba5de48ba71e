// The embedded writer's in-memory sums, kept in flat typed arrays. Between folds they hold
// hundreds of thousands of increments; as Maps of objects those were a large live heap that every
// garbage collection had to walk, which slowed the redirect thread far more than the summing
// itself. Here an increment is a few numbers in arrays the collector never looks into, and
// summing a click allocates nothing.
import {
  ALL_LINKS,
  agentValueOf,
  CLICK_DIMS,
  type ClickEvent,
  type ClickSummary,
  COUNTED_BY,
  DAY_MS,
  HOUR_MS,
  hllRegister,
  partOf,
  type RollupIncrement,
  type VisitorRegister,
} from './clicks.ts';

// An entry's kind sits in the low two bits of its value key: a dimension (0-2) or a register (3).
const REGISTER = 3;
const COUNTED = CLICK_DIMS.indexOf(COUNTED_BY);
// (hour or day) * 2 + bot fits in 21 bits; a key of (time, value key) in 52.
const TIME_SPAN = 2 ** 21;
const VALUE_SPAN = 2 ** 31;

/** Where (slot, time, value key) starts probing: a 32-bit mix of the three. */
function mix(slot: number, time: number, v: number): number {
  let h = Math.imul(slot, 0x9e3779b1) ^ Math.imul(time, 0x85ebca77) ^ Math.imul(v, 0xc2b2ae3d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  return h ^ (h >>> 13);
}

const grow = <T extends Int32Array | Uint32Array>(a: T, size: number): T => {
  const b = new (a.constructor as new (n: number) => T)(size);
  b.set(a);
  return b;
};

/**
 * Clicks per (link, hour, bot, dimension, value) and visitor registers per (link, day, bot,
 * register), with the same questions as the rows they become: a link's rows, all links' rows,
 * clicks per link and hour, and the rows split into a fold's parts.
 */
export class FlatClickSums {
  private readonly slots = new Map<string, number>();
  private readonly codes: string[] = [];
  private readonly valueIds = CLICK_DIMS.map(() => new Map<string, number>());
  private readonly values: string[][] = CLICK_DIMS.map(() => []);
  // Entries, in the order they were made: link slot, time key, value key, count (or rank), and the
  // next entry of the same link.
  private slot = new Int32Array(1024);
  private time = new Int32Array(1024);
  private value = new Int32Array(1024);
  private count = new Uint32Array(1024);
  private next = new Int32Array(1024);
  private n = 0;
  /** Each link's most recent entry (-1: none). */
  private head = new Int32Array(256).fill(-1);
  /** Open addressing over the entries: entry index + 1, 0 when empty. */
  private index = new Int32Array(2048);

  /** Increments and registers held (the all-links rows aside). */
  get rows(): number {
    return this.n;
  }

  add(e: ClickEvent): void {
    const slot = this.slotOf(e.code);
    const bot = e.bot ? 1 : 0;
    const hour = Math.floor(e.at / HOUR_MS) * 2 + bot;
    // Each entry first: making one may replace the arrays.
    const referrer = this.entry(slot, hour, this.valueId(0, e.referrerHost ?? '') * 4);
    const country = this.entry(slot, hour, this.valueId(1, e.country ?? '') * 4 + 1);
    const agent = this.entry(slot, hour, this.valueId(2, agentValueOf(e)) * 4 + 2);
    const { reg, rank } = hllRegister(e.visitor);
    const r = this.entry(slot, Math.floor(e.at / DAY_MS) * 2 + bot, reg * 4 + REGISTER);
    const count = this.count;
    count[referrer]!++;
    count[country]!++;
    count[agent]!++;
    if (rank > count[r]!) count[r] = rank;
  }

  /** A link's clicks, bots included. */
  clicksOf(code: string, botsOnly = false): number {
    const slot = this.slots.get(code);
    let clicks = 0;
    if (slot === undefined) return 0;
    for (let i = this.head[slot]!; i !== -1; i = this.next[i]!) {
      if ((this.value[i]! & 3) === COUNTED && (!botsOnly || (this.time[i]! & 1) === 1))
        clicks += this.count[i]!;
    }
    return clicks;
  }

  /** The rows of one link (or of ALL_LINKS), without taking them. */
  rowsOf(code: string): ClickSummary {
    const out: ClickSummary = { rollups: [], visitors: [] };
    if (code === ALL_LINKS) {
      this.allLinks(out);
      return out;
    }
    const slot = this.slots.get(code);
    if (slot === undefined) return out;
    for (let i = this.head[slot]!; i !== -1; i = this.next[i]!) this.emit(i, code, out);
    return out;
  }

  /** The keys of the links with clicks held. */
  linkKeys(): IterableIterator<string> {
    return this.slots.keys();
  }

  /** Every link's clicks per hour and bot flag (for top links). */
  *linkHours(): Generator<{ code: string; hour: number; bot: boolean; clicks: number }> {
    const sums = new Map<number, number>();
    for (let i = 0; i < this.n; i++) {
      if ((this.value[i]! & 3) !== COUNTED) continue;
      const k = this.slot[i]! * TIME_SPAN + this.time[i]!;
      sums.set(k, (sums.get(k) ?? 0) + this.count[i]!);
    }
    for (const [k, clicks] of sums) {
      const t = k % TIME_SPAN;
      yield { code: this.codes[(k - t) / TIME_SPAN]!, hour: (t >> 1) * HOUR_MS, bot: (t & 1) === 1, clicks };
    }
  }

  /**
   * All rows, split into `parts` summaries by a hash of the link code (the all-links rows go with
   * part 0). The same clicks give the same parts in any order, so a write interrupted half way can
   * be redone part by part and each part still meets its own ledger entry. Leaves the sums intact.
   */
  partition(parts: number): ClickSummary[] {
    const part = this.parts(parts);
    return Array.from({ length: parts }, (_, k) => part(k));
  }

  /**
   * The same parts, each made only when asked for. A fold writes one part at a time, and a fold's
   * rows as objects all at once were tens of MB (an object per row); this keeps 4 bytes per entry.
   * The sums must not change while parts are asked for (a fold's generation takes no more clicks).
   */
  parts(parts: number): (k: number) => ClickSummary {
    const partOfSlot = Int32Array.from(this.codes, (c) => partOf(c, parts));
    // Entries grouped by part (a counting sort): part k's are order[start[k]] .. order[start[k + 1] - 1].
    const start = new Int32Array(parts + 1);
    for (let i = 0; i < this.n; i++) start[partOfSlot[this.slot[i]!]! + 1]!++;
    for (let k = 0; k < parts; k++) start[k + 1]! += start[k]!;
    const order = new Int32Array(this.n);
    const fill = start.slice(0, parts);
    for (let i = 0; i < this.n; i++) order[fill[partOfSlot[this.slot[i]!]!]!++] = i;
    return (k) => {
      const out: ClickSummary = { rollups: [], visitors: [] };
      if (k === 0 && this.n > 0) this.allLinks(out);
      for (let j = start[k]!; j < start[k + 1]!; j++) {
        const i = order[j]!;
        this.emit(i, this.codes[this.slot[i]!]!, out);
      }
      return out;
    };
  }

  /** The all-links rows: counts add up across links, registers keep the maximum. */
  private allLinks(out: ClickSummary): void {
    const sums = new Map<number, number>();
    for (let i = 0; i < this.n; i++) {
      const v = this.value[i]!;
      const k = this.time[i]! * VALUE_SPAN + v;
      const c = this.count[i]!;
      const had = sums.get(k) ?? 0;
      sums.set(k, (v & 3) === REGISTER ? Math.max(had, c) : had + c);
    }
    for (const [k, c] of sums) {
      const v = k % VALUE_SPAN;
      this.push(ALL_LINKS, (k - v) / VALUE_SPAN, v, c, out);
    }
  }

  private emit(i: number, code: string, out: ClickSummary): void {
    this.push(code, this.time[i]!, this.value[i]!, this.count[i]!, out);
  }

  private push(code: string, time: number, v: number, c: number, out: ClickSummary): void {
    const bot = (time & 1) === 1;
    const dim = v & 3;
    const id = v >>> 2;
    if (dim === REGISTER) {
      (out.visitors as VisitorRegister[]).push({ code, day: (time >> 1) * DAY_MS, bot, reg: id, rank: c });
    } else {
      (out.rollups as RollupIncrement[]).push({
        code,
        hour: (time >> 1) * HOUR_MS,
        bot,
        dim: CLICK_DIMS[dim]!,
        value: this.values[dim]![id]!,
        clicks: c,
      });
    }
  }

  private slotOf(code: string): number {
    let s = this.slots.get(code);
    if (s === undefined) {
      s = this.codes.length;
      this.codes.push(code);
      this.slots.set(code, s);
      if (s >= this.head.length) {
        const h = new Int32Array(this.head.length * 2).fill(-1);
        h.set(this.head);
        this.head = h;
      }
    }
    return s;
  }

  private valueId(dim: number, value: string): number {
    const ids = this.valueIds[dim]!;
    let id = ids.get(value);
    if (id === undefined) {
      id = this.values[dim]!.length;
      this.values[dim]!.push(value);
      ids.set(value, id);
    }
    return id;
  }

  /** The entry of (slot, time, value key), made (at zero) when new. */
  private entry(slot: number, time: number, v: number): number {
    const mask = this.index.length - 1;
    for (let p = mix(slot, time, v) & mask; ; p = (p + 1) & mask) {
      const at = this.index[p]!;
      if (at === 0) break;
      const i = at - 1;
      if (this.slot[i] === slot && this.time[i] === time && this.value[i] === v) return i;
    }
    return this.insert(slot, time, v);
  }

  private insert(slot: number, time: number, v: number): number {
    const i = this.n++;
    if (i >= this.slot.length) {
      const size = this.slot.length * 2;
      this.slot = grow(this.slot, size);
      this.time = grow(this.time, size);
      this.value = grow(this.value, size);
      this.count = grow(this.count, size);
      this.next = grow(this.next, size);
    }
    this.slot[i] = slot;
    this.time[i] = time;
    this.value[i] = v;
    this.count[i] = 0;
    this.next[i] = this.head[slot]!;
    this.head[slot] = i;
    // Half full at most, so probes stay short.
    if (this.n * 2 > this.index.length) this.reindex(this.index.length * 2);
    else this.place(i, this.index.length - 1);
    return i;
  }

  private reindex(size: number): void {
    this.index = new Int32Array(size);
    for (let i = 0; i < this.n; i++) this.place(i, size - 1);
  }

  private place(i: number, mask: number): void {
    let p = mix(this.slot[i]!, this.time[i]!, this.value[i]!) & mask;
    while (this.index[p] !== 0) p = (p + 1) & mask;
    this.index[p] = i + 1;
  }
}
