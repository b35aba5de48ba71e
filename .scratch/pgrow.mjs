import { PGlite } from '@electric-sql/pglite';
const db = new PGlite();
await db.exec(`CREATE TABLE plain (code text, dim text, hour timestamptz, value text, bot boolean, clicks bigint);
CREATE TABLE pk (code text, dim text, hour timestamptz, value text, bot boolean, clicks bigint, PRIMARY KEY (code, dim, hour, value, bot));
CREATE TABLE packed (code text, hour timestamptz, seq int, clicks bigint, vals text[], ns int[], regs int[], ranks int[]);
CREATE INDEX packed_code ON packed (code, hour);`);
const N = 20000;
function cols(offset) {
  const c = [], d = [], h = [], v = [], b = [], n = [];
  for (let i = 0; i < N; i++) { c.push('code' + ((i + offset) % 50000)); d.push(['referrer','country','agent'][i%3]); h.push(1764000000000); v.push('value' + (i % 7)); b.push(false); n.push(1); }
  return [c, d, h, v, b, n];
}
async function t(name, sql, params, reps = 5) {
  const t0 = performance.now();
  for (let r = 0; r < reps; r++) await db.query(sql, typeof params === 'function' ? params(r) : params);
  const ms = performance.now() - t0;
  console.log(name, (ms * 1000 / N / reps).toFixed(2), 'µs/row');
}
const U = `unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::boolean[], $6::bigint[]) AS u(c, d, h, v, b, n)`;
await t('plain insert', `INSERT INTO plain SELECT c, d, to_timestamp(h/1000), v, b, n FROM ${U}`, (r) => cols(r * N));
await t('pk insert fresh', `INSERT INTO pk SELECT c, d, to_timestamp(h/1000), v, b, n FROM ${U} ON CONFLICT (code, dim, hour, value, bot) DO UPDATE SET clicks = pk.clicks + excluded.clicks`, (r) => cols(r * N + 1000000));
await t('pk upsert conflict', `INSERT INTO pk SELECT c, d, to_timestamp(h/1000), v, b, n FROM ${U} ON CONFLICT (code, dim, hour, value, bot) DO UPDATE SET clicks = pk.clicks + excluded.clicks`, () => cols(1000000), 10);
// packed: one row per link with arrays
const M = 20000;
function packed(r) {
  const c = [], h = [], n = [], vals = [];
  for (let i = 0; i < M; i++) { c.push('code' + i); h.push(1764000000000); n.push(3); vals.push('{"r":{"google.com":1},"c":{"US":2,"DE":1},"a":{"Chrome\u001fWindows\u001fdesktop":3},"v":[[12,3],[400,1],[77,2]]}'); }
  return [c, h, n, vals];
}
{
  const t0 = performance.now();
  for (let r = 0; r < 5; r++) await db.query(`INSERT INTO packed (code, hour, seq, clicks, vals) SELECT c, to_timestamp(h/1000), ${r}, n, ARRAY[v] FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[]) AS u(c, h, n, v)`, packed(r));
  console.log('packed insert', ((performance.now() - t0) * 1000 / M / 5).toFixed(2), 'µs/row');
}
