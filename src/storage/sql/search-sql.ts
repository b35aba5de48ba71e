// Shlink's list query, tags and "find if exists", in SQL both PGlite and PostgreSQL 15 accept.
// Offset pages in any order need every match counted (count(*) OVER ()), and an order by clicks
// needs every match's total: fine for a listing API, which is why Hop's own list is keyset-paged.
import type { LinkSearch, TagStats } from '../ports.ts';

/** `clicks_of(kind)`: a link's total from its packs (as CLICKS_SUBQUERY), all or bots' only. */
export function clicksSubquery(keyExpr: string, botsOnly: boolean, as: string): string {
  const bot = botsOnly ? ' AND d.bot' : '';
  const hbot = botsOnly ? ' AND h.bot' : '';
  return `(
  SELECT coalesce((SELECT sum(d.clicks) FROM click_packs_daily d WHERE d.code = ${keyExpr}${bot} AND d.day < m.through), 0)
    + coalesce((SELECT sum(h.clicks) FROM click_packs h WHERE h.code = ${keyExpr}${hbot} AND h.hour >= m.through), 0)
  FROM click_compaction m WHERE m.id = 1) AS ${as}`;
}

const ORDER_COLUMN: Record<LinkSearch['order']['field'], string> = {
  createdAt: 'created_at',
  code: 'code',
  url: 'url',
  title: 'title',
  clicks: 'clicks',
  humanClicks: '(clicks - bot_clicks)',
};

export function searchLinksSql(
  q: LinkSearch,
  columns: string,
  keyExpr: string,
): { sql: string; params: unknown[] } {
  const where = ['deleted_at IS NULL'];
  const params: unknown[] = [];
  const param = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  if (q.domain !== null) where.push(`domain = ${param(q.domain)}`);
  if (q.code !== undefined) where.push(`code = ${param(q.code)}`);
  if (q.q !== null) {
    const like = param(`%${q.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
    where.push(
      `((code || ' ' || url || ' ' || coalesce(title, '')) ILIKE ${like} OR EXISTS (SELECT 1 FROM unnest(tags) t WHERE t ILIKE ${like}))`,
    );
  }
  if (q.tags.length > 0) where.push(`tags ${q.tagsAll ? '@>' : '&&'} ${param([...q.tags])}::text[]`);
  if (q.excludeTags.length > 0)
    where.push(`NOT (tags ${q.excludeTagsAll ? '@>' : '&&'} ${param([...q.excludeTags])}::text[])`);
  if (q.createdFrom !== null) where.push(`created_at >= ${param(q.createdFrom)}`);
  if (q.createdTo !== null) where.push(`created_at <= ${param(q.createdTo)}`);
  if (q.excludeUsedUp) where.push('(max_clicks IS NULL OR used_clicks < max_clicks)');
  if (q.expiredAt !== null) where.push(`(expires_at IS NULL OR expires_at > ${param(q.expiredAt)})`);
  const dir = q.order.desc ? 'DESC' : 'ASC';
  const nulls = q.order.field === 'title' ? ` NULLS ${q.order.desc ? 'LAST' : 'FIRST'}` : '';
  // Ties broken by code and domain, so pages never overlap.
  const order = `${ORDER_COLUMN[q.order.field]} ${dir}${nulls}, code ${dir}, domain ${dir}`;
  const page = q.limit === null ? '' : ` LIMIT ${param(q.limit)} OFFSET ${param(q.offset)}`;
  const sql = `SELECT * FROM (
      SELECT ${columns}, ${clicksSubquery(keyExpr, false, 'clicks')}, ${clicksSubquery(keyExpr, true, 'bot_clicks')},
        count(*) OVER () AS total
      FROM links WHERE ${where.join(' AND ')}
    ) s ORDER BY ${order}${page}`;
  return { sql, params };
}

export const TAG_STATS_SQL = (keyExpr: string) => `SELECT t.tag, count(*)::int AS links,
    coalesce(sum(c.clicks), 0)::bigint AS clicks, coalesce(sum(c.bot_clicks), 0)::bigint AS bot_clicks
  FROM links CROSS JOIN LATERAL unnest(links.tags) AS t(tag)
  CROSS JOIN LATERAL (SELECT ${clicksSubquery(keyExpr, false, 'clicks')}, ${clicksSubquery(keyExpr, true, 'bot_clicks')}) c
  WHERE links.deleted_at IS NULL
  GROUP BY t.tag ORDER BY t.tag`;

export function tagStatsFromRows(
  rows: readonly { tag: string; links: number; clicks: string | number; bot_clicks: string | number }[],
): TagStats[] {
  return rows.map((r) => ({
    tag: r.tag,
    links: Number(r.links),
    clicks: Number(r.clicks),
    botClicks: Number(r.bot_clicks),
  }));
}
