import { readFileSync } from 'node:fs';
const files = process.argv.slice(2);
const series = files.map((f) => {
  const p = JSON.parse(readFileSync(f, 'utf8'));
  const idle = new Set(p.nodes.filter((n) => ['(idle)'].includes(n.callFrame.functionName)).map((n) => n.id));
  const buckets = new Map(); let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) { t += p.timeDeltas[i]; const b = Math.floor(t / 1e6); const e = buckets.get(b) ?? [0, 0]; e[1] += p.timeDeltas[i]; if (!idle.has(p.samples[i])) e[0] += p.timeDeltas[i]; buckets.set(b, e); }
  return buckets;
});
const keys = [...new Set(series.flatMap((s) => [...s.keys()]))].sort();
const t0 = keys[0];
for (const k of keys) { const row = series.map((s) => { const e = s.get(k); return e ? String(Math.round(100 * e[0] / Math.max(e[1], 1))).padStart(4) : '   -'; }); if (row.some((r) => Number(r) > 5)) console.log(String(k - t0).padStart(4), row.join(' ')); }
