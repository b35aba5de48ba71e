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

/**
 * Waits (at most `timeoutMs`) until every click the Hop accepted is written, and with `folds` also
 * folded into the rollups; returns how long. A recording Hop goes on working after a probe, and
 * the next probe, of it or of another server on the same cores, must not pay for that.
 */
export async function waitForClickWriter(
  target: Target,
  folds: boolean,
  timeoutMs = 120_000,
): Promise<number> {
  const names = ['hop_clicks_recorded_total', 'hop_clicks_written_total', 'hop_clicks_folded_total'];
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    const c = await readCounters(target, names);
    const recorded = c?.hop_clicks_recorded_total ?? 0;
    const folded = folds ? (c?.hop_clicks_folded_total ?? 0) : recorded;
    if (c !== null && (c.hop_clicks_written_total ?? 0) >= recorded && folded >= recorded) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  return Date.now() - started;
}

/** One server's connection-pool figures: the acquire-wait histogram and refusals by reason. */
export interface PoolCounts {
  /** Cumulative counts per upper bound in seconds, ascending; the last bound is Infinity (+Inf). */
  buckets: { le: number; count: number }[];
  /** Total seconds waited, and acquisitions counted (hop_db_pool_acquire_seconds_sum / _count). */
  sum: number;
  count: number;
  /** hop_db_pool_refused_total by reason (queue_full, timeout, down). */
  refused: Record<string, number>;
}

function labelsOf(text: string): Map<string, string> {
  const labels = new Map<string, string>();
  for (const l of text.matchAll(/(\w+)="([^"]*)"/g)) labels.set(l[1]!, l[2]!);
  return labels;
}

function emptyPool(): PoolCounts {
  return { buckets: [], sum: 0, count: 0, refused: {} };
}

/**
 * Per-server pool figures out of a Prometheus text exposition (hop_db_pool_acquire_seconds and
 * hop_db_pool_refused_total); servers without a line are absent.
 */
export function parsePoolCounts(text: string): Map<string, PoolCounts> {
  const out = new Map<string, PoolCounts>();
  const at = (server: string) => {
    let p = out.get(server);
    if (p === undefined) {
      p = emptyPool();
      out.set(server, p);
    }
    return p;
  };
  for (const line of text.split('\n')) {
    if (!line.startsWith('hop_db_pool_')) continue;
    const m = /^(hop_db_pool_\w+)\{([^}]*)\}\s+(\S+)/.exec(line);
    if (m === null) continue;
    const [, name, labelText, raw] = m;
    const labels = labelsOf(labelText!);
    const server = labels.get('server');
    const value = Number(raw);
    if (server === undefined || !Number.isFinite(value)) continue;
    if (name === 'hop_db_pool_acquire_seconds_bucket') {
      const le = labels.get('le');
      if (le === undefined) continue;
      at(server).buckets.push({ le: le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le), count: value });
    } else if (name === 'hop_db_pool_acquire_seconds_sum') at(server).sum = value;
    else if (name === 'hop_db_pool_acquire_seconds_count') at(server).count = value;
    else if (name === 'hop_db_pool_refused_total') {
      const reason = labels.get('reason') ?? 'unknown';
      const p = at(server);
      p.refused[reason] = (p.refused[reason] ?? 0) + value;
    }
  }
  for (const p of out.values()) p.buckets.sort((a, b) => a.le - b.le);
  return out;
}

/**
 * What happened between two readings: counters and buckets subtracted. A server missing from
 * `before` counts from zero (its first query came after the first reading).
 */
export function poolCountsDelta(
  before: ReadonlyMap<string, PoolCounts>,
  after: ReadonlyMap<string, PoolCounts>,
): Map<string, PoolCounts> {
  const out = new Map<string, PoolCounts>();
  for (const [server, a] of after) {
    const b = before.get(server) ?? emptyPool();
    const earlier = new Map(b.buckets.map((x) => [x.le, x.count]));
    const refused: Record<string, number> = {};
    for (const [reason, n] of Object.entries(a.refused)) refused[reason] = n - (b.refused[reason] ?? 0);
    out.set(server, {
      buckets: a.buckets.map((x) => ({ le: x.le, count: x.count - (earlier.get(x.le) ?? 0) })),
      sum: a.sum - b.sum,
      count: a.count - b.count,
      refused,
    });
  }
  return out;
}

/** A quantile estimated from a cumulative histogram. */
export interface BucketQuantile {
  /** Seconds; for `overflow`, the highest finite bound (the true value is above it). */
  seconds: number;
  /** The rank fell in the +Inf bucket. */
  overflow: boolean;
}

/**
 * The q-quantile of a cumulative histogram the way Prometheus' histogram_quantile estimates it:
 * the bucket holding rank q × count, interpolated linearly between its bounds (the first bucket
 * from 0). Null when the histogram counted nothing. Only as fine as the buckets are.
 */
export function bucketQuantile(
  buckets: readonly { le: number; count: number }[],
  q: number,
): BucketQuantile | null {
  if (buckets.length === 0) return null;
  const total = buckets.at(-1)!.count;
  if (!(total > 0)) return null;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const b of buckets) {
    if (b.count >= rank && b.count > below) {
      if (b.le === Number.POSITIVE_INFINITY) return { seconds: lower, overflow: true };
      return { seconds: lower + ((b.le - lower) * (rank - below)) / (b.count - below), overflow: false };
    }
    if (b.le !== Number.POSITIVE_INFINITY) lower = b.le;
    below = b.count;
  }
  return { seconds: lower, overflow: true };
}

/** Pool figures of every server now, or null when /metrics does not answer. */
export async function readPoolCounts(target: Target): Promise<Map<string, PoolCounts> | null> {
  try {
    const res = await requestOnce(target, { method: 'GET', path: '/metrics' });
    if (res.status !== 200 || res.body === null) return null;
    return parsePoolCounts(res.body.toString('utf8'));
  } catch {
    return null;
  }
}

/** Where a Hop's memory is, in bytes, as its /metrics tells (null: a part it does not report). */
export interface MemoryParts {
  /** The main thread's V8 heap (reserved) and the memory outside it V8 knows of (buffers). */
  mainHeap: number | null;
  mainExternal: number | null;
  /** The embedded database: its WASM memory and its thread's V8 heap (reserved). */
  dbWasm: number | null;
  dbHeap: number | null;
}

/** Reads the memory gauges Hop exports, or null when /metrics does not answer. */
export async function readMemoryParts(target: Target): Promise<MemoryParts | null> {
  try {
    const res = await requestOnce(target, { method: 'GET', path: '/metrics' });
    if (res.status !== 200 || res.body === null) return null;
    const text = res.body.toString('utf8');
    const gauge = (name: string, labels = '') => {
      const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
      return line === undefined ? null : Number(line.slice(line.lastIndexOf(' ') + 1));
    };
    return {
      mainHeap: gauge('hop_process_nodejs_heap_size_total_bytes'),
      mainExternal: gauge('hop_process_nodejs_external_memory_bytes'),
      dbWasm: gauge('hop_embedded_db_memory_bytes', '{part="wasm"}'),
      dbHeap: gauge('hop_embedded_db_memory_bytes', '{part="heap_total"}'),
    };
  } catch {
    return null;
  }
}
