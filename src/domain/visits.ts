// Raw visits as lists (Shlink's visit lists): what a query asks and what a page holds. Pure.
import type { ClickEvent } from './clicks.ts';

export interface VisitQuery {
  /** These links' keys, or null for every link (of `domain`, when given). */
  readonly keys: readonly string[] | null;
  /** With keys null: only the links of this domain ('' the default domain). */
  readonly domain?: string;
  /** [from, to), epoch ms. */
  readonly from: number;
  readonly to: number;
  readonly includeBots: boolean;
  readonly offset: number;
  readonly limit: number;
}

export interface VisitPage {
  /** Newest first. */
  readonly visits: readonly ClickEvent[];
  /** Visits matching the query in all. */
  readonly total: number;
}

/** Newest first; ties by event id (time-ordered), so pages never overlap or skip. */
export const byNewest = (a: ClickEvent, b: ClickEvent): number =>
  b.at - a.at || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);

/** The `n` newest of `events`. */
export function newestVisits(events: readonly ClickEvent[], n: number): ClickEvent[] {
  return [...events].sort(byNewest).slice(0, n);
}

/**
 * A stored group of visits as a page is planned from it, without its visits: their time span and
 * how many of them match the query (known when the group lies wholly inside the query's window).
 */
export interface VisitGroup {
  readonly first: number;
  readonly last: number;
  /** Matching visits; null when the group crosses a bound of the window (then not known unread). */
  readonly matching: number | null;
}

/**
 * Which groups a page needs, given groups sorted by their last visit, newest first. `need` is
 * offset + limit. Returns how many leading groups suffice (`enough`, null when more must be
 * fetched first) once every later group that may still hold a newer visit is counted in, and how
 * many leading groups can be skipped unread (`skip`, holding `skipped` visits): a prefix wholly
 * newer than everything after it, with no more visits than the offset.
 */
export function planVisitPage(
  groups: readonly VisitGroup[],
  need: number,
  offset: number,
  exhausted: boolean,
): { enough: number | null; skip: number; skipped: number } {
  let sum = 0;
  let minFirst = Number.POSITIVE_INFINITY;
  let k = -1;
  for (let i = 0; i < groups.length; i++) {
    const g = groups[i]!;
    sum += g.matching ?? 0;
    minFirst = Math.min(minFirst, g.first);
    if (sum >= need) {
      k = i;
      break;
    }
  }
  let enough: number | null;
  if (k === -1) enough = exhausted ? groups.length : null;
  else {
    // Later groups ending at or after the earliest visit of the first k may hold newer visits.
    let end = k + 1;
    while (end < groups.length && groups[end]!.last >= minFirst) end++;
    enough = end < groups.length || exhausted ? end : null;
  }
  let skip = 0;
  let skipped = 0;
  let prefixSum = 0;
  let prefixFirst = Number.POSITIVE_INFINITY;
  const limit = enough ?? groups.length;
  for (let i = 0; i < limit; i++) {
    const g = groups[i]!;
    if (g.matching === null) break;
    prefixSum += g.matching;
    if (prefixSum > offset) break;
    prefixFirst = Math.min(prefixFirst, g.first);
    const next = groups[i + 1];
    if (next === undefined && !exhausted) break;
    // Only a prefix that no later group reaches into is exactly the newest visits.
    if (next !== undefined && next.last >= prefixFirst) continue;
    skip = i + 1;
    skipped = prefixSum;
  }
  return { enough, skip, skipped };
}

/** Visits per stored row at most, in time order: a page reads a few rows, never one huge one. */
export const ROW_VISITS = 2_000;
/** A link with at least this many visits in a split gets rows of its own; others share tail rows. */
export const OWN_ROW_MIN = 16;

/** The code of the tail rows of a bucket (no link key starts with '#'). */
export const tailCode = (bucket: number): string => `#${bucket}`;

/** A row of visits to store: one link's (links null), or a bucket's tail of several links. */
export interface VisitRowDraft {
  readonly code: string;
  readonly first: number;
  readonly last: number;
  readonly visits: number;
  readonly bots: number;
  /** Tail rows: the links in the row, sorted, with each one's visits and bots. */
  readonly links: string[] | null;
  readonly linkVisits: number[] | null;
  readonly linkBots: number[] | null;
  readonly events: ClickEvent[];
}

function draft(code: string, events: ClickEvent[], tail: boolean): VisitRowDraft {
  let first = Number.POSITIVE_INFINITY;
  let last = 0;
  let bots = 0;
  const perLink = new Map<string, [number, number]>();
  for (const e of events) {
    first = Math.min(first, e.at);
    last = Math.max(last, e.at);
    if (e.bot) bots++;
    if (tail) {
      const c = perLink.get(e.code) ?? [0, 0];
      c[0]++;
      if (e.bot) c[1]++;
      perLink.set(e.code, c);
    }
  }
  const links = tail ? [...perLink.keys()].sort() : null;
  return {
    code,
    first,
    last,
    visits: events.length,
    bots,
    links,
    linkVisits: links?.map((l) => perLink.get(l)![0]) ?? null,
    linkBots: links?.map((l) => perLink.get(l)![1]) ?? null,
    events,
  };
}

/** Time-ordered chunks of at most ROW_VISITS. */
function chunks(events: ClickEvent[]): ClickEvent[][] {
  events.sort((a, b) => a.at - b.at);
  const out: ClickEvent[][] = [];
  for (let i = 0; i < events.length; i += ROW_VISITS) out.push(events.slice(i, i + ROW_VISITS));
  return out;
}

/**
 * Clicks as the rows to store them in: a link with OWN_ROW_MIN or more gets rows of its own, the
 * rest go to their bucket's tail rows. Rows per split stay near (links clicked often + buckets),
 * not one per link clicked: the long tail of links clicked once costs a row per bucket.
 */
export function visitRowsOf(
  events: readonly ClickEvent[],
  bucketOf: (key: string) => number,
): VisitRowDraft[] {
  const byLink = new Map<string, ClickEvent[]>();
  for (const e of events) {
    let list = byLink.get(e.code);
    if (list === undefined) {
      list = [];
      byLink.set(e.code, list);
    }
    list.push(e);
  }
  const rows: VisitRowDraft[] = [];
  const tails = new Map<number, ClickEvent[]>();
  for (const [key, list] of byLink) {
    if (list.length >= OWN_ROW_MIN) {
      for (const c of chunks(list)) rows.push(draft(key, c, false));
      continue;
    }
    const b = bucketOf(key);
    const tail = tails.get(b);
    if (tail === undefined) tails.set(b, list);
    else for (const e of list) tail.push(e);
  }
  for (const [b, list] of tails) for (const c of chunks(list)) rows.push(draft(tailCode(b), c, true));
  return rows;
}
