import { readFileSync } from 'node:fs';
const p = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const self = new Map();
const dt = p.timeDeltas; let total = 0;
const counts = new Map();
const from = Number(process.argv[3] ?? -1), to = Number(process.argv[4] ?? 1e9); let tt = p.startTime; const sec0 = Math.floor(p.startTime / 1e6);
for (let i = 0; i < p.samples.length; i++) { const d = dt[i] ?? 0; tt += d; const sec = Math.floor(tt / 1e6) - sec0; if (sec < from || sec > to) continue; counts.set(p.samples[i], (counts.get(p.samples[i]) ?? 0) + d); total += d; }
const parent = new Map(); for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const incl = new Map();
for (const [id, t] of counts) {
  const n = byId.get(id); const k = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').slice(-2).join('/')}:${n.callFrame.lineNumber}`;
  self.set(k, (self.get(k) ?? 0) + t);
  const seen = new Set(); let cur = id;
  while (cur !== undefined) { const m = byId.get(cur); const kk = `${m.callFrame.functionName || '(anon)'} ${m.callFrame.url.split('/').slice(-2).join('/')}:${m.callFrame.lineNumber}`; if (!seen.has(kk)) { incl.set(kk, (incl.get(kk) ?? 0) + t); seen.add(kk); } cur = parent.get(cur); }
}
const top = (m, n) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => `${(100 * v / total).toFixed(1).padStart(5)}% ${k}`).join('\n');
console.log('total s', (total / 1e6).toFixed(1));
console.log('--- self'); console.log(top(self, 25));
console.log('--- inclusive'); console.log(top(incl, 45));
