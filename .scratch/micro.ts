import { ClickEnricher } from '../src/analytics/click-enricher.ts';
import { ClickSums, encodeRawClicks, type ClickEvent } from '../src/domain/clicks.ts';
import { browserRedirects } from '../bench/scenarios/clicks.ts';
const N = Number(process.argv[2] ?? 100000);
const codes = Array.from({ length: N }, (_, i) => `c${i.toString(36)}`);
const f = browserRedirects(codes, 'zipf');
const reqs = Array.from({ length: 200000 }, () => {
  const r = f() as any;
  return { path: r.path, req: { headers: { ...r.headers }, socket: { remoteAddress: '127.0.0.1' } } as any };
});
const salts = { saltFor: () => 'salt' } as any;
const en = new ClickEnricher({ trustProxy: '127.0.0.1', countryHeader: null }, salts);
const evs: ClickEvent[] = [];
let t0 = performance.now();
for (const r of reqs) evs.push(en.eventFor(r.path.slice(1), r.req, 1_764_000_000_000));
let t1 = performance.now();
console.log('enrich first pass µs/click', ((t1 - t0) * 1000 / reqs.length).toFixed(2));
t0 = performance.now();
for (let k = 0; k < 3; k++) for (const r of reqs) en.eventFor(r.path.slice(1), r.req, 1_764_000_000_000);
t1 = performance.now();
console.log('enrich warm µs/click', ((t1 - t0) * 1000 / reqs.length / 3).toFixed(2));
const s = new ClickSums();
t0 = performance.now();
for (const e of evs) s.add(e);
t1 = performance.now();
console.log('sums.add µs/click', ((t1 - t0) * 1000 / evs.length).toFixed(2));
t0 = performance.now();
let bytes = 0;
for (let i = 0; i < evs.length; i += 2000) bytes += encodeRawClicks(evs.slice(i, i + 2000)).length;
t1 = performance.now();
console.log('encode µs/click', ((t1 - t0) * 1000 / evs.length).toFixed(2), 'bytes/click', (bytes / evs.length).toFixed(0));
// distinct rows over windows at 13k clicks/s
for (const win of [1, 10, 60, 300, 600]) {
  const n = Math.min(win * 13000, 4_000_000);
  const sums = new ClickSums();
  for (let i = 0; i < n; i++) { const r = reqs[i % reqs.length]!; sums.add({ ...evs[i % evs.length]!, code: f().path.slice(1) } as ClickEvent); }
  const c = sums.take(Infinity, 0)!;
  console.log(`window ${win}s: ${n} clicks -> rollup rows ${c.rollups.length}, visitor rows ${c.visitors.length}, rows/click ${((c.rollups.length + c.visitors.length) / n).toFixed(3)}, rows/s ${((c.rollups.length + c.visitors.length) / win).toFixed(0)}`);
}
