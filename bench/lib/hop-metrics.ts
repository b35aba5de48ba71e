// Reads Hop's own counters from /metrics: a cache stage is only what it claims when the cache
// actually answered during the measured run, and Hop counts that itself.
import { requestOnce, type Target } from './http-client.ts';

/** In-process (l1) cache lookups by result, as counted by hop_cache_requests_total. */
export interface CacheCounts {
  hit: number;
  miss: number;
  /** Cached "no such link" answers. */
  negative: number;
}

/** Parses the l1 cache counters out of a Prometheus text exposition; absent counters count 0. */
export function parseCacheCounts(text: string): CacheCounts {
  const counts: CacheCounts = { hit: 0, miss: 0, negative: 0 };
  for (const line of text.split('\n')) {
    if (!line.startsWith('hop_cache_requests_total{')) continue;
    const m = /^hop_cache_requests_total\{([^}]*)\}\s+(\S+)/.exec(line);
    if (m === null) continue;
    const labels = new Map<string, string>();
    for (const l of (m[1] ?? '').matchAll(/(\w+)="([^"]*)"/g)) labels.set(l[1]!, l[2]!);
    const result = labels.get('result');
    if (labels.get('tier') !== 'l1' || (result !== 'hit' && result !== 'miss' && result !== 'negative'))
      continue;
    counts[result] += Number(m[2]);
  }
  return counts;
}

export function cacheCountsDelta(before: CacheCounts, after: CacheCounts): CacheCounts {
  return {
    hit: after.hit - before.hit,
    miss: after.miss - before.miss,
    negative: after.negative - before.negative,
  };
}

/** Hop's cache counters now, or null when /metrics does not answer. */
export async function readCacheCounts(target: Target): Promise<CacheCounts | null> {
  try {
    const res = await requestOnce(target, { method: 'GET', path: '/metrics' });
    if (res.status !== 200 || res.body === null) return null;
    return parseCacheCounts(res.body.toString('utf8'));
  } catch {
    return null;
  }
}

/** Sums of the named counters (all label sets), or null when /metrics does not answer. */
export async function readCounters(
  target: Target,
  names: readonly string[],
): Promise<Record<string, number> | null> {
  try {
    const res = await requestOnce(target, { method: 'GET', path: '/metrics' });
    if (res.status !== 200 || res.body === null) return null;
    const out: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
    for (const line of res.body.toString('utf8').split('\n')) {
      const m = /^([a-z_]+)(?:\{[^}]*\})?\s+(\S+)/.exec(line);
      if (m !== null && m[1]! in out) out[m[1]!]! += Number(m[2]);
    }
    return out;
  } catch {
    return null;
  }
}
