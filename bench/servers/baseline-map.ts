// Baseline for the cached redirect path: bare node:http answering from an in-memory Map. Whatever Hop
// spends above this is framework, routing, validation and cache bookkeeping.
import { codeOf, readSeed, sendHealthy, sendNotFound, sendRedirect, serve, serverArgs } from './shared.ts';

const { links, port } = serverArgs();
const map = new Map<string, string>();
await readSeed(links, 10_000, (batch) => {
  for (const l of batch) map.set(l.code, l.url);
});

serve((req, res) => {
  const code = codeOf(req);
  if (code === 'healthz') return sendHealthy(res);
  const url = code === null ? undefined : map.get(code);
  if (url === undefined) sendNotFound(res);
  else sendRedirect(res, url);
}, port);
