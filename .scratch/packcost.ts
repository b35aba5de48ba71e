import { mkdtempSync } from 'node:fs';
import { ClickEnricher } from '../src/analytics/click-enricher.ts';
import { ClickSums, packRollups } from '../src/domain/clicks.ts';
import { browserRedirects } from '../bench/scenarios/clicks.ts';
import { openEmbeddedStore } from '../src/storage/embedded/open-embedded-store.ts';
import { randomCodes } from '../bench/lib/links.ts';
const codes = randomCodes(100000);
const f = browserRedirects(codes, 'zipf');
const en = new ClickEnricher({ trustProxy: '127.0.0.1', countryHeader: null }, { saltFor: () => 'salt' } as any);
const mk = (n: number, at: number) => Array.from({ length: n }, () => { const r = f() as any; return en.eventFor(r.path.slice(1), { headers: r.headers, socket: { remoteAddress: '127.0.0.1' } } as any, at); });
const store = await openEmbeddedStore({ dataDir: mkdtempSync('/tmp/pc-'), codeLength: 7 });
const db = (store as any).db;
const evs = mk(130000, Date.now());
const s = new ClickSums(false); for (const e of evs) s.add(e);
const parts = s.partition(52).map((p) => JSON.stringify(packRollups(p.rollups, p.visitors)));
const bytes = parts.reduce((n, p) => n + p.length, 0);
console.log('json bytes/click', (bytes / 130000).toFixed(1));
const REC = `jsonb_to_recordset($1::jsonb) AS x(code text, hour bigint, bot boolean, clicks bigint, vals text[], counts bigint[], regs integer[])`;
for (const [name, sql] of [
  ['noop ($1 text)', `SELECT length($1::text)`],
  ['parse only', `SELECT count(*) FROM ${REC}`],
  ['insert', `INSERT INTO click_packs (code, hour, bot, clicks, vals, counts, regs) SELECT code, to_timestamp(hour / 1000), bot, clicks, vals, counts, regs FROM ${REC}`],
]) {
  const t0 = performance.now();
  for (const p of parts) await db.query(sql, [p]);
  console.log(name, (((performance.now() - t0) * 1000) / 130000).toFixed(2), 'µs/click');
}
await store.close();
