import { ClickEnricher } from '../src/analytics/click-enricher.ts';
import { ClickSums, encodeRawClicks, type ClickEvent } from '../src/domain/clicks.ts';
import { browserRedirects } from '../bench/scenarios/clicks.ts';
const codes = Array.from({ length: 100000 }, (_, i) => `c${i.toString(36)}`);
const f = browserRedirects(codes, 'zipf');
// fresh header strings per request, as the HTTP parser makes them
const reqs = Array.from({ length: 200000 }, () => {
  const r = f() as any;
  return { path: r.path, h: r.headers };
});
const mk = (r: any) => ({ headers: Object.fromEntries(Object.entries(r.h).map(([k, v]) => [k, (' ' + v).slice(1)])), socket: { remoteAddress: '127.0.0.1' } }) as any;
const salts = { saltFor: () => 'salt' } as any;
const en = new ClickEnricher({ trustProxy: '127.0.0.1', countryHeader: null }, salts);
const fresh = reqs.map(mk);
for (let i = 0; i < reqs.length; i++) en.eventFor(reqs[i]!.path.slice(1), fresh[i], 1_764_000_000_000);
const fresh2 = reqs.map(mk);
let t0 = performance.now();
const evs: ClickEvent[] = [];
for (let i = 0; i < reqs.length; i++) evs.push(en.eventFor(reqs[i]!.path.slice(1), fresh2[i], 1_764_000_000_000));
let t1 = performance.now();
console.log('enrich warm µs/click', ((t1 - t0) * 1000 / reqs.length).toFixed(3));
for (let k = 0; k < 3; k++) {
  const s = new ClickSums(false);
  t0 = performance.now();
  for (let i = 0; i < 13000 * 5; i++) s.add(evs[i]!);
  t1 = performance.now();
  console.log('sums.add µs/click (65k)', ((t1 - t0) * 1000 / 65000).toFixed(3));
}
t0 = performance.now();
for (let i = 0; i < evs.length; i += 2000) encodeRawClicks(evs.slice(i, i + 2000));
t1 = performance.now();
console.log('encode µs/click', ((t1 - t0) * 1000 / evs.length).toFixed(3));
