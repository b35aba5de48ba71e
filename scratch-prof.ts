import { spawn, execFileSync } from 'node:child_process';
import { rmSync, mkdirSync } from 'node:fs';
import { runClosedLoop } from './bench/lib/closed-loop.ts';
import { randomCodes, writeLinksJsonl, indexSampler } from './bench/lib/links.ts';
const dir = '/tmp/prof/data'; rmSync(dir, { recursive: true, force: true }); mkdirSync(dir, { recursive: true });
const codes = randomCodes(100000);
await writeLinksJsonl('/tmp/prof/links.jsonl', codes);
const env = { ...process.env, HOP_DATA_DIR: dir, PORT: '18555', HOP_LOG_LEVEL: 'warn', HOP_RATE_LIMITS: 'off', ...JSON.parse(process.argv[2] ?? '{}') };
execFileSync('node', ['bin/hop.js', 'import', '/tmp/prof/links.jsonl'], { env, stdio: 'inherit' });
const prof = process.argv[3] === 'prof';
const child = spawn('node', [...(prof ? ['--cpu-prof', '--cpu-prof-dir=/tmp/prof'] : []), 'bin/hop.js', 'serve'], { env, stdio: 'inherit' });
for (;;) { try { if ((await fetch('http://127.0.0.1:18555/healthz')).ok) break; } catch {} await new Promise(r => setTimeout(r, 200)); }
const pick = indexSampler(codes.length, 'zipf');
for (const round of [1, 2, 3]) {
  const r = await runClosedLoop({ target: { host: '127.0.0.1', port: 18555 }, label: 'hop', connections: 32, durationS: 5, maxRequests: 2_000_000, progress: true,
    request: () => ({ method: 'GET', path: '/' + codes[pick()], expect: { status: [302] } as never }) });
  console.log('round', round, JSON.stringify(r).slice(0, 300));
}
child.kill('SIGTERM');
await new Promise(r => child.once('exit', r));
