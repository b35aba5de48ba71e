import { mkdtempSync } from 'node:fs';
import { ClickEnricher } from '../src/analytics/click-enricher.ts';
import { ClickSums } from '../src/domain/clicks.ts';
import { uuid7 } from '../src/events/uuid7.ts';
import { browserRedirects } from '../bench/scenarios/clicks.ts';
import { openEmbeddedStore } from '../src/storage/embedded/open-embedded-store.ts';
import { randomCodes } from '../bench/lib/links.ts';
const codes = randomCodes(100000);
const f = browserRedirects(codes, 'zipf');
const salts = { saltFor: () => 'salt' } as any;
const en = new ClickEnricher({ trustProxy: '127.0.0.1', countryHeader: null }, salts);
const mk = (n: number, at: number) => Array.from({ length: n }, () => { const r = f() as any; return en.eventFor(r.path.slice(1), { headers: r.headers, socket: { remoteAddress: '127.0.0.1' } } as any, at); });
const store = await openEmbeddedStore({ dataDir: mkdtempSync('/tmp/bp-'), codeLength: 7 });
const mode = process.argv[2] ?? 'all';
const maxRows = Number(process.argv[3] ?? 500);
let at = Date.now();
for (let round = 0; round < 6; round++) {
  const evs = mk(13000, at); at += 1000;
  const s = new ClickSums(); for (const e of evs) s.add(e);
  const bs = [];
  for (let c = s.take(maxRows, 2000); c !== null; c = s.take(maxRows, 2000)) {
    bs.push({ id: uuid7(), rollups: mode === 'visitors' || mode === 'none' ? [] : c.rollups, visitors: mode === 'rollups' || mode === 'none' ? [] : c.visitors, events: mode === 'noraw' ? [] : c.events });
  }
  const t0 = performance.now();
  for (const b of bs) await store.recordClickBatch(b as any);
  const ms = performance.now() - t0;
  console.log(`${mode} maxRows ${maxRows}: ${bs.length} batches ${ms.toFixed(0)} ms = ${(ms * 1000 / 13000).toFixed(1)} µs/click`);
}
await store.close();
