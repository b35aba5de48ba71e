import { mkdtempSync } from 'node:fs';
import { ClickEnricher } from '../src/analytics/click-enricher.ts';
import { type ClickEvent } from '../src/domain/clicks.ts';
import { batchesOf } from '../src/events/buffered-click-sink.ts';
import { browserRedirects } from '../bench/scenarios/clicks.ts';
import { openEmbeddedStore } from '../src/storage/embedded/open-embedded-store.ts';
import { randomCodes } from '../bench/lib/links.ts';
const codes = randomCodes(100000);
const f = browserRedirects(codes, 'zipf');
const salts = { saltFor: () => 'salt' } as any;
const en = new ClickEnricher({ trustProxy: '127.0.0.1', countryHeader: null }, salts);
const mk = (n: number, at: number) => Array.from({ length: n }, () => { const r = f() as any; return en.eventFor(r.path.slice(1), { headers: r.headers, socket: { remoteAddress: '127.0.0.1' } } as any, at); });
const dir = process.env.DIR ?? mkdtempSync('/tmp/bp-');
const store = await openEmbeddedStore({ dataDir: dir, codeLength: 7 });
const win = Number(process.argv[2] ?? 1);
let at = Date.now();
for (let round = 0; round < 8; round++) {
  const evs: ClickEvent[] = mk(13000 * win, at);
  at += 1000 * win;
  const bs = batchesOf(evs);
  let rows = 0, vis = 0;
  for (const b of bs) { rows += b.rollups.length; vis += b.visitors.length; }
  const t0 = performance.now();
  for (const b of bs) await store.recordClickBatch(b);
  const ms = performance.now() - t0;
  console.log(`round ${round}: ${evs.length} clicks, ${bs.length} batches, rollup rows ${rows}, visitor rows ${vis}: ${ms.toFixed(0)} ms, ${(ms * 1000 / (rows + vis)).toFixed(1)} µs/row, ${(ms * 1000 / evs.length).toFixed(1)} µs/click`);
}
await store.close();
