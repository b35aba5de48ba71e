// Seeds the click rollup tables (packs) directly, as a long history of traffic leaves them once
// merged: one link with about ten million clicks spread over hours and breakdown values, thousands
// of small links, visitor registers, and raw events the stats must never read. Shared by the stats benchmark and
// the query-plan test, so both measure the same data.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { SqlClient } from '../../src/storage/sql/sql-client.ts';
import { spawnChild } from './child.ts';

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
  const child = spawnChild(
    'click-seed',
    process.execPath,
    ['--import', 'tsx', SELF, dataDir, JSON.stringify(h)],
    {
      echoStderr: verbose,
    },
  );
  const timer = setTimeout(() => void child.stop(2000), 600_000);
  const code = await child.exited;
  clearTimeout(timer);
  if (code !== '0') throw new Error(`click-seed failed (exit ${code}):\n${child.outputTail()}`);
}

async function main(dataDir: string, h: ClickHistory): Promise<void> {
  // Loaded here, not at the top: the generator imports this module for seedHopClickHistory alone.
  const { openPglite } = await import('../../src/storage/embedded/pglite-client.ts');
  const { SqlStore } = await import('../../src/storage/sql/sql-store.ts');
  const { fields } = await import('../../test/support/fixtures.ts');
  const db = await openPglite(dataDir);
  const store = new SqlStore(db, { kind: 'embedded', codeLength: 7 });
  try {
    await store.migrate();
    await store.createLink({
      alias: h.code,
      domain: '',
      fields: fields(),
      createdAt: new Date(),
      idempotency: null,
    });
    await seedClickHistory(db, h);
    await store.maintainClicks(Date.now(), 30);
  } finally {
    await store.close();
  }
}

const SELF = fileURLToPath(import.meta.url);
if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === SELF) {
  main(process.argv[2] ?? '', JSON.parse(process.argv[3] ?? '{}') as ClickHistory).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  });
}
