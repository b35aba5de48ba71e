// Visits and click counts from another shortener as Hop click batches (DESIGN §7), each with an id
// derived from what it holds (source, link, hour), so a re-run writes every batch exactly once: the
// ledger refuses an id it has. Visits are grouped by link and UTC hour rather than by the source's
// pages, which shift as new visits arrive; a re-run therefore adds the hours it had not seen and
// never counts one twice (visits that arrive later in an hour already written are not added).
import { createHash } from 'node:crypto';
import { describeAgent, parseReferrerHost } from '../analytics/click-enricher.ts';
import {
  ALL_LINKS,
  agentValue,
  CLICK_DIMS,
  type ClickEvent,
  DAY_MS,
  floorTo,
  HOUR_MS,
  type RollupIncrement,
  summarizeClicks,
} from '../domain/clicks.ts';
import { uuid7From } from '../events/uuid7.ts';
import type { ClickBatch, OrphanBatch, OrphanType } from '../storage/ports.ts';
import type { SourceOrphan, SourceVisit } from './source.ts';

/**
 * A UUID laid out as version 7 (`at` in its first 48 bits) whose other bits are a hash of `seed`:
 * the same seed gives the same id on every run.
 */
export function derivedUuid(seed: string, at: number): string {
  return uuid7From(createHash('sha256').update(seed).digest().subarray(0, 16), at);
}

interface Agent {
  readonly browser: string | null;
  readonly os: string | null;
  readonly device: string | null;
  readonly bot: boolean;
}

// Parsed as a redirect's user agent is (analytics/click-enricher.ts), so imported clicks break down
// by the same names as Hop's own. Cached: agents repeat.
const agents = new Map<string, Agent>();
function agentOf(ua: string): Agent {
  let a = agents.get(ua);
  if (a === undefined) {
    a = describeAgent(ua);
    if (agents.size >= 4096) agents.clear();
    agents.set(ua, a);
  }
  return a;
}

const referrerHost = (referer: string | null): string | null =>
  referer === null || referer === '' ? null : parseReferrerHost(referer);

/** One visit as a Hop click of link `key`; its visitor is a hash of the day, agent and place (no IP). */
export function visitToClick(v: SourceVisit, key: string, id: string, origin: string): ClickEvent {
  const ua = v.userAgent ?? '';
  const agent = agentOf(ua);
  const bot = v.bot || agent.bot;
  const country = v.country !== null && /^[A-Za-z]{2}$/.test(v.country) ? v.country.toUpperCase() : null;
  const visitor = createHash('sha256')
    .update(`${origin}\u0000${floorTo(v.at, DAY_MS)}\u0000${ua}\u0000${country ?? ''}\u0000${v.place}`)
    .digest('hex')
    .slice(0, 16);
  return {
    id,
    code: key,
    at: v.at,
    referrerHost: referrerHost(v.referer),
    country,
    browser: agent.browser,
    os: agent.os,
    device: bot && agent.device === null ? 'bot' : agent.device,
    bot,
    visitor,
    // Kept as the source recorded them, so imported visits list as they happened.
    ...(ua === '' ? {} : { userAgent: ua }),
    ...(v.referer === null || v.referer === '' ? {} : { referer: v.referer }),
  };
}

/**
 * Items grouped by UTC hour, given out when the buffer is full (every hour but the one the last item
 * fell in: sources list newest or oldest first, so those hours are complete) and at the end. An hour
 * given out twice (a source in no order, or an hour past the buffer's size) gets a sequence number,
 * which the same input reproduces.
 */
export class HourGroups<T extends { readonly at: number }> {
  private groups = new Map<number, T[]>();
  private size = 0;
  private lastHour = Number.NaN;
  private readonly given = new Map<number, number>();
  private readonly max: number;

  constructor(max = 5_000) {
    this.max = max;
  }

  add(item: T): { hour: number; seq: number; items: T[] }[] {
    const hour = floorTo(item.at, HOUR_MS);
    let g = this.groups.get(hour);
    if (g === undefined) {
      g = [];
      this.groups.set(hour, g);
    }
    g.push(item);
    this.size++;
    this.lastHour = hour;
    if (this.size < this.max) return [];
    const out = this.take((h) => h !== this.lastHour);
    if (this.size >= this.max) out.push(...this.take(() => true));
    return out;
  }

  finish(): { hour: number; seq: number; items: T[] }[] {
    return this.take(() => true);
  }

  private take(which: (hour: number) => boolean): { hour: number; seq: number; items: T[] }[] {
    const out: { hour: number; seq: number; items: T[] }[] = [];
    for (const [hour, items] of this.groups) {
      if (!which(hour)) continue;
      const seq = this.given.get(hour) ?? 0;
      this.given.set(hour, seq + 1);
      out.push({ hour, seq, items });
      this.groups.delete(hour);
      this.size -= items.length;
    }
    return out;
  }
}

/** One hour's visits of link `key` as a click batch with its derived id. */
export function visitBatch(
  origin: string,
  key: string,
  group: { hour: number; seq: number; items: readonly SourceVisit[] },
): ClickBatch {
  const seed = `${origin}\u0000visits\u0000${key}\u0000${group.hour}\u0000${group.seq}`;
  const events = group.items.map((v, i) =>
    visitToClick(v, key, derivedUuid(`${seed}\u0000${i}`, v.at), origin),
  );
  return { id: derivedUuid(seed, group.hour), events, ...summarizeClicks(events) };
}

/**
 * A click count without detail (Kutt, YOURLS) as one batch at the link's creation hour, with the
 * rollups summarizeClicks makes of clicks whose referrer, country and agent are unknown. Its id
 * names the kind of source, not where it was read: YOURLS read through its API and then from a dump
 * of the same table counts each link's clicks once.
 */
export function countBatch(source: string, key: string, createdAt: number, clicks: number): ClickBatch {
  const hour = floorTo(createdAt, HOUR_MS);
  const unknown = { referrer: '', country: '', agent: agentValue({ browser: null, os: null, device: null }) };
  const rollups: RollupIncrement[] = [];
  for (const code of [ALL_LINKS, key])
    for (const dim of CLICK_DIMS) rollups.push({ code, hour, bot: false, dim, value: unknown[dim], clicks });
  // The id leaves the hour out: a source that gives no creation time would give another hour each run.
  return { id: derivedUuid(`${source}\u0000count\u0000${key}`, 0), events: [], rollups, visitors: [] };
}

// As analytics/orphan-visits.ts keeps them: paths cut at 200 characters, at most 1,000 per batch.
const MAX_PATHS = 1_000;
const MAX_PATH_LENGTH = 200;

/** One hour's orphan visits as an orphan batch with its derived id; `domain` maps a source host. */
export function orphanBatch(
  origin: string,
  group: { hour: number; seq: number; items: readonly SourceOrphan[] },
  domain: (host: string | null) => string,
): OrphanBatch {
  const rows = new Map<
    string,
    { domain: string; hour: number; bot: boolean; type: OrphanType; path: string; visits: number }
  >();
  let paths = 0;
  for (const o of group.items) {
    const d = domain(o.host);
    let path = o.path.length > MAX_PATH_LENGTH ? o.path.slice(0, MAX_PATH_LENGTH) : o.path;
    let k = `${d}\u0000${o.bot}\u0000${o.type}\u0000${path}`;
    if (!rows.has(k) && paths >= MAX_PATHS) {
      path = '';
      k = `${d}\u0000${o.bot}\u0000${o.type}\u0000`;
    }
    const row = rows.get(k);
    if (row !== undefined) row.visits++;
    else {
      rows.set(k, { domain: d, hour: group.hour, bot: o.bot, type: o.type, path, visits: 1 });
      if (path !== '') paths++;
    }
  }
  const seed = `${origin}\u0000orphans\u0000${group.hour}\u0000${group.seq}`;
  // Each visit listed too (ids derived, so a re-run lists nothing twice: its batch meets the ledger).
  const list = group.items.map((o, i) => ({
    id: derivedUuid(`${seed}\u0000${i}`, o.at),
    at: o.at,
    domain: domain(o.host),
    type: o.type,
    path: o.path.length > MAX_PATH_LENGTH ? o.path.slice(0, MAX_PATH_LENGTH) : o.path,
    bot: o.bot,
    userAgent: o.userAgent ?? null,
    referer: o.referer ?? null,
  }));
  return { id: derivedUuid(seed, group.hour), rows: [...rows.values()], list };
}
