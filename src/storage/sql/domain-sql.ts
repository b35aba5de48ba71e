// Domains, robots.txt's crawlable links and orphan visits in SQL (PGlite and PostgreSQL alike).
import type { Domain, DomainRedirects } from '../../domain/domains.ts';
import type {
  OrphanBatch,
  OrphanListQuery,
  OrphanQuery,
  OrphanStats,
  OrphanType,
  OrphanVisit,
} from '../ports.ts';
import type { SqlClient } from './sql-client.ts';

const DOMAIN_COLUMNS =
  'host, root_redirect, not_found_redirect, expired_redirect, other_not_found_redirect, created_at';

interface DomainRow {
  host: string;
  root_redirect: string | null;
  not_found_redirect: string | null;
  expired_redirect: string | null;
  other_not_found_redirect: string | null;
  created_at: Date;
}

const rowToDomain = (r: DomainRow): Domain => ({
  host: r.host,
  rootRedirect: r.root_redirect,
  notFoundRedirect: r.not_found_redirect,
  expiredRedirect: r.expired_redirect,
  otherNotFoundRedirect: r.other_not_found_redirect,
  createdAt: r.created_at,
});

const COLUMN: Record<keyof DomainRedirects, string> = {
  rootRedirect: 'root_redirect',
  notFoundRedirect: 'not_found_redirect',
  expiredRedirect: 'expired_redirect',
  otherNotFoundRedirect: 'other_not_found_redirect',
};

export async function listDomains(db: SqlClient): Promise<Domain[]> {
  const res = await db.query<DomainRow>(`SELECT ${DOMAIN_COLUMNS} FROM domains ORDER BY host`);
  return res.rows.map(rowToDomain);
}

export async function createDomain(db: SqlClient, d: Domain): Promise<boolean> {
  const res = await db.query(
    `INSERT INTO domains (host, root_redirect, not_found_redirect, expired_redirect, other_not_found_redirect,
       created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (host) DO NOTHING`,
    [d.host, d.rootRedirect, d.notFoundRedirect, d.expiredRedirect, d.otherNotFoundRedirect, d.createdAt],
  );
  return res.affectedRows > 0;
}

export async function updateDomain(
  db: SqlClient,
  host: string,
  patch: Partial<DomainRedirects>,
): Promise<Domain | null> {
  const params: unknown[] = [host];
  const sets = ['updated_at = now()'];
  for (const [field, value] of Object.entries(patch)) {
    params.push(value);
    sets.push(`${COLUMN[field as keyof DomainRedirects]} = $${params.length}`);
  }
  // The default domain's row exists from the start; an older database may lack it.
  if (host === '') {
    await db.query(
      `INSERT INTO domains (host, created_at, updated_at) VALUES ('', now(), now()) ON CONFLICT (host) DO NOTHING`,
    );
  }
  const res = await db.query<DomainRow>(
    `UPDATE domains SET ${sets.join(', ')} WHERE host = $1 RETURNING ${DOMAIN_COLUMNS}`,
    params,
  );
  const row = res.rows[0];
  return row === undefined ? null : rowToDomain(row);
}

export async function deleteDomain(db: SqlClient, host: string): Promise<boolean> {
  const res = await db.query(`DELETE FROM domains WHERE host = $1 AND host <> ''`, [host]);
  return res.affectedRows > 0;
}

export async function crawlableCodes(db: SqlClient, domain: string, limit: number): Promise<string[]> {
  const res = await db.query<{ code: string }>(
    `SELECT code FROM links WHERE domain = $1 AND crawlable AND deleted_at IS NULL ORDER BY code LIMIT $2`,
    [domain, limit],
  );
  return res.rows.map((r) => r.code);
}

export async function domainHasLinks(db: SqlClient, domain: string): Promise<boolean> {
  const res = await db.query(`SELECT 1 FROM links WHERE domain = $1 AND deleted_at IS NULL LIMIT 1`, [
    domain,
  ]);
  return res.rows.length > 0;
}

// The batch id goes into the click ledger and the rows are added, in one statement: a replayed batch
// meets the ledger and adds nothing.
const RECORD_ORPHANS = `WITH ledger AS (
    INSERT INTO click_batches (batch_id) VALUES ($1) ON CONFLICT DO NOTHING RETURNING batch_id
  ), ins AS (
    INSERT INTO orphan_visits (domain, hour, bot, type, path, visits)
    SELECT r.domain, to_timestamp(r.hour / 1000.0), r.bot, r.type, r.path, r.visits
    FROM jsonb_to_recordset($2::jsonb) AS r(domain text, hour bigint, bot boolean, type text, path text, visits bigint)
    WHERE EXISTS (SELECT 1 FROM ledger)
    ON CONFLICT (hour, domain, bot, type, path) DO UPDATE SET visits = orphan_visits.visits + EXCLUDED.visits
    RETURNING 1
  ), listed AS (
    INSERT INTO orphan_visit_list (at, id, domain, type, path, bot, user_agent, referer)
    SELECT to_timestamp(v.at / 1000.0), v.id, v.domain, v.type, v.path, v.bot, v."userAgent", v.referer
    FROM jsonb_to_recordset($3::jsonb)
      AS v(at bigint, id uuid, domain text, type text, path text, bot boolean, "userAgent" text, referer text)
    WHERE EXISTS (SELECT 1 FROM ledger)
    RETURNING 1
  )
  SELECT (SELECT count(*) FROM ledger)::int AS applied`;

export async function recordOrphans(db: SqlClient, batch: OrphanBatch): Promise<'applied' | 'duplicate'> {
  const res = await db.query<{ applied: number }>(RECORD_ORPHANS, [
    batch.id,
    JSON.stringify(batch.rows),
    JSON.stringify(batch.list ?? []),
  ]);
  return (res.rows[0]?.applied ?? 0) > 0 ? 'applied' : 'duplicate';
}

export async function orphanVisits(
  db: SqlClient,
  q: OrphanListQuery,
): Promise<{ visits: OrphanVisit[]; total: number }> {
  const where = ['at >= to_timestamp($1 / 1000.0)', 'at < to_timestamp($2 / 1000.0)'];
  const params: unknown[] = [q.from, q.to];
  if (q.domain !== null) {
    params.push(q.domain);
    where.push(`domain = $${params.length}`);
  }
  if (q.type !== null) {
    params.push(q.type);
    where.push(`type = $${params.length}`);
  }
  if (!q.includeBots) where.push('NOT bot');
  const w = where.join(' AND ');
  const [page, count] = await Promise.all([
    db.query<{
      at: Date;
      id: string;
      domain: string;
      type: OrphanType;
      path: string;
      bot: boolean;
      user_agent: string | null;
      referer: string | null;
    }>(
      `SELECT at, id, domain, type, path, bot, user_agent, referer FROM orphan_visit_list WHERE ${w}
       ORDER BY at DESC, id DESC LIMIT ${Math.trunc(q.limit)} OFFSET ${Math.trunc(q.offset)}`,
      params,
    ),
    db.query<{ n: number }>(`SELECT count(*)::int AS n FROM orphan_visit_list WHERE ${w}`, params),
  ]);
  return {
    visits: page.rows.map((r) => ({
      id: r.id,
      at: new Date(r.at).getTime(),
      domain: r.domain,
      type: r.type,
      path: r.path,
      bot: r.bot,
      userAgent: r.user_agent,
      referer: r.referer,
    })),
    total: count.rows[0]?.n ?? 0,
  };
}

export async function deleteOrphanVisits(db: SqlClient): Promise<number> {
  return db.transaction(async (tx) => {
    await tx.query('DELETE FROM orphan_visit_list');
    const res = await tx.query<{ n: string | null }>(
      'WITH gone AS (DELETE FROM orphan_visits RETURNING visits) SELECT sum(visits)::text AS n FROM gone',
    );
    return Number(res.rows[0]?.n ?? 0);
  });
}

export async function orphanStats(db: SqlClient, q: OrphanQuery): Promise<OrphanStats> {
  const where = ['hour >= to_timestamp($1 / 1000.0)', 'hour < to_timestamp($2 / 1000.0)'];
  const params: unknown[] = [q.from, q.to];
  if (q.domain !== null) {
    params.push(q.domain);
    where.push(`domain = $${params.length}`);
  }
  if (!q.includeBots) where.push('NOT bot');
  const w = where.join(' AND ');
  const bucket = q.interval === 'day' ? `date_trunc('day', hour, 'UTC')` : 'hour';
  const [series, types, paths] = await Promise.all([
    db.query<{ t: Date; clicks: string }>(
      `SELECT ${bucket} AS t, sum(visits)::text AS clicks FROM orphan_visits WHERE ${w} GROUP BY 1 ORDER BY 1`,
      params,
    ),
    db.query<{ key: OrphanType; clicks: string }>(
      `SELECT type AS key, sum(visits)::text AS clicks FROM orphan_visits WHERE ${w} GROUP BY 1 ORDER BY 2 DESC, 1`,
      params,
    ),
    db.query<{ key: string; clicks: string }>(
      `SELECT path AS key, sum(visits)::text AS clicks FROM orphan_visits WHERE ${w} AND path <> ''
       GROUP BY 1 ORDER BY sum(visits) DESC, 1 LIMIT ${Math.trunc(q.top)}`,
      params,
    ),
  ]);
  return {
    series: series.rows.map((r) => ({ t: new Date(r.t).getTime(), clicks: Number(r.clicks) })),
    types: types.rows.map((r) => ({ key: r.key, clicks: Number(r.clicks) })),
    paths: paths.rows.map((r) => ({ key: r.key, clicks: Number(r.clicks) })),
  };
}

/** Past the retention window an orphan hour keeps its totals, not which paths were asked for. */
export async function forgetOrphanPaths(db: SqlClient, before: Date): Promise<void> {
  await db.query('DELETE FROM orphan_visit_list WHERE at < $1', [before]);
  await db.query(
    `WITH old AS (DELETE FROM orphan_visits WHERE hour < $1 AND path <> '' RETURNING domain, hour, bot, type, visits)
     INSERT INTO orphan_visits (domain, hour, bot, type, path, visits)
     SELECT domain, hour, bot, type, '', sum(visits) FROM old GROUP BY 1, 2, 3, 4
     ON CONFLICT (hour, domain, bot, type, path) DO UPDATE SET visits = orphan_visits.visits + EXCLUDED.visits`,
    [before],
  );
}
