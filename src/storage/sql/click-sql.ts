// Click analytics in SQL that PGlite and PostgreSQL 15 both run: exactly-once batch writes,
// stats answered from hourly and daily rollups (never raw events), and the upkeep job.

import { randomUUID } from 'node:crypto';
import {
  ALL_LINKS,
  type BreakdownDim,
  type ClickEvent,
  COUNTED_BY,
  DAY_MS,
  emptyBreakdowns,
  floorTo,
  HOUR_MS,
  packRollups,
  splitByShard,
} from '../../domain/clicks.ts';
import { bucketOfKey, keyOnDomainSql } from '../../domain/domains.ts';
import { packClicks, unpackClicks } from '../../domain/packed-clicks.ts';
import type {
  ClickBatch,
  ClickMaintenance,
  ClickStats,
  PendingClicks,
  StatsQuery,
  UnfoldedBatch,
} from '../ports.ts';
import { forgetOrphanPaths } from './domain-sql.ts';
import type { SqlClient } from './sql-client.ts';
import { mergeVisitRows, pruneVisits, splitVisits } from './visit-sql.ts';

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
// inserted (data-modifying CTEs commit or fail together). One round trip instead of several matters
// when the embedded database sits behind a worker-thread channel. The packs come as one JSON array:
// their value arrays have different lengths, which parallel unnest() arrays cannot carry.
const LEDGER_INSERT =
  'INSERT INTO click_batches (batch_id) VALUES ($1) ON CONFLICT (batch_id) DO NOTHING RETURNING batch_id';
const RAW_INSERT = 'SELECT $1, to_timestamp($3::bigint / 1000.0)';
const RECORD_BATCH = `WITH ledger AS (
    ${LEDGER_INSERT}
  ), mark AS (
    -- Held FOR SHARE so that the compaction job cannot slip between this check and the insert.
    SELECT (extract(epoch FROM through) * 1000)::bigint AS through FROM click_compaction WHERE id = 1 FOR SHARE
  ), p AS (
    SELECT * FROM jsonb_to_recordset($2::jsonb)
      AS x(code text, hour bigint, bot boolean, clicks bigint, vals text[], counts bigint[], regs integer[])
    WHERE EXISTS (SELECT 1 FROM ledger)
  ), hourly AS (
    INSERT INTO click_packs (code, hour, bot, clicks, vals, counts, regs)
    SELECT code, to_timestamp(hour / 1000), bot, clicks, vals, counts, regs FROM p
  ), daily AS (
    -- Late clicks for hours already summed per day go into the daily packs too.
    INSERT INTO click_packs_daily (code, day, bot, clicks, vals, counts, regs)
    SELECT code, to_timestamp((hour - hour % 86400000) / 1000), bot, clicks, vals, counts, regs
    FROM p, mark WHERE p.hour < mark.through
  ), raw AS (
    INSERT INTO click_events (batch_id, first_at, last_at, events, data)
    ${RAW_INSERT}, to_timestamp($4::bigint / 1000.0), $5, $6
    WHERE $5 > 0 AND EXISTS (SELECT 1 FROM ledger)
  )
  SELECT count(*)::int AS applied FROM ledger, mark`;

/** RECORD_BATCH's $1…$6. */
function batchArgs(batch: ClickBatch): unknown[] {
  const { first, last } = timeSpan(batch.events);
  return [
    batch.id,
    JSON.stringify(packRollups(batch.rollups, batch.visitors)),
    first,
    last,
    batch.events.length,
    batch.events.length > 0 ? packClicks(batch.events) : '',
  ];
}

export async function recordClickBatch(db: SqlClient, batch: ClickBatch): Promise<'applied' | 'duplicate'> {
  const res = await db.query<{ applied: number }>(RECORD_BATCH, batchArgs(batch));
  return (res.rows[0]?.applied ?? 0) > 0 ? 'applied' : 'duplicate';
}

/** A write that reached a shard after its bucket moved away: the caller re-routes it (SQLSTATE HB001). */
export class BucketMovedError extends Error {
  readonly code = 'HB001';
  constructor(readonly buckets: readonly number[]) {
    super(`buckets ${buckets.join(', ')} have moved to another shard`);
  }
}

// The same writes as RECORD_BATCH, with the ledger entry already claimed: it gains the buckets
// this part applies ($7) instead of being inserted.
// Its raw events row takes id $8: a second part of one batch on one shard (a bucket moved in
// between) needs a row of its own.
const RECORD_PART = RECORD_BATCH.replace(
  LEDGER_INSERT,
  `UPDATE click_batches SET buckets = coalesce(buckets, '{}') || $7::smallint[] WHERE batch_id = $1 RETURNING batch_id`,
).replace(RAW_INSERT, 'SELECT $8::uuid, to_timestamp($3::bigint / 1000.0)');
if (RECORD_PART === RECORD_BATCH || !RECORD_PART.includes('$8::uuid')) {
  throw new Error('RECORD_PART no longer matches RECORD_BATCH');
}

/**
 * One shard's part of a batch on a sharded store (DESIGN §7, §13): the ledger remembers which
 * buckets of the batch this shard applied, so a batch replayed after a bucket moved applies each
 * bucket exactly once wherever it now lives. Its buckets about to move are held shared against
 * the mover's fence; one that has moved away refuses the whole part (nothing is applied) for
 * re-routing.
 * `part` carries no all-links rows: they are summed here from what is applied.
 */
export async function recordClickPart(db: SqlClient, whole: ClickBatch): Promise<'applied' | 'duplicate'> {
  const batch = {
    id: whole.id,
    rollups: whole.rollups.filter((r) => r.code !== ALL_LINKS),
    visitors: whole.visitors.filter((v) => v.code !== ALL_LINKS),
    events: whole.events,
  };
  const bucketOfEntry = new Map<string, number>();
  const bucket = (key: string) => {
    let b = bucketOfEntry.get(key);
    if (b === undefined) {
      b = bucketOfKey(key);
      bucketOfEntry.set(key, b);
    }
    return b;
  };
  for (const r of batch.rollups) bucket(r.code);
  for (const v of batch.visitors) bucket(v.code);
  for (const e of batch.events) bucket(e.code);
  const buckets = [...new Set(bucketOfEntry.values())].sort((a, b) => a - b);
  return db.transaction(async (tx) => {
    // Only buckets about to be fenced are locked (migration 013), in bucket order, so two parts
    // never wait on each other's locks in a cycle.
    await tx.query(
      `SELECT count(pg_advisory_xact_lock_shared(7243003, m.bucket))
       FROM (SELECT bucket FROM buckets_moving WHERE bucket = ANY($1::smallint[]) ORDER BY bucket) m`,
      [buckets],
    );
    const gone = await tx.query<{ bucket: number }>(
      'SELECT bucket FROM buckets_gone WHERE bucket = ANY($1::smallint[])',
      [buckets],
    );
    if (gone.rows.length > 0) throw new BucketMovedError(gone.rows.map((r) => r.bucket));
    await tx.query(
      `INSERT INTO click_batches (batch_id, buckets) VALUES ($1, '{}') ON CONFLICT (batch_id) DO NOTHING`,
      [batch.id],
    );
    const had = await tx.query<{ buckets: number[] | null }>(
      'SELECT buckets FROM click_batches WHERE batch_id = $1 FOR UPDATE',
      [batch.id],
    );
    const done = had.rows[0]?.buckets;
    if (done === null) return 'duplicate'; // an entry for the whole batch
    const applied = new Set((done ?? []).map(Number));
    const todo = buckets.filter((b) => !applied.has(b));
    if (todo.length === 0) return 'duplicate';
    const keep = (key: string) => !applied.has(bucket(key));
    const chunk = splitByShard(
      {
        rollups: batch.rollups.filter((r) => keep(r.code)),
        visitors: batch.visitors.filter((v) => keep(v.code)),
        events: batch.events.filter((e) => keep(e.code)),
      },
      () => 0,
    ).get(0) ?? { rollups: [], visitors: [], events: [] };
    await tx.query(RECORD_PART, [
      ...batchArgs({ id: batch.id, ...chunk }),
      todo,
      applied.size === 0 ? batch.id : randomUUID(),
    ]);
    return 'applied';
  });
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
    [id, first, last, events.length, packClicks(events)],
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
    events: r.data === '' ? [] : unpackClicks(r.data),
  }));
}

interface Span {
  readonly table: 'click_packs' | 'click_packs_daily';
  readonly from: number;
  readonly to: number;
}

/**
 * Which rows answer [from, to): whole days already compacted come from the daily table, the
 * hours around them from the hourly one. An hourly series reads hourly rows only.
 */
export function spansFor(q: Pick<StatsQuery, 'from' | 'to' | 'interval'>, through: number): Span[] {
  const d1 = Math.ceil(q.from / DAY_MS) * DAY_MS;
  const d2 = Math.min(floorTo(q.to, DAY_MS), floorTo(through, DAY_MS));
  if (q.interval === 'hour' || d1 >= d2) return [{ table: 'click_packs', from: q.from, to: q.to }];
  const spans: Span[] = [{ table: 'click_packs_daily', from: d1, to: d2 }];
  if (q.from < d1) spans.push({ table: 'click_packs', from: q.from, to: d1 });
  if (d2 < q.to) spans.push({ table: 'click_packs', from: d2, to: q.to });
  return spans;
}

const timeOf = (s: Span) => (s.table === 'click_packs' ? 'hour' : 'day');

/** Packs of the spans that pass `where` (p is the pack), selecting `select` from each. */
function fromPacks(spans: readonly Span[], select: string, where: string, lateral = ''): string[] {
  return spans.map((s) => {
    const t = timeOf(s);
    return `SELECT ${select.replaceAll('$t', `p.${t}`)} FROM ${s.table} p${lateral}
      WHERE ${where} AND p.${t} >= to_timestamp(${s.from / 1000}) AND p.${t} < to_timestamp(${s.to / 1000})`;
  });
}

// A pending row counts unless the ledger has the batch it is being written in (see PendingClicks):
// checked inside the same statement, so the statement's snapshot decides, once.
const NOT_YET_WRITTEN =
  '(batch IS NULL OR NOT EXISTS (SELECT 1 FROM click_batches l WHERE l.batch_id = batch))';

/** Pending rollup rows as a row source (code, dim, t, value, bot, clicks); params from $at on. */
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

// A packed value's tag back to its dimension (see DIM_TAGS).
const DIM_OF_TAG = "CASE left(u.v, 1) WHEN 'r' THEN 'referrer' WHEN 'c' THEN 'country' ELSE 'agent' END";

/** The statements clickStats runs, exported so a test can EXPLAIN them. */
export function clickStatsSql(
  q: StatsQuery,
  through: number,
  pending?: PendingClicks,
): Record<string, { sql: string; params: unknown[] }> {
  const spans = spansFor(q, through);
  const unit = q.interval === 'hour' ? 'hour' : 'day';
  const series = pendingRollups(pending, 3);
  const breakdowns = pendingRollups(pending, 4);
  const top = pendingRollups(pending, 3);
  const visitorRows = pending?.visitors ?? [];
  const visitors = columns(visitorRows, (v) => [v.reg, v.rank, v.bot, v.batch]);
  // One link's rows, all links' rows, or (a domain given) the rows of each of that domain's links.
  const onDomain = q.domain === undefined ? null : keyOnDomainSql('p.code', q.domain);
  const mine = `${onDomain === null ? 'p.code = $1' : `$1 = '' AND ${onDomain}`} AND (NOT p.bot OR $2)`;
  const seriesRows = fromPacks(spans, '$t AS t, p.clicks', mine);
  if (series !== null)
    seriesRows.push(`SELECT t, clicks FROM ${series.sql} p WHERE ${mine} AND p.dim = '${COUNTED_BY}'`);
  const valueRows = fromPacks(
    spans,
    `${DIM_OF_TAG} AS dim, substr(u.v, 2) AS value, u.n AS clicks`,
    mine,
    ' CROSS JOIN LATERAL unnest(p.vals, p.counts) AS u(v, n)',
  );
  if (breakdowns !== null) valueRows.push(`SELECT dim, value, clicks FROM ${breakdowns.sql} p WHERE ${mine}`);
  const anyLink = onDomain ?? "p.code <> ''";
  const linkRows = fromPacks(spans, 'p.code, p.clicks', `${anyLink} AND (NOT p.bot OR $1)`);
  if (top !== null)
    linkRows.push(
      `SELECT code, clicks FROM ${top.sql} p WHERE ${anyLink} AND (NOT p.bot OR $1) AND p.dim = '${COUNTED_BY}'`,
    );
  // Visitors are counted over whole days: a register holds a day's visitors.
  const days = {
    from: floorTo(q.from, DAY_MS),
    to: Math.ceil(q.to / DAY_MS) * DAY_MS,
    interval: 'day' as const,
  };
  const registerRows = fromPacks(
    spansFor(days, through),
    'x >> 6 AS reg, x & 63 AS rank',
    mine,
    ' CROSS JOIN LATERAL unnest(p.regs) AS x',
  );
  if (visitorRows.length > 0)
    registerRows.push(`SELECT reg, rank FROM unnest($3::smallint[], $4::smallint[], $5::boolean[], $6::uuid[])
      AS p(reg, rank, bot, batch) WHERE (NOT p.bot OR $2) AND ${NOT_YET_WRITTEN}`);
  return {
    series: {
      sql: `SELECT (extract(epoch FROM date_trunc('${unit}', t AT TIME ZONE 'UTC')) * 1000)::bigint AS t,
          sum(clicks)::bigint AS clicks
        FROM (${seriesRows.join(' UNION ALL ')}) s GROUP BY 1 ORDER BY 1`,
      params: [q.code, q.includeBots, ...(series?.params ?? [])],
    },
    breakdowns: {
      // Stored agent values split back into browser, OS and device.
      sql: `SELECT dim, value, clicks FROM (
          SELECT x.dim, x.value, sum(s.clicks)::bigint AS clicks,
            row_number() OVER (PARTITION BY x.dim ORDER BY sum(s.clicks) DESC, x.value) AS rank
          FROM (${valueRows.join(' UNION ALL ')}) s
          CROSS JOIN LATERAL (
            SELECT s.dim AS dim, s.value AS value WHERE s.dim <> 'agent'
            UNION ALL SELECT 'browser', split_part(s.value, chr(31), 1) WHERE s.dim = 'agent'
            UNION ALL SELECT 'os', split_part(s.value, chr(31), 2) WHERE s.dim = 'agent'
            UNION ALL SELECT 'device', split_part(s.value, chr(31), 3) WHERE s.dim = 'agent'
            UNION ALL SELECT 'rule', split_part(s.value, chr(31), 4) WHERE s.dim = 'agent'
          ) x
          GROUP BY x.dim, x.value) ranked
        WHERE rank <= $3 ORDER BY dim, clicks DESC, value`,
      params: [q.code, q.includeBots, q.top, ...(breakdowns?.params ?? [])],
    },
    visitors: {
      sql: `SELECT reg, max(rank)::int AS rank FROM (${registerRows.join(' UNION ALL ')}) v GROUP BY reg ORDER BY reg`,
      params: [
        q.code,
        q.includeBots,
        ...(visitorRows.length === 0 ? [] : [0, 1, 2, 3].map((i) => visitors[i] ?? [])),
      ],
    },
    topLinks: {
      sql: `SELECT code, sum(clicks)::bigint AS clicks
        FROM (${linkRows.join(' UNION ALL ')}) s GROUP BY code ORDER BY 2 DESC, 1 LIMIT $2`,
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

/**
 * CTEs that sum the packs of `source` (columns code, <t>, bot, clicks, vals, counts, regs) into one
 * pack per (code, <t>, bot), named `merged`: clicks and value counts add up, registers keep their
 * maximum.
 */
function mergedPacks(source: string, t: 'hour' | 'day'): string {
  return `tot AS (
      SELECT code, ${t}, bot, sum(clicks)::bigint AS clicks FROM ${source} GROUP BY 1, 2, 3
    ), v AS (
      SELECT s.code, s.${t}, s.bot, u.v, sum(u.n)::bigint AS n
      FROM ${source} s CROSS JOIN LATERAL unnest(s.vals, s.counts) AS u(v, n) GROUP BY 1, 2, 3, 4
    ), va AS (
      SELECT code, ${t}, bot, array_agg(v ORDER BY v) AS vals, array_agg(n ORDER BY v) AS counts FROM v GROUP BY 1, 2, 3
    ), r AS (
      SELECT s.code, s.${t}, s.bot, x >> 6 AS reg, max(x & 63) AS rank
      FROM ${source} s CROSS JOIN LATERAL unnest(s.regs) AS x GROUP BY 1, 2, 3, 4
    ), ra AS (
      SELECT code, ${t}, bot, array_agg(reg * 64 + rank ORDER BY reg) AS regs FROM r GROUP BY 1, 2, 3
    ), merged AS (
      SELECT tot.code, tot.${t}, tot.bot, tot.clicks, coalesce(va.vals, '{}'::text[]),
        coalesce(va.counts, '{}'::bigint[]), coalesce(ra.regs, '{}'::integer[])
      FROM tot LEFT JOIN va USING (code, ${t}, bot) LEFT JOIN ra USING (code, ${t}, bot)
    )`;
}

// Links' packs of one hour (or day) merged per statement: bounded, so the job never holds the
// embedded database for long.
const MERGE_GROUPS = 2_000;
// Writes append packs; merging those of the last two days keeps reads to about one pack per link
// and hour. Late packs for older hours are read as they are (correct, a little slower).
const MERGE_DAYS = 2;

/** Merges each link's several packs of one hour (or day) into one; returns how many groups. */
async function mergePacks(
  db: SqlClient,
  table: 'click_packs' | 'click_packs_daily',
  since: number,
): Promise<number> {
  const t = table === 'click_packs' ? 'hour' : 'day';
  const res = await db.query<{ n: number }>(
    `WITH groups AS (
       SELECT code, ${t}, bot FROM ${table} WHERE ${t} >= $1 GROUP BY 1, 2, 3 HAVING count(*) > 1 LIMIT $2
     ), gone AS (
       DELETE FROM ${table} p USING groups g WHERE p.code = g.code AND p.${t} = g.${t} AND p.bot = g.bot
       RETURNING p.code, p.${t}, p.bot, p.clicks, p.vals, p.counts, p.regs
     ), ${mergedPacks('gone', t)}, ins AS (
       INSERT INTO ${table} (code, ${t}, bot, clicks, vals, counts, regs) SELECT * FROM merged RETURNING 1
     )
     SELECT count(*)::int AS n FROM ins`,
    [new Date(since), MERGE_GROUPS],
  );
  return res.rows[0]?.n ?? 0;
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
      "SELECT hour FROM click_packs WHERE code = '' AND hour >= $1 ORDER BY hour LIMIT 1",
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
      `WITH src AS (
         SELECT code, $1::timestamptz AS day, bot, clicks, vals, counts, regs FROM click_packs
         WHERE hour >= $1 AND hour < $2
       ), ${mergedPacks('src', 'day')}
       INSERT INTO click_packs_daily (code, day, bot, clicks, vals, counts, regs) SELECT * FROM merged`,
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
  const since = today - MERGE_DAYS * DAY_MS;
  while ((await mergePacks(db, 'click_packs', since)) > 0) {}
  while (await compactOneDay(db, today)) {}
  while ((await mergePacks(db, 'click_packs_daily', since)) > 0) {}
  // The embedded database has no autovacuum: fresh statistics keep the planner on the right
  // index as the rollups grow (ANALYZE samples a fixed number of rows, so this stays cheap).
  await db.query('ANALYZE click_packs');
  await db.query('ANALYZE click_packs_daily');
  const cutoff = new Date(now - retentionDays * DAY_MS);
  // Raw batches the click writers have not split per link yet (see splitVisits).
  while ((await splitVisits(db)) > 0) {}
  // Small visit rows of the last days (an hour settles first), merged as the packs are.
  while ((await mergeVisitRows(db, new Date(since), new Date(now - HOUR_MS))) > 0) {}
  const visits = await pruneVisits(db, cutoff);
  const events = await db.query<{ n: number }>(
    `WITH gone AS (DELETE FROM click_events WHERE last_at < $1 AND folded RETURNING events)
     SELECT coalesce(sum(events), 0)::int AS n FROM gone`,
    [cutoff],
  );
  const batches = await db.query('DELETE FROM click_batches WHERE applied_at < $1', [cutoff]);
  await forgetOrphanPaths(db, cutoff);
  // Yesterday's salt stays for clicks still in flight across midnight; older ones go.
  await db.query('DELETE FROM click_salts WHERE day < $1', [new Date(today - DAY_MS)]);
  return {
    compactedThrough: await compactedThrough(db),
    prunedEvents: (events.rows[0]?.n ?? 0) + visits,
    prunedBatches: batches.affectedRows,
  };
}
