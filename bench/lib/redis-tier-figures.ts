// The arithmetic of the redis-tier scenario, without servers: Hop's cache-tier counters from /metrics,
// store reads per second and per expiry from scrapes taken during a run, what a cyclic scan of unknown
// codes should cost the store with a negative cache, percentiles of measured delays, and the verdicts
// against the targets. A slip here would misreport a target as met, so it is tested alone.
import { requestOnce, type Target } from './http-client.ts';

/** Hop's cache and store counters (cumulative), as /metrics exposes them. */
export interface TierCounts {
  l1Hit: number;
  l1Miss: number;
  l1Negative: number;
  l2Hit: number;
  l2Miss: number;
  l2Negative: number;
  /** hop_store_lookups_total: redirect lookups that reached the store. */
  storeLookups: number;
  /** hop_cache_loads_coalesced_total. */
  coalesced: number;
  /** hop_cache_early_refreshes_total. */
  earlyRefreshes: number;
  /** Redis commands that failed or timed out (hop_redis_command_seconds_count{ok="false"}): each a miss. */
  redisFailures: number;
}

export function emptyTierCounts(): TierCounts {
  return {
    l1Hit: 0,
    l1Miss: 0,
    l1Negative: 0,
    l2Hit: 0,
    l2Miss: 0,
    l2Negative: 0,
    storeLookups: 0,
    coalesced: 0,
    earlyRefreshes: 0,
    redisFailures: 0,
  };
}

const TIER_FIELDS: Record<string, keyof TierCounts> = {
  'l1:hit': 'l1Hit',
  'l1:miss': 'l1Miss',
  'l1:negative': 'l1Negative',
  'l2:hit': 'l2Hit',
  'l2:miss': 'l2Miss',
  'l2:negative': 'l2Negative',
};

/** Parses a Prometheus text exposition; counters Hop has not exposed yet count 0. */
export function parseTierCounts(text: string): TierCounts {
  const c = emptyTierCounts();
  for (const line of text.split('\n')) {
    const m = /^(hop_[a-z_]+)(?:\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (m === null) continue;
    const value = Number(m[3]);
    if (!Number.isFinite(value)) continue;
    const labels = new Map<string, string>();
    for (const l of (m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) labels.set(l[1]!, l[2]!);
    switch (m[1]) {
      case 'hop_cache_requests_total': {
        const field = TIER_FIELDS[`${labels.get('tier')}:${labels.get('result')}`];
        if (field !== undefined) c[field] += value;
        break;
      }
      case 'hop_store_lookups_total':
        c.storeLookups += value;
        break;
      case 'hop_cache_loads_coalesced_total':
        c.coalesced += value;
        break;
      case 'hop_cache_early_refreshes_total':
        c.earlyRefreshes += value;
        break;
      case 'hop_redis_command_seconds_count':
        if (labels.get('ok') === 'false') c.redisFailures += value;
        break;
    }
  }
  return c;
}

export function tierCountsDelta(before: TierCounts, after: TierCounts): TierCounts {
  const d = emptyTierCounts();
  for (const k of Object.keys(d) as (keyof TierCounts)[]) d[k] = after[k] - before[k];
  return d;
}

/** Hop's counters now, or null when /metrics does not answer. */
export async function readTierCounts(target: Target): Promise<TierCounts | null> {
  try {
    const res = await requestOnce(target, { method: 'GET', path: '/metrics' });
    if (res.status !== 200 || res.body === null) return null;
    return parseTierCounts(res.body.toString('utf8'));
  } catch {
    return null;
  }
}

/** Share of redirect lookups each tier answered: L1 of all lookups, L2 of those that reached it. */
export function hitShares(d: TierCounts): { l1: number | null; l2: number | null } {
  const l1 = d.l1Hit + d.l1Miss + d.l1Negative;
  const l2 = d.l2Hit + d.l2Miss + d.l2Negative;
  return {
    l1: l1 > 0 ? (d.l1Hit + d.l1Negative) / l1 : null,
    l2: l2 > 0 ? (d.l2Hit + d.l2Negative) / l2 : null,
  };
}

/**
 * Share of redirect lookups that joined a load already in flight for the same code: of L1's lookups
 * when there is an L1, else of those that reached L2 or joined.
 */
export function coalescedShare(d: TierCounts): number | null {
  const l1 = d.l1Hit + d.l1Miss + d.l1Negative;
  const lookups = l1 > 0 ? l1 : d.l2Hit + d.l2Miss + d.l2Negative + d.coalesced;
  return lookups > 0 ? d.coalesced / lookups : null;
}

// ---------------------------------------------------------------------------------------------
// Store reads over time

/** One scrape of a process: when (ms, performance.now()), its store lookups and early refreshes so far. */
export interface StoreScrape {
  at: number;
  storeLookups: number;
  earlyRefreshes: number;
}

/** What happened between two consecutive scrapes. */
export interface StoreWindow {
  /** Window end, ms. */
  at: number;
  seconds: number;
  reads: number;
  earlyRefreshes: number;
  /** Expiries of the watched entry (in Redis) inside the window. */
  expiries: number;
}

/**
 * The windows between consecutive scrapes, each with the expiries whose time falls in
 * (previous scrape, this scrape]. Expiry times are in the scrapes' clock.
 */
export function storeWindows(scrapes: readonly StoreScrape[], expiries: readonly number[]): StoreWindow[] {
  const out: StoreWindow[] = [];
  for (let i = 1; i < scrapes.length; i++) {
    const a = scrapes[i - 1]!;
    const b = scrapes[i]!;
    out.push({
      at: b.at,
      seconds: (b.at - a.at) / 1000,
      reads: b.storeLookups - a.storeLookups,
      earlyRefreshes: b.earlyRefreshes - a.earlyRefreshes,
      expiries: expiries.filter((t) => t > a.at && t <= b.at).length,
    });
  }
  return out;
}

/**
 * The expiries that belong to a measured window, from those Redis reported since just before it
 * opened: one reported before `openedAt`, or an entry already gone at that moment (`absentAtOpen`),
 * expired before the window but is followed by its read inside it, so it counts at `openedAt`; one after
 * `endedAt` (the load over) is followed by no read, so it does not count.
 */
export function expiriesInWindow(
  reported: readonly number[],
  o: { absentAtOpen: boolean; openedAt: number; endedAt: number },
): number[] {
  const before = reported.filter((t) => t < o.openedAt).length;
  const inside = reported.filter((t) => t >= o.openedAt && t <= o.endedAt);
  const carried = Math.max(before, o.absentAtOpen ? 1 : 0);
  return [...Array.from({ length: carried }, () => o.openedAt), ...inside];
}

export interface StampedeFigures {
  reads: number;
  earlyRefreshes: number;
  seconds: number;
  meanPerS: number;
  /** The busiest window's store reads per second. */
  maxPerS: number;
  /** Expiries of the entry over the whole run (shared by every process). */
  expiries: number;
  /**
   * Store reads caused by expiries (early refreshes are reads without an expiry) per expiry, over the
   * run; null when the entry never expired.
   */
  readsPerExpiry: number | null;
  /**
   * The worst window: its expiry-caused reads over its expiries (at least 1, since a read may land in
   * the window after its expiry's). Null without windows.
   */
  worstWindowReadsPerExpiry: number | null;
}

export function stampedeFigures(windows: readonly StoreWindow[]): StampedeFigures {
  let reads = 0;
  let early = 0;
  let seconds = 0;
  let expiries = 0;
  let maxPerS = 0;
  let worst: number | null = null;
  for (const w of windows) {
    reads += w.reads;
    early += w.earlyRefreshes;
    seconds += w.seconds;
    expiries += w.expiries;
    if (w.seconds > 0) maxPerS = Math.max(maxPerS, w.reads / w.seconds);
    const perExpiry = Math.max(0, w.reads - w.earlyRefreshes) / Math.max(1, w.expiries);
    worst = worst === null ? perExpiry : Math.max(worst, perExpiry);
  }
  return {
    reads,
    earlyRefreshes: early,
    seconds,
    meanPerS: seconds > 0 ? reads / seconds : 0,
    maxPerS,
    expiries,
    readsPerExpiry: expiries > 0 ? Math.max(0, reads - early) / expiries : null,
    worstWindowReadsPerExpiry: worst,
  };
}

// ---------------------------------------------------------------------------------------------
// The scan of unknown codes

/**
 * Store reads a cyclic scan should cause in one process with only its own negative cache: `codes`
 * distinct unknown codes requested in turn at `rate`/s for `durationS`, from a cold cache, an entry
 * living `negativeTtlMs` from the read that filled it (0: nothing is remembered). Counted by
 * replaying the schedule, so the first cycle's misses and the TTL's rounding are exact.
 */
export function cyclicScanStoreReads(
  codes: number,
  rate: number,
  durationS: number,
  negativeTtlMs: number,
): { requests: number; storeReads: number } {
  const requests = Math.max(0, Math.floor(rate * durationS));
  if (negativeTtlMs <= 0) return { requests, storeReads: requests };
  const filledAt = new Float64Array(codes).fill(Number.NEGATIVE_INFINITY);
  let storeReads = 0;
  for (let i = 0; i < requests; i++) {
    const t = (i * 1000) / rate;
    const c = i % codes;
    // Hop's L1 treats an entry as gone once now >= its expiry.
    if (t >= filledAt[c]! + negativeTtlMs) {
      storeReads++;
      filledAt[c] = t;
    }
  }
  return { requests, storeReads };
}

// ---------------------------------------------------------------------------------------------
// Delays and verdicts

export interface DelaySummary {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentiles: with 200 samples the p99 is the 198th smallest, a measured value, never an interpolation. */
export function summarizeDelays(values: readonly number[]): DelaySummary | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) =>
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
  return { count: sorted.length, p50: at(0.5), p99: at(0.99), max: sorted.at(-1)! };
}

/** The middle value (the mean of the middle two for an even count); null for none. */
export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** `value` against `target` × `reference`; null when either figure is missing. */
export function ratioVerdict(
  value: number | null | undefined,
  reference: number | null | undefined,
  target: number,
): { ratio: number; met: boolean } | null {
  if (value === null || value === undefined || reference === null || reference === undefined) return null;
  if (!(reference > 0)) return null;
  const ratio = value / reference;
  return { ratio, met: ratio >= target };
}

export function metText(met: boolean | null): string {
  return met === null ? 'not measured' : met ? 'met' : 'NOT met';
}
