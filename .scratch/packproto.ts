import { mkdtempSync } from 'node:fs';
import { ClickEnricher } from '../src/analytics/click-enricher.ts';
import { ClickSums } from '../src/domain/clicks.ts';
import { browserRedirects } from '../bench/scenarios/clicks.ts';
import { openEmbeddedStore } from '../src/storage/embedded/open-embedded-store.ts';
import { randomCodes } from '../bench/lib/links.ts';
const codes = randomCodes(100000);
const f = browserRedirects(codes, 'zipf');
const salts = { saltFor: () => 'salt' } as any;
const en = new ClickEnricher({ trustProxy: '127.0.0.1', countryHeader: null }, salts);
const mk = (n: number, at: number) => Array.from({ length: n }, () => { const r = f() as any; return en.eventFor(r.path.slice(1), { headers: r.headers, socket: { remoteAddress: '127.0.0.1' } } as any, at); });
const store = await openEmbeddedStore({ dataDir: mkdtempSync('/tmp/pp-'), codeLength: 7 });
const db = (store as any).db;
await db.exec(`CREATE TABLE click_packs (code text NOT NULL, hour timestamptz NOT NULL, bot boolean NOT NULL, clicks bigint NOT NULL, vals text[] NOT NULL, counts bigint[] NOT NULL, regs integer[] NOT NULL);
CREATE INDEX click_packs_code ON click_packs (code, hour); CREATE INDEX click_packs_hour ON click_packs (hour);`);
const W = Number(process.argv[2] ?? 10);
let at = Date.now();
for (let round = 0; round < 4; round++) {
  const evs = mk(36000 * W, at); at += 1000 * W;
  const s = new ClickSums(false); for (const e of evs) s.add(e);
  const [all] = s.partition(1);
  // group rows into packs
  const t0 = performance.now();
  const packs = new Map<string, { code: string; hour: number; bot: boolean; clicks: number; vals: string[]; counts: number[]; regs: number[] }>();
  for (const r of all!.rollups) {
    const k = `${r.code}\u0000${r.hour}\u0000${r.bot}`;
    let p = packs.get(k);
    if (!p) { p = { code: r.code, hour: r.hour, bot: r.bot, clicks: 0, vals: [], counts: [], regs: [] }; packs.set(k, p); }
    if (r.dim === 'country') p.clicks += r.clicks;
    p.vals.push(r.dim[0] + r.value); p.counts.push(r.clicks);
  }
  const byCode = new Map<string, any>();
  for (const p of packs.values()) byCode.set(`${p.code}\u0000${p.bot}`, p);
  for (const v of all!.visitors) byCode.get(`${v.code}\u0000${v.bot}`)?.regs.push(v.reg * 64 + v.rank);
  const t1 = performance.now();
  const list = [...packs.values()];
  let n = 0;
  for (let i = 0; i < list.length; i += 2000) {
    const chunk = list.slice(i, i + 2000);
    await db.query(`INSERT INTO click_packs SELECT code, to_timestamp(hour / 1000), bot, clicks, vals, counts, regs FROM jsonb_to_recordset($1::jsonb) AS x(code text, hour bigint, bot boolean, clicks bigint, vals text[], counts bigint[], regs integer[])`, [JSON.stringify(chunk)]);
    n++;
  }
  const t2 = performance.now();
  console.log(`W=${W}s ${evs.length} clicks: rows ${all!.rollups.length + all!.visitors.length} -> packs ${list.length} (${(list.length / evs.length).toFixed(3)}/click); write ${(t2 - t1).toFixed(0)} ms = ${((t2 - t1) * 1000 / evs.length).toFixed(2)} µs/click, ${((t2 - t1) * 1000 / list.length).toFixed(1)} µs/pack`);
}
await store.close();
