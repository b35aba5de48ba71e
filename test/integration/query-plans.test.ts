// The indexes must serve the queries that need them at scale: a plan check on a seeded table
// (a planner that falls back to a sequential scan would still pass every behaviour test).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { bucketOf } from '../../src/domain/bucket.ts';
import { generateCode } from '../../src/domain/codes.ts';
import type { Link } from '../../src/domain/link.ts';
import { openPglite } from '../../src/storage/embedded/pglite-client.ts';
import type { SqlClient } from '../../src/storage/sql/sql-client.ts';
import { listLinksSql, SqlStore } from '../../src/storage/sql/sql-store.ts';
import { visitHeadsSql } from '../../src/storage/sql/visit-sql.ts';
import { fields } from '../support/fixtures.ts';

let db: SqlClient;
let store: SqlStore;
const ROWS = 30_000;

before(async () => {
  db = await openPglite(null);
  store = new SqlStore(db, { kind: 'embedded', codeLength: 7 });
  await store.migrate();
  const t0 = Date.UTC(2029, 0, 1);
  for (let start = 0; start < ROWS; start += 3000) {
    const batch: Link[] = [];
    for (let i = start; i < start + 3000; i++) {
      const code = generateCode(7);
      batch.push({
        ...fields({
          url: `https://site-${i % 500}.example/articles/${i}`,
          tags: [`t${i % 50}`],
          title: `Title ${i}`,
        }),
        code,
        domain: '',
        bucket: bucketOf(code),
        usedClicks: 0,
        deletedAt: null,
        createdAt: new Date(t0 + i * 1000),
        updatedAt: new Date(t0 + i * 1000),
      });
    }
    await store.importLinks(batch);
  }
  await db.exec('ANALYZE links');
});
after(async () => {
  await store.close();
});

async function plan(sql: string, params: unknown[]): Promise<string> {
  const res = await db.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`, params);
  return res.rows.map((r) => r['QUERY PLAN']).join('\n');
}

test('search (q) is served by the trigram index, not a scan of every link', async () => {
  const { sql, params } = listLinksSql({
    limit: 20,
    cursor: null,
    tag: null,
    q: 'articles/12345',
    domain: null,
  });
  const p = await plan(sql, params);
  assert.match(p, /links_search_idx/, p);
});

test('a plain page is read newest first from the keyset index', async () => {
  const { sql, params } = listLinksSql({
    limit: 20,
    cursor: { createdAt: new Date(Date.UTC(2029, 0, 1) + 20_000_000), code: 'zzz', domain: '' },
    tag: null,
    q: null,
    domain: null,
  });
  const p = await plan(sql, params);
  assert.match(p, /links_created_idx/, p);
  assert.doesNotMatch(p, /Seq Scan on links/, p);
});

test('a redirect lookup is one primary-key probe', async () => {
  const p = await plan(
    'SELECT code, url, redirect_type, forward_query, expires_at, max_clicks, disabled, deleted_at FROM links WHERE code = $1',
    ['abcdefg'],
  );
  assert.match(p, /Index Scan using links_pkey/, p);
});

test("a page of one link's visits reads that link's rows from its index, not other links'", async () => {
  // 20,000 rows of 200 links, and a hot link's 500 rows among them.
  await db.query(
    `INSERT INTO click_visits (code, first_at, last_at, visits, bots, data)
     SELECT CASE WHEN i % 41 = 0 THEN 'hot' ELSE 'l' || (i % 200) END,
       to_timestamp(1900000000 + i * 60), to_timestamp(1900000000 + i * 60 + 59), 2000, 10, ''
     FROM generate_series(1, 20000) AS i`,
  );
  await db.exec('ANALYZE click_visits');
  const q = {
    keys: ['hot'],
    from: 0,
    to: Number.MAX_SAFE_INTEGER,
    includeBots: true,
    offset: 0,
    limit: 5000,
  };
  const first = visitHeadsSql(q);
  const p1 = await plan(first.sql, first.params);
  // The link's own rows and its bucket's tail rows, each found by the (code, last_at) index.
  assert.match(p1, /click_visits_code_last_idx/, p1);
  assert.doesNotMatch(p1, /Seq Scan|click_visits_last_idx/, p1);
  const next = visitHeadsSql(q, { last: 1_900_600_000_000, ctid: '(3,7)' }, 4096);
  const p2 = await plan(next.sql, next.params);
  assert.match(p2, /click_visits_code_last_idx/, p2);
  assert.doesNotMatch(p2, /Seq Scan|click_visits_last_idx/, p2);
});
