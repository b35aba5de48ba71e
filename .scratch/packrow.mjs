import { PGlite } from '@electric-sql/pglite';
const db = new PGlite();
await db.exec(`
CREATE FUNCTION hop_add(a jsonb, b jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT coalesce(jsonb_object_agg(k, n), '{}'::jsonb) FROM (
    SELECT k, sum(v::bigint) AS n FROM (SELECT * FROM jsonb_each_text(a) UNION ALL SELECT * FROM jsonb_each_text(b)) x(k, v) GROUP BY k) s $$;
CREATE TABLE ph (code text, hour timestamptz, bot boolean, clicks bigint, refs jsonb, ctry jsonb, agent jsonb, regs jsonb, PRIMARY KEY (code, hour, bot));
CREATE TABLE pi (code text, hour timestamptz, bot boolean, clicks bigint, refs jsonb, ctry jsonb, agent jsonb, regs jsonb);
CREATE INDEX pi_code ON pi (code, hour);
`);
const N = 6000;
function rows(off) {
  const c = [], n = [], r = [], k = [], a = [], g = [];
  for (let i = 0; i < N; i++) { c.push('code' + ((i + off) % 20000)); n.push(2); r.push('{"www.google.com":1,"":1}'); k.push('{"US":1,"DE":1}'); a.push('{"Chrome|Windows|desktop":2}'); g.push('{"17":3,"900":1}'); }
  return [c, n, r, k, a, g];
}
const U = `unnest($1::text[], $2::bigint[], $3::jsonb[], $4::jsonb[], $5::jsonb[], $6::jsonb[]) AS u(c, n, r, k, a, g)`;
for (let rep = 0; rep < 8; rep++) {
  const t0 = performance.now();
  await db.query(`INSERT INTO ph SELECT c, '2026-12-01T13:00Z', false, n, r, k, a, g FROM ${U}
    ON CONFLICT (code, hour, bot) DO UPDATE SET clicks = ph.clicks + excluded.clicks, refs = hop_add(ph.refs, excluded.refs), ctry = hop_add(ph.ctry, excluded.ctry), agent = hop_add(ph.agent, excluded.agent), regs = excluded.regs`, rows(rep * 3000));
  const t1 = performance.now();
  await db.query(`INSERT INTO pi SELECT c, '2026-12-01T13:00Z', false, n, r, k, a, g FROM ${U}`, rows(rep * 3000));
  const t2 = performance.now();
  console.log(`upsert-merge ${((t1 - t0) * 1000 / N).toFixed(1)} µs/row; append ${((t2 - t1) * 1000 / N).toFixed(1)} µs/row`);
}
