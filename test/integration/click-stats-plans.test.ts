// Stats for a link with ten million clicks answer from rollups: the rollup tables are seeded
// directly (as years of traffic would leave them) and the plans of the stats queries are checked
// to read rollup indexes, never raw events. Behaviour tests alone would pass a full scan.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { seedClickHistory } from '../../bench/lib/click-seed.ts';
import { ALL_LINKS, DAY_MS, floorTo } from '../../src/domain/clicks.ts';
import { openPglite } from '../../src/storage/embedded/pglite-client.ts';
import type { StatsQuery } from '../../src/storage/ports.ts';
import { clickStatsSql } from '../../src/storage/sql/click-sql.ts';
import type { SqlClient } from '../../src/storage/sql/sql-client.ts';
import { SqlStore } from '../../src/storage/sql/sql-store.ts';
import { clickBatch, clickEvent } from '../support/fixtures.ts';

let db: SqlClient;
let store: SqlStore;
const START = Date.UTC(2029, 0, 1);
const HOURS = 1440; // 60 days
const PER_HOUR = 6945; // 1440 × 6945 ≈ 10 million clicks

before(async () => {
  db = await openPglite(null);
  store = new SqlStore(db, { kind: 'embedded', codeLength: 7 });
  await store.migrate();
  await seedClickHistory(db, {
    code: 'big',
    start: START,
    hours: HOURS,
    perHour: PER_HOUR,
    otherLinks: 20_000,
  });
});
after(async () => {
  await store.close();
});

async function plan(sql: string, params: unknown[]): Promise<string> {
  const res = await db.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`, params);
  return res.rows.map((r) => r['QUERY PLAN']).join('\n');
}

const query = (over: Partial<StatsQuery> = {}): StatsQuery => ({
  code: 'big',
  from: START + 30 * DAY_MS + 5 * 3_600_000,
  to: START + 37 * DAY_MS,
  interval: 'hour',
  includeBots: false,
  top: 10,
  ...over,
});

async function assertRollupPlans(q: StatsQuery, through: number, table: RegExp): Promise<void> {
  const statements = clickStatsSql(q, through);
  for (const [name, s] of Object.entries(statements)) {
    if (name === 'topLinks' && q.code !== ALL_LINKS) continue;
    const p = await plan(s.sql, s.params);
    assert.doesNotMatch(p, /click_events/, `${name} reads raw events:\n${p}`);
    // One link's stats must find its rows by index. Top links over a window as long as the whole
    // history read every daily row of it, so a scan of the daily table is the right plan there.
    if (q.code !== ALL_LINKS || name !== 'topLinks')
      assert.doesNotMatch(p, /Seq Scan on click_packs/, `${name} scans a whole table:\n${p}`);
    if (name !== 'visitors') assert.match(p, table, `${name}:\n${p}`);
  }
}

test('the hourly stats of a 10-million-click link read the rollup index, not raw events', async () => {
  await assertRollupPlans(query(), 0, /click_packs_code_hour_idx|click_packs_hour_brin/);
  const started = performance.now();
  const s = await store.clickStats(query());
  const ms = performance.now() - started;
  const clicks = s.series.reduce((n, p) => n + p.clicks, 0);
  assert.equal(clicks, (7 * 24 - 5) * PER_HOUR);
  assert.equal(s.breakdowns.country.length, 10);
  assert.equal(
    s.breakdowns.referrer.reduce((n, b) => n + b.clicks, 0),
    (7 * 24 - 5) * 10 * Math.floor(PER_HOUR / 20) + (7 * 24 - 5) * Math.min(10, PER_HOUR % 20),
  );
  process.stdout.write(`# 7-day hourly stats of a 10M-click link: ${ms.toFixed(1)} ms\n`);
});

test('after the daily compaction, long windows read whole days from the daily rollups', async () => {
  await store.maintainClicks(START + HOURS * 3_600_000 + DAY_MS, 30);
  const through = START + HOURS * 3_600_000;
  const q = query({ from: START, to: START + 60 * DAY_MS, interval: 'day' });
  await assertRollupPlans(q, through, /click_packs_daily_code_day_idx/);
  const s = await store.clickStats(q);
  assert.equal(
    s.series.reduce((n, p) => n + p.clicks, 0),
    HOURS * PER_HOUR,
  );
  assert.equal(s.series.length, 60);
  await assertRollupPlans({ ...q, code: ALL_LINKS }, through, /click_packs_daily/);
});

test("the upkeep job merges a link's packs of one hour into one, and no answer changes", async () => {
  const at = Date.now();
  for (let i = 0; i < 3; i++) {
    await store.recordClickBatch(
      clickBatch([
        clickEvent({ code: 'merged', at, referrerHost: `r${i}.example` }),
        clickEvent({ code: 'merged', at, country: 'NL' }),
      ]),
    );
  }
  const packs = async () =>
    (await db.query<{ n: number }>("SELECT count(*)::int AS n FROM click_packs WHERE code = 'merged'"))
      .rows[0]?.n;
  assert.equal(await packs(), 3);
  const q = query({ code: 'merged', from: floorTo(at, DAY_MS), to: floorTo(at, DAY_MS) + DAY_MS });
  const unmerged = await store.clickStats(q);
  await store.maintainClicks(at, 30);
  assert.equal(await packs(), 1);
  assert.deepEqual(await store.clickStats(q), unmerged);
  assert.equal(
    unmerged.series.reduce((n, p) => n + p.clicks, 0),
    6,
  );
  assert.ok(unmerged.visitorRegisters.length >= 4, 'six visitors fill (almost surely) six registers');
});
