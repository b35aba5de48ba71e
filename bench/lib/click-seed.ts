// Seeds the click rollup tables (packs) directly, as a long history of traffic leaves them once
// merged: one link with about ten million clicks spread over hours and breakdown values, thousands
// of small links, visitor registers, and raw events the stats must never read. Shared by the stats benchmark and
// the query-plan test, so both measure the same data.
import { fileURLToPath } from 'node:url';
import type { SqlClient } from '../../src/storage/sql/sql-client.ts';
import { runAsSeedChild, runSeedChild } from './seed-child.ts';

export interface ClickHistory {
  code: string;
  /** Epoch ms of the first hour. */
  start: number;
  hours: number;
  perHour: number;
  otherLinks: number;
}

/** Distinct values per stored dimension; agent values combine browser, OS and device. */
export const BREAKDOWN_VALUES: [string, number][] = [
  ['referrer', 20],
  ['country', 30],
  ['agent', 24],
];

const valueSql = (dim: string) =>
  dim === 'agent'
    ? `'a' || 'browser-' || (v % 8) || chr(31) || 'os-' || (v % 6) || chr(31) || 'device-' || (v % 3)`
    : `'${dim[0]}' || '${dim}-' || v`;

export async function seedClickHistory(db: SqlClient, h: ClickHistory): Promise<void> {
  const t0 = `to_timestamp(${h.start / 1000})`;
  const hours = `generate_series(${t0}, ${t0} + interval '${h.hours - 1} hours', interval '1 hour') AS h`;
  // Each value's clicks per hour: perHour spread evenly over the dimension's values.
  const values = BREAKDOWN_VALUES.map(
    ([dim, n]) =>
      `SELECT ${valueSql(dim)} AS v, ${h.perHour} / ${n} + CASE WHEN v <= ${h.perHour} % ${n} THEN 1 ELSE 0 END AS n
       FROM generate_series(1, ${n}) AS v`,
  ).join(' UNION ALL ');
  for (const code of [h.code, '']) {
    await db.query(
      `INSERT INTO click_packs (code, hour, bot, clicks, vals, counts, regs)
       SELECT $1, h, false, ${h.perHour}, x.vals, x.counts, '{}'
       FROM ${hours}, (SELECT array_agg(v ORDER BY v) AS vals, array_agg(n ORDER BY v) AS counts FROM (${values}) u) x`,
      [code],
    );
  }
  await db.query(
    `INSERT INTO click_packs (code, hour, bot, clicks, vals, counts, regs)
     SELECT 'l' || i, ${t0} + (i % ${h.hours}) * interval '1 hour', false, 1, ARRAY['r', 'c', 'a'], ARRAY[1, 1, 1],
       ARRAY[(i % 1024) * 64 + 1]
     FROM generate_series(1, ${h.otherLinks}) AS i`,
  );
  // A day's visitor registers, in a pack of their own at the day's start (as a write of registers
  // without clicks would leave them).
  const days = Math.ceil(h.hours / 24);
  await db.query(
    `INSERT INTO click_packs (code, hour, bot, clicks, vals, counts, regs)
     SELECT c, ${t0} + d * interval '1 day', false, 0, '{}', '{}',
       (SELECT array_agg(r * 64 + 1 + (r * 7 + d) % 12 ORDER BY r) FROM generate_series(0, 1023) AS r)
     FROM unnest(ARRAY[$1, '']) AS c, generate_series(0, ${days - 1}) AS d`,
    [h.code],
  );
  await db.query(
    `INSERT INTO click_events (batch_id, first_at, last_at, events, data)
     SELECT md5(i::text)::uuid, ${t0} + i * interval '1 minute', ${t0} + i * interval '1 minute', 1, '[]'
     FROM generate_series(1, ${h.otherLinks}) AS i`,
  );
  await db.exec('ANALYZE');
}

/** Seeds a stopped Hop's data directory (in a child process, like store-admin). */
export async function seedHopClickHistory(dataDir: string, h: ClickHistory, verbose = false): Promise<void> {
  await runSeedChild('click-seed', fileURLToPath(import.meta.url), dataDir, h, {
    verbose,
    timeoutMs: 600_000,
  });
}

runAsSeedChild<ClickHistory>(import.meta.url, async (db, store, h) => {
  await seedClickHistory(db, h);
  await store.maintainClicks(Date.now(), 30);
});
