// Test data for the bench: random short codes, the JSONL seed file both Hop and the baselines load,
// and the key-popularity distributions (uniform, Zipf) the redirect scenarios draw from.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Small seeded PRNG (mulberry32): runs are repeatable, and it is far cheaper than crypto per draw. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` distinct base62 codes of `length` characters. */
export function randomCodes(n: number, length = 7, seed = 1): string[] {
  const rand = seededRandom(seed);
  const seen = new Set<string>();
  const out: string[] = [];
  while (out.length < n) {
    let c = '';
    for (let i = 0; i < length; i++) c += BASE62[Math.floor(rand() * 62)];
    if (seen.has(c)) continue;
    seen.add(c);
    out.push(c);
  }
  return out;
}

/** An API key in Hop's format: 'hop_' and 40 base62 characters from the OS CSPRNG. */
export function randomApiKey(): string {
  let s = 'hop_';
  while (s.length < 44) {
    for (const b of randomBytes(64)) if (b < 248 && s.length < 44) s += BASE62[b % 62];
  }
  return s;
}

export function linkUrl(n: number): string {
  return `https://example.com/${n}`;
}

/** Writes one `{"code","url"}` object per line, streaming so that millions of links stay cheap. */
export async function writeLinksJsonl(file: string, codes: readonly string[]): Promise<void> {
  const out = createWriteStream(file);
  const batch = 2000;
  for (let i = 0; i < codes.length; i += batch) {
    let s = '';
    const end = Math.min(codes.length, i + batch);
    for (let j = i; j < end; j++) s += `${JSON.stringify({ code: codes[j], url: linkUrl(j) })}\n`;
    if (!out.write(s)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

export type Distribution = 'uniform' | 'zipf';

/**
 * Returns a sampler of indices in [0, n). Zipf with exponent s gives rank k weight 1/k^s, so a few
 * links take most of the traffic, as on a real shortener; sampled by binary search over the CDF.
 */
export function indexSampler(n: number, dist: Distribution, seed = 7, s = 1.0): () => number {
  const rand = seededRandom(seed);
  if (dist === 'uniform') return () => Math.floor(rand() * n);
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let k = 0; k < n; k++) {
    sum += 1 / (k + 1) ** s;
    cdf[k] = sum;
  }
  return () => {
    const u = rand() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}
