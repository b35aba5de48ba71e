// Baseline for the L2-only redirect path: bare node:http asking Redis for every code, with the same
// client library and settings as Hop (ioredis, one connection, auto-pipelining) and values of the same
// shape as Hop's L2 entries, parsed on every request. Whatever Hop spends above this is its own.
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { codeOf, readSeed, sendHealthy, sendNotFound, sendRedirect, serve } from './shared.ts';

/** Its own prefix: Hop's entries (`hop:link:`) may live in the same Redis. */
const BASELINE_KEY_PREFIX = 'baseline:link:';

interface Entry {
  r: { u: string } | null;
}

const { values } = parseArgs({
  options: {
    links: { type: 'string' },
    port: { type: 'string', default: '0' },
    redis: { type: 'string' },
  },
});
if (values.links === undefined || values.redis === undefined) {
  throw new Error('usage: --links FILE.jsonl --redis redis://127.0.0.1:PORT [--port N]');
}

// Fails fast like Hop's client does (no offline queue, no retries): a dead Redis is a 500, not a hang.
const redis = new Redis(values.redis, {
  maxRetriesPerRequest: 0,
  enableOfflineQueue: false,
  lazyConnect: true,
  // As Hop's client does: commands of one tick leave in one write.
  enableAutoPipelining: true,
});
redis.on('error', () => {});
await redis.connect();

// Seeded with the record Hop would store (code, url, redirect type, flags, expiry, load time), so both
// read and parse values of the same size.
await readSeed(values.links, 2000, async (batch) => {
  const p = redis.pipeline();
  for (const l of batch) {
    const value = JSON.stringify({
      r: { c: l.code, u: l.url, t: 302, q: false, x: null, m: null, d: false, g: null },
      e: Date.now() + 86_400_000,
      l: 1,
    });
    p.set(BASELINE_KEY_PREFIX + l.code, value, 'PX', 86_400_000);
  }
  await p.exec();
});

serve((req, res) => {
  const code = codeOf(req);
  if (code === 'healthz') return sendHealthy(res);
  if (code === null) return sendNotFound(res);
  redis.get(BASELINE_KEY_PREFIX + code).then(
    (text) => {
      const url = text === null ? undefined : (JSON.parse(text) as Entry).r?.u;
      if (url === undefined) sendNotFound(res);
      else sendRedirect(res, url);
    },
    (err: unknown) => {
      process.stderr.write(`lookup failed: ${String(err)}\n`);
      res.writeHead(500, { 'Content-Length': '0' }).end();
    },
  );
}, Number(values.port));

process.once('exit', () => redis.disconnect());
