// Raw visits as lists (migration 012): the split job that moves folded raw batches into visit rows
// (a link's own, or its bucket's tail), the upkeep's merge of small rows, and the newest-first pages
// read from them. SQL that PGlite and PostgreSQL 15 both run.
import type { ClickEvent } from '../../domain/clicks.ts';
import { bucketOfKey, keyOnDomain, keyOnDomainSql } from '../../domain/domains.ts';
import { packClicks, regroupPacked, unpackClicks } from '../../domain/packed-clicks.ts';
import {
  newestVisits,
  OWN_ROW_MIN,
  planVisitPage,
  ROW_VISITS,
  tailCode,
  type VisitPage,
  type VisitQuery,
  visitRowsOf,
} from '../../domain/visits.ts';
import type { SqlClient } from './sql-client.ts';

// Raw batches taken per split: a flush or stream batch holds up to a few thousand clicks, so one
// split holds the embedded database for a bounded time and memory.
const SPLIT_BATCHES = 32;

/** A visit row as stored: its head, a tail's links, and its clicks packed. */
interface StoredRow {
  readonly code: string;
  readonly first: number;
  readonly last: number;
  readonly visits: number;
  readonly bots: number;
  readonly links: readonly string[] | null;
  readonly linkVisits: readonly number[] | null;
  readonly linkBots: readonly number[] | null;
  readonly data: string;
}

const rowOf = (code: string, clicks: number): string =>
  clicks >= OWN_ROW_MIN ? code : tailCode(bucketOfKey(code));

/**
 * Packed clicks (raw batches, or rows being merged) as the rows to store them in (visitRowsOf):
 * regrouped record by record, or, for batches in an older layout, unpacked and packed again.
 */
function rowsToStore(texts: readonly string[]): StoredRow[] {
  const regrouped = regroupPacked(texts, rowOf, ROW_VISITS);
  if (regrouped !== null)
    return regrouped.map((r) => {
      const links = r.key.startsWith('#') ? [...r.perLink.keys()].sort() : null;
      return {
        code: r.key,
        first: r.first,
        last: r.last,
        visits: r.visits,
        bots: r.bots,
        links,
        linkVisits: links?.map((l) => r.perLink.get(l)![0]) ?? null,
        linkBots: links?.map((l) => r.perLink.get(l)![1]) ?? null,
        data: r.data,
      };
    });
  const events = texts.flatMap((t) => (t === '' ? [] : unpackClicks(t)));
  return visitRowsOf(events, bucketOfKey).map((r) => ({ ...r, data: packClicks(r.events) }));
}

async function insertVisitRows(db: SqlClient, rows: readonly StoredRow[]): Promise<void> {
  if (rows.length === 0) return;
  // Tail rows' link arrays travel as JSON: their lengths differ, which parallel unnest() cannot carry.
  await db.query(
    `INSERT INTO click_visits (code, first_at, last_at, visits, bots, links, link_visits, link_bots, data)
     SELECT u.code, to_timestamp(u.f / 1000.0), to_timestamp(u.l / 1000.0), u.n, u.b,
       (SELECT array_agg(x ORDER BY i) FROM jsonb_array_elements_text(t.links) WITH ORDINALITY AS a(x, i)),
       (SELECT array_agg(x::int ORDER BY i) FROM jsonb_array_elements_text(t.lv) WITH ORDINALITY AS a(x, i)),
       (SELECT array_agg(x::int ORDER BY i) FROM jsonb_array_elements_text(t.lb) WITH ORDINALITY AS a(x, i)),
       u.d
     FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::int[], $5::int[], $6::text[], $7::text[])
       AS u(code, f, l, n, b, d, tail),
       LATERAL (SELECT u.tail::jsonb -> 0 AS links, u.tail::jsonb -> 1 AS lv, u.tail::jsonb -> 2 AS lb) t`,
    [
      rows.map((r) => r.code),
      rows.map((r) => r.first),
      rows.map((r) => r.last),
      rows.map((r) => r.visits),
      rows.map((r) => r.bots),
      rows.map((r) => r.data),
      rows.map((r) => (r.links === null ? null : JSON.stringify([r.links, r.linkVisits, r.linkBots]))),
    ],
  );
}

/**
 * Moves up to SPLIT_BATCHES folded raw batches into visit rows, in one transaction: each click is
 * in exactly one of the two tables at any time. Rows are claimed with SKIP LOCKED, so several
 * processes can split at once. Returns the clicks moved (0: nothing to do). `wait`: rows another
 * split holds are waited for instead (then found gone), so a 0 means nothing is left unsplit
 * (the resharding fence needs that).
 */
export async function splitVisits(db: SqlClient, opts: { wait?: boolean } = {}): Promise<number> {
  return db.transaction(async (tx) => {
    const raw = await tx.query<{ batch_id: string; data: string }>(
      `SELECT batch_id, data FROM click_events WHERE folded ORDER BY last_at LIMIT ${SPLIT_BATCHES}
       FOR UPDATE${opts.wait === true ? '' : ' SKIP LOCKED'}`,
    );
    if (raw.rows.length === 0) return 0;
    const rows = rowsToStore(raw.rows.map((r) => r.data));
    await insertVisitRows(tx, rows);
    await tx.query('DELETE FROM click_events WHERE batch_id = ANY($1::uuid[])', [
      raw.rows.map((r) => r.batch_id),
    ]);
    // A batch without clicks still counts as work done (its row is gone).
    return Math.max(
      rows.reduce((n, r) => n + r.visits, 0),
      1,
    );
  });
}

// Rows with fewer visits than this are merged by the upkeep job: frequent splits leave many small
// rows (tail rows above all), which a page would read one by one.
const SMALL_ROW = ROW_VISITS / 4;
// Codes merged per pass, and rows per code and transaction: bounded, like the packs' merge.
const MERGE_CODES = 200;
const MERGE_ROWS = 4_000;

/**
 * Merges each code's small rows in [since, until) into rows of up to ROW_VISITS (a tail's links
 * that now have enough visits get rows of their own), one transaction per code; returns how many
 * rows it merged. Rows held by another merge are skipped, not waited for.
 */
export async function mergeVisitRows(db: SqlClient, since: Date, until: Date): Promise<number> {
  const codes = await db.query<{ code: string }>(
    `SELECT code FROM click_visits WHERE last_at >= $1 AND last_at < $2 AND visits < ${SMALL_ROW}
     GROUP BY code HAVING count(*) > 1 LIMIT ${MERGE_CODES}`,
    [since, until],
  );
  let merged = 0;
  for (const { code } of codes.rows) {
    merged += await db.transaction(async (tx) => {
      const rows = await tx.query<{ ctid: string; data: string }>(
        `SELECT ctid::text AS ctid, data FROM click_visits
         WHERE code = $1 AND last_at >= $2 AND last_at < $3 AND visits < ${SMALL_ROW}
         ORDER BY last_at LIMIT ${MERGE_ROWS} FOR UPDATE SKIP LOCKED`,
        [code, since, until],
      );
      if (rows.rows.length < 2) return 0;
      await insertVisitRows(tx, rowsToStore(rows.rows.map((r) => r.data)));
      await tx.query('DELETE FROM click_visits WHERE ctid = ANY($1::tid[])', [rows.rows.map((r) => r.ctid)]);
      return rows.rows.length;
    });
  }
  return merged;
}

/**
 * The query's parameters ($1 keys, $2 from, $3 to, $4 includeBots, $5 the codes whose rows may hold
 * them: the keys and their buckets' tails) and, in SQL, which rows may hold its visits and how many
 * of a row's visits match (for a row wholly inside the window; null for one crossing a bound).
 */
function visitSql(q: VisitQuery): { where: string; matching: string; params: unknown[] } {
  const link =
    q.keys !== null
      ? (x: string) => `${x} = ANY($1::text[])`
      : q.domain !== undefined
        ? (x: string) => keyOnDomainSql(x, q.domain!)
        : () => 'true';
  const codes =
    q.keys === null ? [] : [...new Set([...q.keys, ...q.keys.map((k) => tailCode(bucketOfKey(k)))])];
  const where = [
    // $1 and $5 are named either way, so that their types are known.
    q.keys !== null ? 'code = ANY($5::text[])' : '$1::text[] IS NOT NULL AND $5::text[] IS NOT NULL',
    'last_at >= to_timestamp($2 / 1000.0)',
    'first_at < to_timestamp($3 / 1000.0)',
    `CASE WHEN links IS NULL THEN ${link('code')} AND (visits > bots OR $4)
       ELSE EXISTS (SELECT 1 FROM unnest(links) AS x WHERE ${link('x')}) END`,
  ].join(' AND ');
  const inside = 'first_at >= to_timestamp($2 / 1000.0) AND last_at < to_timestamp($3 / 1000.0)';
  const matching = `CASE WHEN ${inside} THEN
      CASE WHEN links IS NULL THEN CASE WHEN $4 THEN visits ELSE visits - bots END
      ELSE (SELECT coalesce(sum(CASE WHEN $4 THEN v ELSE v - b END), 0)
        FROM unnest(links, link_visits, link_bots) AS u(x, v, b) WHERE ${link('x')}) END
    END`;
  return { where, matching, params: [q.keys ?? [], q.from, q.to, q.includeBots, codes] };
}

// Row heads (no visits) read per round trip while planning a page: few at first (a first page of a
// hot link needs three), more each time (a deep page needs many).
const FIRST_HEADS = 16;
const MAX_HEADS = 4_096;

/**
 * The heads of the rows that may hold a query's visits (time span, and how many match when known),
 * newest last first, after `after`: exported so that a test can EXPLAIN it.
 */
export function visitHeadsSql(
  q: VisitQuery,
  after?: { readonly last: number; readonly ctid: string },
  limit = FIRST_HEADS,
): { sql: string; params: unknown[] } {
  const { where, matching, params } = visitSql(q);
  const keyset = after === undefined ? '' : 'AND (v.last_at, v.ctid) < (to_timestamp($6 / 1000.0), $7::tid)';
  const n = Math.trunc(limit);
  const heads = (extra: string) => `SELECT v.ctid AS tid, v.first_at, v.last_at, ${matching} AS n
     FROM click_visits v WHERE ${where} ${extra} ${keyset} ORDER BY v.last_at DESC, v.ctid DESC LIMIT ${n}`;
  return {
    // A link's own rows and its bucket's tail rows, each code read newest first from the
    // (code, last_at) index and merged: never a walk through other links' rows by time.
    sql:
      q.keys === null
        ? `SELECT tid::text AS ctid, first_at, last_at, n FROM (${heads('')}) h`
        : `SELECT h.tid::text AS ctid, h.first_at, h.last_at, h.n FROM unnest($5::text[]) AS c(want)
           CROSS JOIN LATERAL (${heads('AND v.code = c.want')}) h ORDER BY h.last_at DESC, h.tid DESC LIMIT ${n}`,
    params: after === undefined ? params : [...params, after.last, after.ctid],
  };
}

interface Head {
  readonly ctid: string;
  readonly first: number;
  readonly last: number;
  readonly matching: number | null;
  /** The unsplit raw visits, held as a group of their own (no row to read). */
  readonly events?: ClickEvent[];
}

/**
 * A page of visits, newest first, and how many there are. Plans from the rows' heads (time span and
 * counts, never their visits): a row's visits are no newer than its last, so rows are taken newest
 * last first until they hold the page, with any later row that still reaches into their span; a
 * leading run of rows wholly newer than the rest and within the offset is skipped unread. Only the
 * rows left are read and unpacked: a page of a hot link reads a few rows whatever its offset.
 * Visits still in raw batches (not split yet: up to a fold's or a split interval's) are a group of
 * their own.
 */
export async function readVisits(db: SqlClient, q: VisitQuery): Promise<VisitPage> {
  const matches = (e: ClickEvent) =>
    e.at >= q.from &&
    e.at < q.to &&
    (q.includeBots || !e.bot) &&
    (q.keys !== null ? q.keys.includes(e.code) : q.domain === undefined || keyOnDomain(e.code, q.domain));
  const [pending, total] = await Promise.all([unsplit(db, matches), countVisits(db, q, matches)]);
  const need = q.offset + q.limit;
  const groups: Head[] = [];
  if (pending.length > 0) {
    let first = Number.POSITIVE_INFINITY;
    let last = 0;
    for (const e of pending) {
      first = Math.min(first, e.at);
      last = Math.max(last, e.at);
    }
    groups.push({ ctid: '', first, last, matching: pending.length, events: pending });
  }
  let after: Head | undefined;
  for (let limit = FIRST_HEADS; ; limit = Math.min(limit * 4, MAX_HEADS)) {
    const heads = visitHeadsSql(q, after, limit);
    const res = await db.query<{ ctid: string; first_at: Date; last_at: Date; n: number | string | null }>(
      heads.sql,
      heads.params,
    );
    for (const r of res.rows) {
      after = {
        ctid: r.ctid,
        first: new Date(r.first_at).getTime(),
        last: new Date(r.last_at).getTime(),
        matching: r.n === null ? null : Number(r.n),
      };
      groups.push(after);
    }
    const exhausted = res.rows.length < limit;
    // The raw group goes where its newest visit puts it.
    groups.sort((a, b) => b.last - a.last);
    const plan = planVisitPage(groups, need, q.offset, exhausted);
    if (plan.enough === null && !exhausted) continue;
    const chosen = groups.slice(plan.skip, plan.enough ?? groups.length);
    const found: ClickEvent[] = chosen.flatMap((h) => h.events ?? []);
    const rows = chosen.filter((h) => h.events === undefined).map((h) => h.ctid);
    if (rows.length > 0) {
      const data = await db.query<{ data: string }>(
        'SELECT data FROM click_visits WHERE ctid = ANY($1::tid[])',
        [rows],
      );
      for (const r of data.rows) for (const e of unpackClicks(r.data)) if (matches(e)) found.push(e);
    }
    const from = q.offset - plan.skipped;
    return { visits: newestVisits(found, from + q.limit).slice(from), total: total + pending.length };
  }
}

/** Visits in raw batches not split yet that match. */
async function unsplit(db: SqlClient, matches: (e: ClickEvent) => boolean): Promise<ClickEvent[]> {
  const raw = await db.query<{ data: string }>("SELECT data FROM click_events WHERE data <> ''");
  const out: ClickEvent[] = [];
  for (const r of raw.rows) for (const e of unpackClicks(r.data)) if (matches(e)) out.push(e);
  return out;
}

/**
 * How many visits the rows hold in the window: rows wholly inside are counted from their heads,
 * the few that cross a bound of the window visit by visit.
 */
async function countVisits(
  db: SqlClient,
  q: VisitQuery,
  matches: (e: ClickEvent) => boolean,
): Promise<number> {
  const { where, matching, params } = visitSql(q);
  const res = await db.query<{ n: number | string | null; data: string | null }>(
    `SELECT sum(n) AS n, NULL AS data FROM (SELECT ${matching} AS n FROM click_visits WHERE ${where}) s
     WHERE n IS NOT NULL
     UNION ALL
     SELECT NULL, data FROM click_visits WHERE ${where} AND ${matching} IS NULL`,
    params,
  );
  let n = 0;
  for (const r of res.rows) {
    if (r.data === null) {
      n += Number(r.n ?? 0);
      continue;
    }
    for (const e of unpackClicks(r.data)) if (matches(e)) n++;
  }
  return n;
}

/**
 * Deletes the visits of these links, their list and their counts (the all-links sums keep them),
 * and returns how many were listed. Tail rows keep their other links' visits.
 */
export async function deleteVisits(db: SqlClient, keys: readonly string[]): Promise<number> {
  return db.transaction(async (tx) => {
    const gone = await tx.query<{ n: string | number | null }>(
      `WITH d AS (DELETE FROM click_visits WHERE code = ANY($1::text[]) RETURNING visits)
       SELECT sum(visits) AS n FROM d`,
      [keys],
    );
    let n = Number(gone.rows[0]?.n ?? 0);
    await tx.query('DELETE FROM click_packs WHERE code = ANY($1::text[])', [keys]);
    await tx.query('DELETE FROM click_packs_daily WHERE code = ANY($1::text[])', [keys]);
    const tails = [...new Set(keys.map((k) => tailCode(bucketOfKey(k))))];
    const shared = await tx.query<{ ctid: string; data: string }>(
      'SELECT ctid::text AS ctid, data FROM click_visits WHERE code = ANY($1::text[]) AND links && $2::text[] FOR UPDATE',
      [tails, keys],
    );
    const kept: ClickEvent[] = [];
    for (const r of shared.rows)
      for (const e of unpackClicks(r.data)) {
        if (keys.includes(e.code)) n++;
        else kept.push(e);
      }
    if (shared.rows.length > 0) {
      await tx.query('DELETE FROM click_visits WHERE ctid = ANY($1::tid[])', [
        shared.rows.map((r) => r.ctid),
      ]);
      if (kept.length > 0) await insertVisitRows(tx, rowsToStore([packClicks(kept)]));
    }
    // Raw batches hold many links' clicks: the folded ones lose these links' clicks in place.
    const raw = await tx.query<{ batch_id: string; data: string }>(
      "SELECT batch_id, data FROM click_events WHERE folded AND data <> '' FOR UPDATE",
    );
    for (const r of raw.rows) {
      const events = unpackClicks(r.data);
      const rest = events.filter((e) => !keys.includes(e.code));
      if (rest.length === events.length) continue;
      n += events.length - rest.length;
      await tx.query('UPDATE click_events SET data = $2, events = $3 WHERE batch_id = $1', [
        r.batch_id,
        rest.length === 0 ? '' : packClicks(rest),
        rest.length,
      ]);
    }
    return n;
  });
}

/** Drops visit rows whose last visit left the retention window; returns how many visits. */
export async function pruneVisits(db: SqlClient, cutoff: Date): Promise<number> {
  const res = await db.query<{ n: string | number | null }>(
    `WITH gone AS (DELETE FROM click_visits WHERE last_at < $1 RETURNING visits) SELECT sum(visits) AS n FROM gone`,
    [cutoff],
  );
  return Number(res.rows[0]?.n ?? 0);
}
