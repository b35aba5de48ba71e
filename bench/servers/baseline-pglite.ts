// Baseline for the uncached redirect path: bare node:http asking an in-process, in-memory PGlite for
// every code. Whatever Hop spends above this is its own, not the embedded database's.
import { PGlite } from '@electric-sql/pglite';
import { codeOf, readSeed, sendHealthy, sendNotFound, sendRedirect, serve, serverArgs } from './shared.ts';

const { links, port } = serverArgs();
const db = await PGlite.create();
await db.exec('CREATE TABLE links (code text PRIMARY KEY, url text NOT NULL)');
// One statement per few thousand rows: a row-at-a-time insert would take minutes for a million links.
await readSeed(links, 5000, async (batch) => {
  await db.query(
    'INSERT INTO links (code, url) SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(code text, url text)',
    [JSON.stringify(batch)],
  );
});
await db.exec('ANALYZE links');

serve((req, res) => {
  const code = codeOf(req);
  if (code === 'healthz') return sendHealthy(res);
  if (code === null) return sendNotFound(res);
  db.query<{ url: string }>('SELECT url FROM links WHERE code = $1', [code]).then(
    (r) => {
      const row = r.rows[0];
      if (row === undefined) sendNotFound(res);
      else sendRedirect(res, row.url);
    },
    (err: unknown) => {
      process.stderr.write(`lookup failed: ${String(err)}\n`);
      res.writeHead(500, { 'Content-Length': '0' }).end();
    },
  );
}, port);
