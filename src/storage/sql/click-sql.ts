// Click analytics in SQL that PGlite and PostgreSQL 15 both run: exactly-once batch writes,
// stats answered from hourly and daily rollups (never raw events), and the upkeep job.
import {
  ALL_LINKS,
  type BreakdownDim,
  type ClickEvent,
  COUNTED_BY,
  DAY_MS,
  decodeRawClicks,
  emptyBreakdowns,
  encodeRawClicks,
  floorTo,
} from '../../domain/clicks.ts';
import type {
  ClickBatch,
  ClickMaintenance,
  ClickStats,
  PendingClicks,
  StatsQuery,
  UnfoldedBatch,
} from '../ports.ts';
import type { SqlClient } from './sql-client.ts';

const ms = (d: Date | string | number): number => new Date(d).getTime();

/** Rows to one array per column, for unnest(): far cheaper to send and parse than JSON rows. */
function columns<T>(rows: readonly T[], pick: (r: T) => unknown[]): unknown[][] {
  const cols: unknown[][] = [];
  for (const r of rows) {
    const values = pick(r);
    for (let i = 0; i < values.length; i++) {
      const col = cols[i] ?? [];
      col.push(values[i]);
      cols[i] = col;
    }
  }
  return cols;
}

// One statement per batch: the ledger insert decides, and every other insert runs only when it
// inserted (data-modifying CTEs commit or fail together). One round trip instead of seven matters
// when the embedded database sits behind a worker-thread channel.
const RECORD_BATCH = `WITH ledger AS (
    INSERT INTO click_batches (batch_id) VALUES ($1) ON CONFLICT (batch_id) DO NOTHING RETURNING batch_id
  ), mark AS (
    -- Held FOR SHARE so that the compaction job cannot slip between this check and the insert.
    SELECT (extract(epoch FROM through) * 1000)::bigint AS through FROM click_compaction WHERE id = 1 FOR SHARE
  ), inc AS (
    SELECT * FROM unnest($2::text[], $3::text[], $4::bigint[], $5::text[], $6::boolean[], $7::bigint[]) AS u(c, d, h, v, b, n)
    WHERE EXISTS (SELECT 1 FROM ledger)
  ), hourly AS (
    INSERT INTO click_rollups (code, dim, hour, value, bot, clicks)
    SELECT c, d, to_timestamp(h / 1000), v, b, n FROM inc
    ON CONFLICT (code, dim, hour, value, bot) DO UPDATE SET clicks = click_rollups.clicks + excluded.clicks
  ), daily AS (
    -- Late clicks for hours already summed per day go into the daily rows too.
    INSERT INTO click_rollups_daily (code, dim, day, value, bot, clicks)
    SELECT c, d, to_timestamp((h - h % 86400000) / 1000), v, b, sum(n) FROM inc, mark WHERE h < mark.through
    GROUP BY c, d, h - h % 86400000, v, b
    ON CONFLICT (code, dim, day, value, bot) DO UPDATE SET clicks = click_rollups_daily.clicks + excluded.clicks
  ), totals AS (
    INSERT INTO click_totals (code, clicks)
    SELECT c, sum(n) FROM inc WHERE d = '${COUNTED_BY}' AND c <> '' GROUP BY c
    ON CONFLICT (code) DO UPDATE SET clicks = click_totals.clicks + excluded.clicks
  ), visitors AS (
    -- Registers merge by maximum, so applying one twice would be harmless even without the ledger.
    INSERT INTO click_visitors (code, day, bot, reg, rank)
    SELECT c, to_timestamp(d / 1000), b, r, k
    FROM unnest($8::text[], $9::bigint[], $10::boolean[], $11::smallint[], $12::smallint[]) AS u(c, d, b, r, k)
    WHERE EXISTS (SELECT 1 FROM ledger)
    -- Only a higher rank is written: most visits land on a register already that high, and skipping
    -- them spares a new row version (and the index entries) per visit.
    ON CONFLICT (code, day, bot, reg) DO UPDATE SET rank = excluded.rank WHERE excluded.rank > click_visitors.rank
  ), raw AS (
    INSERT INTO click_events (batch_id, first_at, last_at, events, data)
    SELECT $1, to_timestamp($13::bigint / 1000.0), to_timestamp($14::bigint / 1000.0), $15, $16
    WHERE $15 > 0 AND EXISTS (SELECT 1 FROM ledger)
  )
  SELECT count(*)::int AS applied FROM ledger, mark`;

export async function recordClickBatch(db: SqlClient, batch: ClickBatch): Promise<'applied' | 'duplicate'> {
  const { first, last } = timeSpan(batch.events);
  const hourly = columns(batch.rollups, (r) => [r.code, r.dim, r.hour, r.value, r.bot, r.clicks]);
  const visitors = columns(batch.visitors, (v) => [v.code, v.day, v.bot, v.reg, v.rank]);
  const res = await db.query<{ applied: number }>(RECORD_BATCH, [
    batch.id,
    ...[0, 1, 2, 3, 4, 5].map((i) => hourly[i] ?? []),
    ...[0, 1, 2, 3, 4].map((i) => visitors[i] ?? []),
    first,
    last,
    batch.events.length,
    batch.events.length > 0 ? encodeRawClicks(batch.events) : '',
  ]);
  return (res.rows[0]?.applied ?? 0) > 0 ? 'applied' : 'duplicate';
}

function timeSpan(events: readonly ClickEvent[]): { first: number; last: number } {
  let first = Number.POSITIVE_INFINITY;
  let last = 0;
  for (const e of events) {
    first = Math.min(first, e.at);
    last = Math.max(last, e.at);
  }
  return { first: events.length > 0 ? first : 0, last };
}

export async function writeRawClicks(
  db: SqlClient,
  id: string,
  events: readonly ClickEvent[],
): Promise<'applied' | 'duplicate'> {
  const { first, last } = timeSpan(events);
  const res = await db.query(
    `INSERT INTO click_events (batch_id, first_at, last_at, events, data, folded)
     VALUES ($1, to_timestamp($2::bigint / 1000.0), to_timestamp($3::bigint / 1000.0), $4, $5, false)
     ON CONFLICT (batch_id) DO NOTHING`,
    [id, first, last, events.length, encodeRawClicks(events)],
  );
  return res.affectedRows > 0 ? 'applied' : 'duplicate';
}

export async function beginFold(
  db: SqlClient,
  fold: { id: string; parts: number },
  batchIds: readonly string[],
): Promise<void> {
  await db.query(
    `UPDATE click_events SET fold_id = $1, fold_parts = $2
     WHERE batch_id = ANY($3::uuid[]) AND NOT folded AND fold_id IS NULL`,
    [fold.id, fold.parts, batchIds],
  );
}

export async function endFold(db: SqlClient, foldId: string): Promise<void> {
  await db.query('UPDATE click_events SET folded = true WHERE fold_id = $1 AND NOT folded', [foldId]);
}

export async function unfoldedClicks(db: SqlClient): Promise<UnfoldedBatch[]> {
  const res = await db.query<{
    batch_id: string;
    fold_id: string | null;
    fold_parts: number | null;
    data: string;
  }>('SELECT batch_id, fold_id, fold_parts, data FROM click_events WHERE NOT folded ORDER BY batch_id');
  return res.rows.map((r) => ({
    id: r.batch_id,
    fold: r.fold_id === null ? null : { id: r.fold_id, parts: r.fold_parts ?? 1 },
    events: r.data === '' ? [] : decodeRawClicks(r.data),
  }));
}

interface Span {
  readonly table: 'click_rollups' | 'click_rollups_daily';
  readonly from: number;
  readonly to: number;
}

/**
 * Which rows answer [from, to): whole days already compacted come from the daily table, the
 * hours around them from the hourly one. An hourly series reads hourly rows only.
 */
export function spansFor(q: StatsQuery, through: number): Span[] {
  const d1 = Math.ceil(q.from / DAY_MS) * DAY_MS;
  const d2 = Math.min(floorTo(q.to, DAY_MS), floorTo(through, DAY_MS));
  if (q.interval === 'hour' || d1 >= d2) return [{ table: 'click_rollups', from: q.from, to: q.to }];
  const spans: Span[] = [{ table: 'click_rollups_daily', from: d1, to: d2 }];
  if (q.from < d1) spans.push({ table: 'click_rollups', from: q.from, to: d1 });
  if (d2 < q.to) spans.push({ table: 'click_rollups', from: d2, to: q.to });
  return spans;
}

// A pending row counts unless the ledger has the batch it is being written in (see PendingClicks):
// checked inside the same statement, so the statement's snapshot decides, once.
const NOT_YET_WRITTEN =
  '(batch IS NULL OR NOT EXISTS (SELECT 1 FROM click_batches l WHERE l.batch_id = batch))';

/** Pending rollup rows as a row source named like the tables' columns; params from $at on. */
function pendingRollups(p: PendingClicks | undefined, at: number): { sql: string; params: unknown[] } | null {
  if (p === undefined || p.rollups.length === 0) return null;
  const cols = columns(p.rollups, (r) => [r.code, r.dim, r.hour, r.value, r.bot, r.clicks, r.batch]);
  return {
    sql: `(SELECT code, dim, to_timestamp(h / 1000.0) AS t, value, bot, clicks FROM unnest($${at}::text[],
        $${at + 1}::text[], $${at + 2}::bigint[], $${at + 3}::text[], $${at + 4}::boolean[], $${at + 5}::bigint[],
        $${at + 6}::uuid[]) AS p(code, dim, h, value, bot, clicks, batch) WHERE ${NOT_YET_WRITTEN})`,
    params: cols,
  };
}

/** The statements clickStats runs, exported so a test can EXPLAIN them. */
export function clickStatsSql(
  q: StatsQuery,
  through: number,
  pending?: PendingClicks,
): Record<string, { sql: string; params: unknown[] }> {
  const spans = spansFor(q, through);
  const source = (codeFilter: string, dims: string, bots: string, pending: string | null) =>
    spans
      .map((s) => {
        const t = s.table === 'click_rollups' ? 'hour' : 'day';
        return `SELECT code, dim, ${t} AS t, value, clicks FROM ${s.table}
          WHERE ${codeFilter} AND ${dims} AND ${t} >= to_timestamp(${s.from / 1000}) AND ${t} < to_timestamp(${s.to / 1000})
          AND (NOT bot OR ${bots})`;
      })
      .concat(
        pending === null
          ? []
          : [
              `SELECT code, dim, t, value, clicks FROM ${pending} p WHERE ${codeFilter} AND ${dims} AND (NOT bot OR ${bots})`,
            ],
      )
      .join(' UNION ALL ');
  const unit = q.interval === 'hour' ? 'hour' : 'day';
  const series = pendingRollups(pending, 3);
  const breakdowns = pendingRollups(pending, 4);
  const top = pendingRollups(pending, 3);
  const visitorRows = pending?.visitors ?? [];
  const visitors = columns(visitorRows, (v) => [v.reg, v.rank, v.bot, v.batch]);
  return {
    series: {
      sql: `SELECT (extract(epoch FROM date_trunc('${unit}', t AT TIME ZONE 'UTC')) * 1000)::bigint AS t,
          sum(clicks)::bigint AS clicks
        FROM (${source('code = $1', `dim = '${COUNTED_BY}'`, '$2', series?.sql ?? null)}) s GROUP BY 1 ORDER BY 1`,
      params: [q.code, q.includeBots, ...(series?.params ?? [])],
    },
    breakdowns: {
      // Stored agent values split back into browser, OS and device.
      sql: `SELECT dim, value, clicks FROM (
          SELECT x.dim, x.value, sum(s.clicks)::bigint AS clicks,
            row_number() OVER (PARTITION BY x.dim ORDER BY sum(s.clicks) DESC, x.value) AS rank
          FROM (${source('code = $1', "dim IN ('referrer', 'country', 'agent')", '$2', breakdowns?.sql ?? null)}) s
          CROSS JOIN LATERAL (
            SELECT s.dim AS dim, s.value AS value WHERE s.dim <> 'agent'
            UNION ALL SELECT 'browser', split_part(s.value, chr(31), 1) WHERE s.dim = 'agent'
            UNION ALL SELECT 'os', split_part(s.value, chr(31), 2) WHERE s.dim = 'agent'
            UNION ALL SELECT 'device', split_part(s.value, chr(31), 3) WHERE s.dim = 'agent'
          ) x
          GROUP BY x.dim, x.value) ranked
        WHERE rank <= $3 ORDER BY dim, clicks DESC, value`,
      params: [q.code, q.includeBots, q.top, ...(breakdowns?.params ?? [])],
    },
    visitors: {
      sql: `SELECT reg, max(rank)::int AS rank FROM (
          SELECT reg, rank FROM click_visitors
          WHERE code = $1 AND day >= to_timestamp($3::bigint / 1000) AND day < to_timestamp($4::bigint / 1000)
            AND (NOT bot OR $2)${
              visitorRows.length === 0
                ? ''
                : `
          UNION ALL SELECT reg, rank FROM unnest($5::smallint[], $6::smallint[], $7::boolean[], $8::uuid[])
            AS p(reg, rank, bot, batch) WHERE (NOT bot OR $2) AND ${NOT_YET_WRITTEN}`
            }) v
        GROUP BY reg`,
      params: [
        q.code,
        q.includeBots,
        floorTo(q.from, DAY_MS),
        Math.ceil(q.to / DAY_MS) * DAY_MS,
        ...(visitorRows.length === 0 ? [] : [0, 1, 2, 3].map((i) => visitors[i] ?? [])),
      ],
    },
    topLinks: {
      sql: `SELECT code, sum(clicks)::bigint AS clicks
        FROM (${source("code <> ''", `dim = '${COUNTED_BY}'`, '$1', top?.sql ?? null)}) s GROUP BY code ORDER BY 2 DESC, 1 LIMIT $2`,
      params: [q.includeBots, q.top, ...(top?.params ?? [])],
    },
  };
}

async function compactedThrough(db: SqlClient): Promise<number> {
  const res = await db.query<{ through: Date }>('SELECT through FROM click_compaction WHERE id = 1');
  return ms(res.rows[0]?.through ?? 0);
}

export async function clickStats(db: SqlClient, q: StatsQuery): Promise<ClickStats> {
  const through = await compactedThrough(db);
  // Read after the await, in the same turn as the statements are sent (see StatsQuery.pending).
  const sql = clickStatsSql(q, through, q.pending?.());
  const [series, breakdowns, visitors, topLinks] = await Promise.all([
    db.query<{ t: string | number; clicks: string | number }>(sql.series!.sql, sql.series!.params),
    db.query<{ dim: BreakdownDim; value: string; clicks: string | number }>(
      sql.breakdowns!.sql,
      sql.breakdowns!.params,
    ),
    db.query<{ reg: number; rank: number }>(sql.visitors!.sql, sql.visitors!.params),
    q.code === ALL_LINKS
      ? db.query<{ code: string; clicks: string | number }>(sql.topLinks!.sql, sql.topLinks!.params)
      : Promise.resolve({ rows: [] }),
  ]);
  const byDim = emptyBreakdowns();
  for (const r of breakdowns.rows) byDim[r.dim]?.push({ value: r.value, clicks: Number(r.clicks) });
  return {
    series: series.rows.map((r) => ({ t: Number(r.t), clicks: Number(r.clicks) })),
    breakdowns: byDim,
    visitorRegisters: visitors.rows,
    topLinks: topLinks.rows.map((r) => ({ code: r.code, clicks: Number(r.clicks) })),
  };
}

export async function daySalts(
  db: SqlClient,
  days: readonly number[],
  fresh: () => string,
): Promise<Map<number, string>> {
  const stamps = days.map((d) => new Date(d).toISOString());
  await db.query(
    `INSERT INTO click_salts (day, salt) SELECT d, s FROM unnest($1::timestamptz[], $2::text[]) AS u(d, s)
     ON CONFLICT (day) DO NOTHING`,
    [stamps, days.map(() => fresh())],
  );
  const res = await db.query<{ day: Date; salt: string }>(
    'SELECT day, salt FROM click_salts WHERE day = ANY($1::timestamptz[])',
    [stamps],
  );
  return new Map(res.rows.map((r) => [ms(r.day), r.salt]));
}

/** Sums one whole past day per transaction, so the job never holds the database for long. */
async function compactOneDay(db: SqlClient, today: number): Promise<boolean> {
  return db.transaction(async (tx) => {
    const mark = await tx.query<{ through: Date }>(
      'SELECT through FROM click_compaction WHERE id = 1 FOR UPDATE',
    );
    let through = ms(mark.rows[0]?.through ?? 0);
    if (through >= today) return false;
    // Skip days without clicks: the all-links rows say where the next clicked hour is.
    const next = await tx.query<{ hour: Date }>(
      `SELECT hour FROM click_rollups WHERE code = '' AND dim = '${COUNTED_BY}' AND hour >= $1 ORDER BY hour LIMIT 1`,
      [new Date(through)],
    );
    const first = next.rows[0];
    through = Math.max(through, first === undefined ? today : floorTo(ms(first.hour), DAY_MS));
    if (through >= today) {
      await tx.query('UPDATE click_compaction SET through = $1 WHERE id = 1', [new Date(today)]);
      return false;
    }
    const end = through + DAY_MS;
    await tx.query(
      `INSERT INTO click_rollups_daily (code, dim, day, value, bot, clicks)
       SELECT code, dim, $1::timestamptz, value, bot, sum(clicks) FROM click_rollups
       WHERE hour >= $1 AND hour < $2 GROUP BY code, dim, value, bot`,
      [new Date(through), new Date(end)],
    );
    await tx.query('UPDATE click_compaction SET through = $1 WHERE id = 1', [new Date(end)]);
    return end < today;
  });
}

export async function maintainClicks(
  db: SqlClient,
  now: number,
  retentionDays: number,
): Promise<ClickMaintenance> {
  const today = floorTo(now, DAY_MS);
  while (await compactOneDay(db, today)) {}
  // The embedded database has no autovacuum: fresh statistics keep the planner on the right
  // index as the rollups grow (ANALYZE samples a fixed number of rows, so this stays cheap).
  await db.query('ANALYZE click_rollups');
  await db.query('ANALYZE click_rollups_daily');
  const cutoff = new Date(now - retentionDays * DAY_MS);
  const events = await db.query<{ n: number }>(
    `WITH gone AS (DELETE FROM click_events WHERE last_at < $1 AND folded RETURNING events)
     SELECT coalesce(sum(events), 0)::int AS n FROM gone`,
    [cutoff],
  );
  const batches = await db.query('DELETE FROM click_batches WHERE applied_at < $1', [cutoff]);
  // Yesterday's salt stays for clicks still in flight across midnight; older ones go.
  await db.query('DELETE FROM click_salts WHERE day < $1', [new Date(today - DAY_MS)]);
  return {
    compactedThrough: await compactedThrough(db),
    prunedEvents: events.rows[0]?.n ?? 0,
    prunedBatches: batches.affectedRows,
  };
}
