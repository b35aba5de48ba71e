// Hop's store written once in SQL that PGlite and PostgreSQL 15 both accept. The embedded
// adapter runs it on PGlite; the PostgreSQL adapter runs it per shard.
import { bucketOf } from '../../domain/bucket.ts';
import { generateCode } from '../../domain/codes.ts';
import {
  type Domain,
  type DomainRedirects,
  idempotencyBucket,
  linkKey,
  splitLinkKey,
} from '../../domain/domains.ts';
import type { Link, RedirectRecord, RedirectType } from '../../domain/link.ts';
import type { LinkFields } from '../../domain/link-input.ts';
import { type RedirectRule, rulesFromJson } from '../../domain/redirect-rules.ts';
import type { VisitPage, VisitQuery } from '../../domain/visits.ts';
import type { Delivery, DeliveryOutcome, DueDelivery, NewDelivery, Webhook } from '../../domain/webhooks.ts';
import { GroupCommit } from '../group-commit.ts';
import { type LinkJson, linkFromJson, linkToJson, sameMapping } from '../link-json.ts';
import type {
  ApiKeyRecord,
  ChangeEvent,
  ClickBatch,
  ClickEvent,
  ClickLog,
  ClickMaintenance,
  ClickStats,
  CreateOutcome,
  DatabaseThread,
  DeleteWindow,
  ImportStatus,
  LinkSearch,
  LinkWithClicks,
  ListPage,
  ListQuery,
  MigrationReport,
  NewLink,
  OrphanBatch,
  OrphanListQuery,
  OrphanQuery,
  OrphanStats,
  OrphanVisit,
  RestoreStatus,
  SearchedLink,
  StatsQuery,
  Store,
  StoredIdempotency,
  TagStats,
  UnfoldedBatch,
} from '../ports.ts';
import { searchOrder } from '../search-order.ts';
import * as clickSql from './click-sql.ts';
import { clickStats, daySalts, maintainClicks, recordClickBatch } from './click-sql.ts';
import * as domainSql from './domain-sql.ts';
import { migrate } from './migrate.ts';
import { searchLinksSql, TAG_STATS_SQL, tagStatsFromRows } from './search-sql.ts';
import type { SqlClient } from './sql-client.ts';
import * as visitSql from './visit-sql.ts';
import * as webhookSql from './webhook-sql.ts';

const LINK_COLUMNS = `code, domain, crawlable, bucket, url, redirect_type, forward_query, expires_at, max_clicks, used_clicks,
  disabled, deleted_at, tags, title, created_at, updated_at, rules, expired_url, password_hash, valid_since`;
const REDIRECT_COLUMNS =
  'code, domain, url, redirect_type, forward_query, expires_at, max_clicks, disabled, deleted_at, rules, expired_url, password_hash, valid_since';
// The same expression as links_search_idx, so the trigram index serves `q`.
const SEARCH_EXPR = `(code || ' ' || url || ' ' || coalesce(title, ''))`;
const MAX_CODE_DRAWS = 8;
// The link key (domain/domains.ts) of a links row: what click rollups are keyed by.
const KEY_EXPR = `(CASE WHEN links.domain = '' THEN links.code ELSE links.domain || '/' || links.code END)`;
// A link's total: its daily packs of the days already summed per day, and its hourly packs since
// (the hourly packs before that are in the daily ones too). A few dozen index rows even for a link
// with years of clicks, and nothing to update per click.
const CLICKS_SUBQUERY = `(
  SELECT coalesce((SELECT sum(d.clicks) FROM click_packs_daily d WHERE d.code = ${KEY_EXPR} AND d.day < m.through), 0)
    + coalesce((SELECT sum(h.clicks) FROM click_packs h WHERE h.code = ${KEY_EXPR} AND h.hour >= m.through), 0)
  FROM click_compaction m WHERE m.id = 1) AS clicks`;

interface LinkRow {
  code: string;
  domain: string;
  crawlable: boolean;
  bucket: number;
  url: string;
  redirect_type: number;
  forward_query: boolean;
  expires_at: Date | null;
  max_clicks: number | null;
  used_clicks: number;
  disabled: boolean;
  deleted_at: Date | null;
  tags: string[];
  title: string | null;
  created_at: Date;
  updated_at: Date;
  rules: RedirectRule[] | null;
  expired_url: string | null;
  valid_since: Date | null;
  password_hash: string | null;
  clicks?: number | string | null;
}

function rowToLink(r: LinkRow): Link {
  return {
    code: r.code,
    domain: r.domain,
    crawlable: r.crawlable,
    bucket: r.bucket,
    url: r.url,
    redirectType: r.redirect_type as RedirectType,
    forwardQuery: r.forward_query,
    expiresAt: r.expires_at,
    maxClicks: r.max_clicks,
    usedClicks: r.used_clicks,
    disabled: r.disabled,
    deletedAt: r.deleted_at,
    rules: rulesFromJson(r.rules),
    expiredUrl: r.expired_url,
    validSince: r.valid_since,
    passwordHash: r.password_hash,
    tags: r.tags,
    title: r.title,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

function rowToRedirect(r: LinkRow): RedirectRecord {
  return {
    code: r.code,
    domain: r.domain,
    url: r.url,
    redirectType: r.redirect_type as RedirectType,
    forwardQuery: r.forward_query,
    expiresAt: r.expires_at,
    maxClicks: r.max_clicks,
    disabled: r.disabled,
    deletedAt: r.deleted_at,
    rules: rulesFromJson(r.rules),
    expiredUrl: r.expired_url,
    validSince: r.valid_since,
    passwordHash: r.password_hash,
  };
}

function withClicks(r: LinkRow): LinkWithClicks {
  return { ...rowToLink(r), clicks: Number(r.clicks ?? 0) };
}

// Rows go in as one JSON document: works for any batch size and for array columns (tags),
// where unnest() of a 2-D array would flatten.
const RECORDSET = `jsonb_to_recordset($1::jsonb) AS r(code text, domain text, crawlable boolean, bucket int, url text, "redirectType" int,
  "forwardQuery" boolean, "expiresAt" timestamptz, "maxClicks" int, "usedClicks" int, disabled boolean,
  "deletedAt" timestamptz, tags jsonb, title text, "createdAt" timestamptz, "updatedAt" timestamptz, rules jsonb,
  "expiredUrl" text, "passwordHash" text, "validSince" timestamptz)`;
const insertFromRecordset = (returning: string) => `INSERT INTO links (${LINK_COLUMNS})
  SELECT r.code, coalesce(r.domain, ''), coalesce(r.crawlable, false), r.bucket, r.url, r."redirectType", r."forwardQuery", r."expiresAt", r."maxClicks", r."usedClicks",
    r.disabled, r."deletedAt", ARRAY(SELECT jsonb_array_elements_text(r.tags)), r.title, r."createdAt", r."updatedAt",
    nullif(r.rules, 'null'::jsonb), r."expiredUrl", r."passwordHash", r."validSince"
  FROM ${RECORDSET}
  ON CONFLICT (code, domain) DO NOTHING
  RETURNING ${returning}`;

// An upsert's SET list: every link column but the key, from the row that was refused.
const UPDATE_FROM_EXCLUDED = LINK_COLUMNS.split(',')
  .map((c) => c.trim())
  .filter((c) => c !== 'code' && c !== 'domain')
  .map((c) => `${c} = EXCLUDED.${c}`)
  .join(', ');

// Links and their link.created events in one statement (data-modifying CTEs run atomically).
// Only keys come back: the rows inserted are exactly the records sent.
const INSERT_LINKS = insertFromRecordset(LINK_COLUMNS);

const INSERT_WITH_OUTBOX = `WITH ins AS (${insertFromRecordset('code, domain, bucket')}),
  ob AS (
    INSERT INTO outbox (kind, code, bucket, payload)
    SELECT 'link.created', ins.code, ins.bucket, j.j
    FROM ins JOIN jsonb_array_elements($1::jsonb) AS j(j)
      ON j.j->>'code' = ins.code AND coalesce(j.j->>'domain', '') = ins.domain
  )
  SELECT code, domain FROM ins`;

const OUTBOX_INSERT = `INSERT INTO outbox (kind, code, bucket, payload)
  SELECT e->>'kind', e->'link'->>'code', (e->'link'->>'bucket')::smallint, e->'link'
  FROM jsonb_array_elements($1::jsonb) AS e`;

/** The list query, exported so a test can check its plan (the trigram index must serve `q`). */
export function listLinksSql(query: ListQuery): { sql: string; params: unknown[] } {
  const where = ['deleted_at IS NULL'];
  const params: unknown[] = [];
  const param = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  if (query.cursor !== null) {
    where.push(
      `(created_at, code, domain) < (${param(query.cursor.createdAt)}::timestamptz, ${param(query.cursor.code)}, ${param(query.cursor.domain)})`,
    );
  }
  if (query.domain !== null) where.push(`domain = ${param(query.domain)}`);
  if (query.tag !== null) where.push(`tags @> ARRAY[${param(query.tag)}::text]`);
  if (query.q !== null) {
    const escaped = query.q.replace(/[\\%_]/g, (c) => `\\${c}`);
    where.push(`${SEARCH_EXPR} ILIKE ${param(`%${escaped}%`)}`);
  }
  const sql = `SELECT ${LINK_COLUMNS}, ${CLICKS_SUBQUERY}
    FROM links WHERE ${where.join(' AND ')}
    ORDER BY created_at DESC, code DESC, domain DESC
    LIMIT ${param(query.limit + 1)}`;
  return { sql, params };
}

interface Pending {
  readonly index: number;
  readonly req: NewLink;
  code: string;
  claimed: boolean;
  draws: number;
}

/** The outbox after a seq, through any client (a transaction's too). */
async function readChangesWith(db: SqlClient, afterSeq: number, limit: number): Promise<ChangeEvent[]> {
  const res = await db.query<{
    seq: string | number;
    kind: ChangeEvent['kind'];
    created_at: Date;
    payload: LinkJson;
  }>(
    'SELECT o.seq::text AS seq, o.kind, o.created_at, o.payload FROM outbox o WHERE o.seq > $1 ORDER BY o.seq LIMIT $2',
    [afterSeq, limit],
  );
  return res.rows.map((r) => {
    const link = linkFromJson(r.payload);
    return {
      seq: Number(r.seq),
      kind: r.kind,
      code: linkKey(link.domain, link.code),
      bucket: link.bucket,
      at: r.created_at,
      link,
    };
  });
}

export interface SqlStoreOptions {
  readonly kind: string;
  readonly codeLength: number;
  /** Draws a generated code (of the length asked, else the configured one); a shard draws only codes whose bucket it owns. */
  readonly drawCode?: (length?: number) => string;
  /** Migrations applied to this database before the store was made on it (reported as applied here). */
  readonly appliedBefore?: readonly string[];
}

export class SqlStore implements Store, ClickLog {
  readonly kind: string;
  readonly changeStreams = 1;
  private readonly db: SqlClient;
  private readonly drawCode: (length?: number) => string;
  private readonly creates: GroupCommit<NewLink, CreateOutcome>;
  private readonly appliedHere: Set<string>;

  constructor(db: SqlClient, opts: SqlStoreOptions) {
    this.db = db;
    this.kind = opts.kind;
    this.drawCode = opts.drawCode ?? ((length) => generateCode(length ?? opts.codeLength));
    this.creates = new GroupCommit((reqs) => this.createGroup(reqs));
    this.appliedHere = new Set(opts.appliedBefore);
  }

  /**
   * Reports what this store has applied since it was opened (opening already migrates), so
   * `hop migrate` on a new database says what it did.
   */
  async migrate(): Promise<MigrationReport> {
    const r = await migrate(this.db);
    for (const v of r.applied) this.appliedHere.add(v);
    return {
      applied: [...this.appliedHere],
      alreadyApplied: r.alreadyApplied.filter((v) => !this.appliedHere.has(v)),
    };
  }

  async ping(): Promise<void> {
    await this.db.query('SELECT 1');
  }

  close(): Promise<void> {
    return this.db.close();
  }

  createLink(req: NewLink): Promise<CreateOutcome> {
    return this.creates.submit(req);
  }

  /**
   * Plain creates (no idempotency key) need no transaction: one statement inserts the links and
   * their outbox rows atomically, so a batch costs one round trip. Collisions and keyed requests
   * take the interactive path below.
   */
  private async createGroup(reqs: NewLink[]): Promise<CreateOutcome[]> {
    const out: CreateOutcome[] = new Array(reqs.length);
    const simple: number[] = [];
    const rest: number[] = [];
    const keys = new Set<string>();
    const records: (Link | null)[] = reqs.map((req, i) => {
      const code = req.alias ?? this.drawCode(req.codeLength);
      const key = linkKey(req.domain, code);
      if (req.idempotency !== null || keys.has(key)) {
        rest.push(i);
        return null;
      }
      keys.add(key);
      simple.push(i);
      return this.newLinkRecord({ index: i, req, code, claimed: false, draws: 1 });
    });
    if (simple.length > 0) {
      const rows = simple.map((i) => linkToJson(records[i]!));
      const res = await this.db.query<{ code: string; domain: string }>(INSERT_WITH_OUTBOX, [
        JSON.stringify(rows),
      ]);
      const inserted = new Set(res.rows.map((r) => linkKey(r.domain, r.code)));
      for (const i of simple) {
        const link = records[i]!;
        if (inserted.has(linkKey(link.domain, link.code))) out[i] = { kind: 'created', link };
        else if (reqs[i]!.alias !== null) out[i] = { kind: 'alias_taken' };
        else rest.push(i); // a generated code collided: draw again below
      }
    }
    if (rest.length > 0) {
      const again = await this.db.transaction((tx) =>
        this.createMany(
          tx,
          rest.map((i) => reqs[i]!),
        ),
      );
      rest.forEach((i, k) => {
        out[i] = again[k]!;
      });
    }
    return out;
  }

  /**
   * Creates a batch in one transaction. Rounds keep codes and idempotency keys unique within
   * a statement; a generated code that collides is drawn again, an alias that collides is taken.
   */
  private async createMany(tx: SqlClient, reqs: NewLink[]): Promise<CreateOutcome[]> {
    const out: (CreateOutcome | undefined)[] = new Array(reqs.length);
    let pending: Pending[] = reqs.map((req, index) => ({
      index,
      req,
      code: req.alias ?? this.drawCode(req.codeLength),
      claimed: false,
      draws: 1,
    }));
    const events: { kind: string; link: LinkJson }[] = [];
    while (pending.length > 0) {
      const round: Pending[] = [];
      const later: Pending[] = [];
      const codes = new Set<string>();
      const keys = new Set<string>();
      for (const p of pending) {
        const idem = p.req.idempotency;
        const k = idem ? `${idem.scope}\u0000${idem.key}` : null;
        const lk = linkKey(p.req.domain, p.code);
        if (codes.has(lk) || (k !== null && keys.has(k))) later.push(p);
        else {
          codes.add(lk);
          if (k !== null) keys.add(k);
          round.push(p);
        }
      }
      const toInsert: Pending[] = [];
      // Keys are claimed in one order everywhere: two groups holding the same two keys in opposite
      // orders would otherwise each wait for the other's claim (a deadlock PostgreSQL breaks by
      // failing one of them).
      for (const p of [...round].sort(byIdempotencyKey)) {
        if (p.req.idempotency === null || p.claimed) toInsert.push(p);
        else {
          const replay = await this.claimIdempotency(tx, p);
          if (replay === null) toInsert.push(p);
          else out[p.index] = { kind: 'replayed', stored: replay };
        }
      }
      const redraw: Pending[] = [];
      if (toInsert.length > 0) {
        const rows = toInsert.map((p) => linkToJson(this.newLinkRecord(p)));
        const res = await tx.query<LinkRow>(INSERT_LINKS, [JSON.stringify(rows)]);
        const inserted = new Map(res.rows.map((r) => [linkKey(r.domain, r.code), rowToLink(r)]));
        for (const p of toInsert) {
          const link = inserted.get(linkKey(p.req.domain, p.code));
          if (link !== undefined) {
            out[p.index] = { kind: 'created', link };
            events.push({ kind: 'link.created', link: linkToJson(link) });
            await this.recordIdempotentOutcome(tx, p, { kind: 'created', link: linkToJson(link) });
          } else if (p.req.alias !== null) {
            out[p.index] = { kind: 'alias_taken' };
            await this.recordIdempotentOutcome(tx, p, { kind: 'alias_taken' });
          } else if (p.draws >= MAX_CODE_DRAWS) {
            throw new Error(`could not draw a free code in ${MAX_CODE_DRAWS} tries; raise HOP_CODE_LENGTH`);
          } else {
            p.code = this.drawCode(p.req.codeLength);
            p.draws++;
            redraw.push(p);
          }
        }
      }
      pending = [...later, ...redraw];
    }
    if (events.length > 0) await tx.query(OUTBOX_INSERT, [JSON.stringify(events)]);
    return out as CreateOutcome[];
  }

  private newLinkRecord(p: Pending): Link {
    const f = p.req.fields;
    return {
      ...f,
      code: p.code,
      domain: p.req.domain,
      bucket: bucketOf(p.code),
      usedClicks: 0,
      deletedAt: null,
      createdAt: p.req.createdAt,
      updatedAt: p.req.createdAt,
    };
  }

  /** Claims the key for this request, or returns what an earlier request with it stored. */
  private async claimIdempotency(tx: SqlClient, p: Pending): Promise<StoredIdempotency | null> {
    const idem = p.req.idempotency!;
    const cutoff = new Date(p.req.createdAt.getTime() - 24 * 3600_000);
    // A key older than the window is free again: the claim replaces it.
    const claim = await tx.query(
      `INSERT INTO idempotency_keys (scope, key, request_hash, outcome, created_at, bucket) VALUES ($1, $2, $3, NULL, $4, $6)
       ON CONFLICT (scope, key) DO UPDATE SET request_hash = excluded.request_hash, outcome = NULL,
         created_at = excluded.created_at, bucket = excluded.bucket
       WHERE idempotency_keys.created_at < $5
       RETURNING key`,
      [
        idem.scope,
        idem.key,
        idem.requestHash,
        p.req.createdAt,
        cutoff,
        idempotencyBucket(idem.scope, idem.key),
      ],
    );
    if (claim.rows.length > 0) {
      p.claimed = true;
      return null;
    }
    const stored = await this.readIdempotency(tx, idem.scope, idem.key, cutoff);
    if (stored === null) throw new Error('idempotency key row vanished during its claim');
    return stored;
  }

  private async recordIdempotentOutcome(tx: SqlClient, p: Pending, outcome: unknown): Promise<void> {
    const idem = p.req.idempotency;
    if (idem === null) return;
    await tx.query('UPDATE idempotency_keys SET outcome = $3::jsonb WHERE scope = $1 AND key = $2', [
      idem.scope,
      idem.key,
      JSON.stringify(outcome),
    ]);
  }

  private async readIdempotency(
    db: SqlClient,
    scope: string,
    key: string,
    notBefore: Date,
  ): Promise<StoredIdempotency | null> {
    // FOR KEY SHARE: an answer is repeated only once it is durable. Locking the row writes WAL after
    // the create's, so this statement's commit waits for the synchronous standby as the create's
    // did: a create whose commit was in doubt is confirmed here, or answered in doubt again.
    const res = await db.query<{ request_hash: string; outcome: { kind: string; link?: LinkJson } | null }>(
      `SELECT request_hash, outcome FROM idempotency_keys WHERE scope = $1 AND key = $2 AND created_at >= $3
       FOR KEY SHARE`,
      [scope, key, notBefore],
    );
    const row = res.rows[0];
    if (row === undefined || row.outcome === null) return null;
    const outcome =
      row.outcome.kind === 'created' && row.outcome.link !== undefined
        ? ({ kind: 'created', link: linkFromJson(row.outcome.link) } as const)
        : ({ kind: 'alias_taken' } as const);
    return { requestHash: row.request_hash, outcome };
  }

  getIdempotency(scope: string, key: string, notBefore: Date): Promise<StoredIdempotency | null> {
    return this.readIdempotency(this.db, scope, key, notBefore);
  }

  async getRedirect(key: string): Promise<RedirectRecord | null> {
    const { code, domain } = splitLinkKey(key);
    const res = await this.db.query<LinkRow>(
      `SELECT ${REDIRECT_COLUMNS} FROM links WHERE code = $1 AND domain = $2`,
      [code, domain],
    );
    const row = res.rows[0];
    return row === undefined ? null : rowToRedirect(row);
  }

  async getLink(key: string): Promise<LinkWithClicks | null> {
    const { code, domain } = splitLinkKey(key);
    const res = await this.db.query<LinkRow>(
      `SELECT ${LINK_COLUMNS}, ${CLICKS_SUBQUERY}
       FROM links WHERE code = $1 AND domain = $2 AND deleted_at IS NULL`,
      [code, domain],
      { heldClicks: true },
    );
    const row = res.rows[0];
    return row === undefined ? null : withClicks(row);
  }

  async listLinks(query: ListQuery): Promise<ListPage> {
    const { sql, params } = listLinksSql(query);
    const res = await this.db.query<LinkRow>(sql, params, { heldClicks: true });
    const items = res.rows.slice(0, query.limit).map(withClicks);
    const last = items[items.length - 1];
    const next =
      res.rows.length > query.limit && last
        ? { createdAt: last.createdAt, code: last.code, domain: last.domain }
        : null;
    return { items, next };
  }

  updateLink(key: string, patch: Partial<LinkFields>, now: Date): Promise<Link | null> {
    const columns: Record<keyof LinkFields, string> = {
      url: 'url',
      expiresAt: 'expires_at',
      maxClicks: 'max_clicks',
      redirectType: 'redirect_type',
      forwardQuery: 'forward_query',
      tags: 'tags',
      title: 'title',
      disabled: 'disabled',
      crawlable: 'crawlable',
      rules: 'rules',
      expiredUrl: 'expired_url',
      validSince: 'valid_since',
      passwordHash: 'password_hash',
    };
    const { code, domain } = splitLinkKey(key);
    const params: unknown[] = [code, now, domain];
    const sets = ['updated_at = $2'];
    for (const [field, value] of Object.entries(patch)) {
      // Rules go in as one JSON document (null: none).
      const rules = field === 'rules';
      params.push(rules ? (value === null ? null : JSON.stringify(value)) : value);
      sets.push(`${columns[field as keyof LinkFields]} = $${params.length}${rules ? '::jsonb' : ''}`);
    }
    return this.db.transaction(async (tx) => {
      const res = await tx.query<LinkRow>(
        `UPDATE links SET ${sets.join(', ')} WHERE code = $1 AND domain = $3 AND deleted_at IS NULL
         RETURNING ${LINK_COLUMNS}`,
        params,
      );
      const row = res.rows[0];
      if (row === undefined) return null;
      const link = rowToLink(row);
      await tx.query(OUTBOX_INSERT, [JSON.stringify([{ kind: 'link.updated', link: linkToJson(link) }])]);
      return link;
    });
  }

  deleteLink(key: string, now: Date): Promise<boolean> {
    const { code, domain } = splitLinkKey(key);
    return this.db.transaction(async (tx) => {
      const res = await tx.query<LinkRow>(
        `UPDATE links SET deleted_at = $2, updated_at = $2 WHERE code = $1 AND domain = $3 AND deleted_at IS NULL
         RETURNING ${LINK_COLUMNS}`,
        [code, now, domain],
      );
      const row = res.rows[0];
      if (row === undefined) return false;
      await tx.query(OUTBOX_INSERT, [
        JSON.stringify([{ kind: 'link.deleted', link: linkToJson(rowToLink(row)) }]),
      ]);
      return true;
    });
  }

  async consumeClick(key: string): Promise<boolean> {
    const { code, domain } = splitLinkKey(key);
    const res = await this.db.query(
      `UPDATE links SET used_clicks = used_clicks + 1
       WHERE code = $1 AND domain = $2 AND deleted_at IS NULL AND NOT disabled AND (max_clicks IS NULL OR used_clicks < max_clicks)
       RETURNING used_clicks`,
      [code, domain],
    );
    return res.rows.length > 0;
  }

  /** One atomic statement inserts what is new (with its outbox rows); the rest is compared. */
  async importLinks(links: readonly Link[]): Promise<ImportStatus[]> {
    // A link repeated within the batch is inserted once; later copies compare against the first.
    const keyOf = (l: { code: string; domain: string }) => linkKey(l.domain, l.code);
    const first = new Map<string, Link>();
    for (const l of links) if (!first.has(keyOf(l))) first.set(keyOf(l), l);
    const unique = [...first.values()];
    const res = await this.db.query<{ code: string; domain: string }>(INSERT_WITH_OUTBOX, [
      JSON.stringify(unique.map(linkToJson)),
    ]);
    const created = new Set(res.rows.map(keyOf));
    const others = unique.filter((l) => !created.has(keyOf(l)));
    const existing = new Map<string, Link>();
    if (others.length > 0) {
      const ex = await this.db.query<LinkRow>(
        `SELECT ${LINK_COLUMNS} FROM links
         WHERE (code, domain) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
        [others.map((l) => l.code), others.map((l) => l.domain)],
      );
      for (const r of ex.rows) existing.set(keyOf(r), rowToLink(r));
    }
    return links.map((l): ImportStatus => {
      const k = keyOf(l);
      if (created.has(k) && first.get(k) === l) return 'created';
      const ex = existing.get(k) ?? (created.has(k) ? first.get(k) : undefined);
      return ex !== undefined && sameMapping(ex, l) ? 'unchanged' : 'conflict';
    });
  }

  async restoreLinks(links: readonly Link[], window: DeleteWindow, now: Date): Promise<RestoreStatus[]> {
    if (links.length === 0) return [];
    const keyOf = (l: { code: string; domain: string }) => linkKey(l.domain, l.code);
    const unique = [
      ...new Map(links.map((l) => [keyOf(l), { ...l, deletedAt: null, updatedAt: now }])).values(),
    ];
    const back = await this.db.transaction(async (tx) => {
      // Only a missing row or a tombstone made since the mistake is written: anything live here
      // was written after the copy was taken and wins. xmax = 0 marks a row inserted, not updated.
      const res = await tx.query<LinkRow & { inserted: boolean }>(
        insertFromRecordset(`${LINK_COLUMNS}, (xmax = 0) AS inserted`).replace(
          'ON CONFLICT (code, domain) DO NOTHING',
          `ON CONFLICT (code, domain) DO UPDATE SET ${UPDATE_FROM_EXCLUDED}
             WHERE links.deleted_at >= $2::timestamptz AND ($3::timestamptz IS NULL OR links.deleted_at < $3::timestamptz)`,
        ),
        [JSON.stringify(unique.map(linkToJson)), window.from, window.to],
      );
      const events = res.rows.map((r) => ({
        kind: r.inserted ? 'link.created' : 'link.updated',
        link: linkToJson(rowToLink(r)),
      }));
      if (events.length > 0) await tx.query(OUTBOX_INSERT, [JSON.stringify(events)]);
      return new Map(res.rows.map((r) => [keyOf(r), r.inserted ? 'recreated' : 'undeleted'] as const));
    });
    return links.map((l) => back.get(keyOf(l)) ?? 'kept');
  }

  async *exportLinks(opts: { includeDeleted: boolean }): AsyncIterable<Link> {
    let after = ['', ''];
    for (;;) {
      const res = await this.db.query<LinkRow>(
        `SELECT ${LINK_COLUMNS} FROM links WHERE (code, domain) > ($1, $2)
         ${opts.includeDeleted ? '' : 'AND deleted_at IS NULL'}
         ORDER BY code, domain LIMIT 1000`,
        after,
      );
      for (const r of res.rows) yield rowToLink(r);
      const last = res.rows[res.rows.length - 1];
      if (last === undefined || res.rows.length < 1000) return;
      after = [last.code, last.domain];
    }
  }

  readChanges(afterSeq: number, limit: number): Promise<ChangeEvent[]> {
    return readChangesWith(this.db, afterSeq, limit);
  }

  /**
   * Restores changes read back from the change stream (`hop replay` into a database restored from
   * a base copy): each link as its last change in the batch left it, and every outbox row with its
   * own seq, in one transaction. Idempotent: a change already here is skipped.
   */
  async applyChanges(changes: readonly ChangeEvent[]): Promise<number> {
    if (changes.length === 0) return 0;
    const latest = new Map<string, Link>();
    for (const c of changes) latest.set(c.code, c.link);
    return this.db.transaction(async (tx) => {
      const fresh = await tx.query<{ seq: string }>(
        `INSERT INTO outbox (seq, kind, code, bucket, payload, created_at, published_at)
         SELECT (e->>'seq')::bigint, e->>'kind', e->'link'->>'code', (e->'link'->>'bucket')::smallint, e->'link',
           (e->>'at')::timestamptz, now()
         FROM jsonb_array_elements($1::jsonb) AS e
         ON CONFLICT (seq) DO NOTHING RETURNING seq::text`,
        [
          JSON.stringify(
            changes.map((c) => ({ seq: c.seq, kind: c.kind, at: c.at, link: linkToJson(c.link) })),
          ),
        ],
      );
      if (fresh.rows.length > 0) {
        await tx.query(
          `${insertFromRecordset('code').replace('ON CONFLICT (code, domain) DO NOTHING', `ON CONFLICT (code, domain) DO UPDATE SET ${UPDATE_FROM_EXCLUDED}`)}`,
          [JSON.stringify([...latest.values()].map(linkToJson))],
        );
      }
      // New outbox rows written here after the restore must come after the replayed ones.
      await tx.query("SELECT setval('outbox_seq_seq', GREATEST((SELECT max(seq) FROM outbox), 1))");
      return fresh.rows.length;
    });
  }

  /** The highest seq in this database's outbox (0 when empty): where a replay into it starts. */
  async lastChangeSeq(): Promise<number> {
    const res = await this.db.query<{ seq: string | null }>('SELECT max(seq)::text AS seq FROM outbox');
    return Number(res.rows[0]?.seq ?? 0);
  }

  // ---- Shlink's list, tags and find-if-exists (search-sql.ts) ---------------------------------
  async searchLinks(query: LinkSearch): Promise<{ items: SearchedLink[]; total: number }> {
    // Ordered by clicks, every match is read and ordered here: the embedded database's thread adds
    // the clicks it holds to each row after the statement ran (see SqlClient heldClicks).
    if (query.order.field === 'clicks' || query.order.field === 'humanClicks') {
      const all = await this.runSearch({ ...query, offset: 0, limit: null });
      const items = all.items.sort(searchOrder(query.order));
      const end = query.limit === null ? undefined : query.offset + query.limit;
      return { items: items.slice(query.offset, end), total: all.total };
    }
    return this.runSearch(query);
  }

  private async runSearch(query: LinkSearch): Promise<{ items: SearchedLink[]; total: number }> {
    const { sql, params } = searchLinksSql(query, LINK_COLUMNS, KEY_EXPR);
    const res = await this.db.query<LinkRow & { bot_clicks: string | number; total: string | number }>(
      sql,
      params,
      { heldClicks: true },
    );
    let total = Number(res.rows[0]?.total ?? 0);
    // A page past the end has no row to carry the count.
    if (res.rows.length === 0 && query.offset > 0)
      total = (await this.runSearch({ ...query, offset: 0, limit: 1 })).total;
    return {
      items: res.rows.map((r) => ({ ...withClicks(r), botClicks: Number(r.bot_clicks ?? 0) })),
      total,
    };
  }

  async findLinkByUrl(url: string, domain: string): Promise<Link | null> {
    const res = await this.db.query<LinkRow>(
      `SELECT ${LINK_COLUMNS} FROM links WHERE url = $1 AND domain = $2 AND deleted_at IS NULL
       ORDER BY created_at DESC LIMIT 1`,
      [url, domain],
    );
    const row = res.rows[0];
    return row === undefined ? null : rowToLink(row);
  }

  async tagStats(): Promise<TagStats[]> {
    const res = await this.db.query<{ tag: string; links: number; clicks: string; bot_clicks: string }>(
      TAG_STATS_SQL(KEY_EXPR),
      [],
      { heldClicks: true },
    );
    return tagStatsFromRows(res.rows);
  }

  /** Whether any live link has each tag (for a rename across shards). */
  async tagsInUse(tags: readonly string[]): Promise<Set<string>> {
    const res = await this.db.query<{ tag: string }>(
      `SELECT DISTINCT t.tag FROM links CROSS JOIN LATERAL unnest(tags) AS t(tag)
       WHERE deleted_at IS NULL AND tags && $1::text[] AND t.tag = ANY($1::text[])`,
      [[...tags]],
    );
    return new Set(res.rows.map((r) => r.tag));
  }

  async renameTag(from: string, to: string, now: Date): Promise<'renamed' | 'not_found' | 'conflict'> {
    const inUse = await this.tagsInUse([from, to]);
    if (!inUse.has(from)) return 'not_found';
    if (from !== to && inUse.has(to)) return 'conflict';
    await this.retag(`array_replace(tags, $1, $2)`, `tags @> ARRAY[$1]::text[]`, [from, to], now);
    return 'renamed';
  }

  deleteTags(tags: readonly string[], now: Date): Promise<number> {
    return this.retag(
      `ARRAY(SELECT t FROM unnest(tags) AS t WHERE t <> ALL($1::text[]))`,
      `tags && $1::text[]`,
      [[...tags]],
      now,
    );
  }

  /** Rewrites the tags of the live links that match, each change an outbox event, in one transaction. */
  private retag(set: string, where: string, params: unknown[], now: Date): Promise<number> {
    return this.db.transaction(async (tx) => {
      const at = `$${params.length + 1}`;
      const res = await tx.query<LinkRow>(
        `UPDATE links SET tags = ${set}, updated_at = ${at} WHERE deleted_at IS NULL AND ${where}
         RETURNING ${LINK_COLUMNS}`,
        [...params, now],
      );
      if (res.rows.length > 0) {
        const events = res.rows.map((r) => ({ kind: 'link.updated', link: linkToJson(rowToLink(r)) }));
        await tx.query(OUTBOX_INSERT, [JSON.stringify(events)]);
      }
      return res.rows.length;
    });
  }

  // ---- domains, robots and orphan visits (domain-sql.ts) --------------------------------------
  listDomains(): Promise<Domain[]> {
    return domainSql.listDomains(this.db);
  }
  createDomain(domain: Domain): Promise<boolean> {
    return domainSql.createDomain(this.db, domain);
  }
  updateDomain(host: string, patch: Partial<DomainRedirects>): Promise<Domain | null> {
    return domainSql.updateDomain(this.db, host, patch);
  }
  deleteDomain(host: string): Promise<boolean> {
    return domainSql.deleteDomain(this.db, host);
  }
  crawlableCodes(domain: string, limit: number): Promise<string[]> {
    return domainSql.crawlableCodes(this.db, domain, limit);
  }
  domainHasLinks(domain: string): Promise<boolean> {
    return domainSql.domainHasLinks(this.db, domain);
  }
  recordOrphans(batch: OrphanBatch): Promise<'applied' | 'duplicate'> {
    return domainSql.recordOrphans(this.db, batch);
  }
  orphanStats(query: OrphanQuery): Promise<OrphanStats> {
    return domainSql.orphanStats(this.db, query);
  }

  orphanVisits(query: OrphanListQuery): Promise<{ visits: OrphanVisit[]; total: number }> {
    return domainSql.orphanVisits(this.db, query);
  }

  deleteOrphanVisits(): Promise<number> {
    return domainSql.deleteOrphanVisits(this.db);
  }

  // ---- webhooks (webhook-sql.ts) -------------------------------------------------------------
  createWebhook(w: Webhook): Promise<void> {
    return webhookSql.createWebhook(this.db, w);
  }
  listWebhooks(): Promise<Webhook[]> {
    return webhookSql.listWebhooks(this.db);
  }
  getWebhook(id: string): Promise<Webhook | null> {
    return webhookSql.getWebhook(this.db, id);
  }
  deleteWebhook(id: string, now: Date): Promise<boolean> {
    return webhookSql.deleteWebhook(this.db, id, now);
  }
  fanOutChanges(stream: number, limit: number): Promise<number> {
    return this.fanOutFrom(stream, limit, (tx, after, n) => readChangesWith(tx, after, n));
  }
  /** The fan-out of a stream that may live in another database (a shard's outbox). */
  fanOutFrom(
    stream: number,
    limit: number,
    read: (tx: SqlClient, afterSeq: number, limit: number) => Promise<ChangeEvent[]>,
  ): Promise<number> {
    return webhookSql.fanOutChanges(this.db, stream, limit, read);
  }
  enqueueDeliveries(ds: readonly NewDelivery[]): Promise<void> {
    return webhookSql.enqueueDeliveries(this.db, ds);
  }
  claimDeliveries(now: Date, limit: number, lockMs: number): Promise<DueDelivery[]> {
    return webhookSql.claimDeliveries(this.db, now, limit, lockMs);
  }
  finishAttempt(id: number, outcome: DeliveryOutcome, next: Date | null, now: Date): Promise<void> {
    return webhookSql.finishAttempt(this.db, id, outcome, next, now);
  }
  listDeliveries(webhookId: string, limit: number): Promise<Delivery[]> {
    return webhookSql.listDeliveries(this.db, webhookId, limit);
  }

  async markChangesPublished(throughSeq: number): Promise<void> {
    await this.db.query('UPDATE outbox SET published_at = now() WHERE seq <= $1 AND published_at IS NULL', [
      throughSeq,
    ]);
  }

  async createApiKey(rec: ApiKeyRecord, keyHash: string): Promise<void> {
    await this.db.query(
      'INSERT INTO api_keys (id, name, prefix, key_hash, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6)',
      [rec.id, rec.name, rec.prefix, keyHash, rec.createdAt, rec.revokedAt],
    );
  }

  async findApiKeyByHash(keyHash: string): Promise<ApiKeyRecord | null> {
    const res = await this.db.query<KeyRow>(
      'SELECT id, name, prefix, created_at, revoked_at FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL',
      [keyHash],
    );
    const row = res.rows[0];
    return row === undefined ? null : rowToKey(row);
  }

  async listApiKeys(): Promise<ApiKeyRecord[]> {
    const res = await this.db.query<KeyRow>(
      'SELECT id, name, prefix, created_at, revoked_at FROM api_keys ORDER BY created_at, id',
    );
    return res.rows.map(rowToKey);
  }

  async revokeApiKey(idOrPrefix: string, now: Date): Promise<boolean> {
    const res = await this.db.query(
      'UPDATE api_keys SET revoked_at = $2 WHERE (id = $1 OR prefix = $1) AND revoked_at IS NULL RETURNING id',
      [idOrPrefix, now],
    );
    return res.rows.length > 0;
  }

  async countApiKeys(): Promise<number> {
    const res = await this.db.query<{ n: number }>('SELECT count(*)::int AS n FROM api_keys');
    return res.rows[0]?.n ?? 0;
  }

  recordClickBatch(batch: ClickBatch): Promise<'applied' | 'duplicate'> {
    return recordClickBatch(this.db, batch);
  }

  /** A sharded store's part of a batch: exactly once per bucket, fenced against bucket moves. */
  recordClickPart(batch: ClickBatch): Promise<'applied' | 'duplicate'> {
    return clickSql.recordClickPart(this.db, batch);
  }

  clickStats(query: StatsQuery): Promise<ClickStats> {
    return clickStats(this.db, query);
  }

  daySalts(days: readonly number[], fresh: () => string): Promise<Map<number, string>> {
    return daySalts(this.db, days, fresh);
  }

  writeRawClicks(id: string, events: readonly ClickEvent[]): Promise<'applied' | 'duplicate'> {
    return clickSql.writeRawClicks(this.db, id, events);
  }

  splitVisits(): Promise<number> {
    return visitSql.splitVisits(this.db);
  }

  visits(query: VisitQuery): Promise<VisitPage> {
    return visitSql.readVisits(this.db, query);
  }

  deleteVisits(keys: readonly string[]): Promise<number> {
    return visitSql.deleteVisits(this.db, keys);
  }

  beginFold(fold: { id: string; parts: number }, batchIds: readonly string[]): Promise<void> {
    return clickSql.beginFold(this.db, fold, batchIds);
  }

  endFold(foldId: string): Promise<void> {
    return clickSql.endFold(this.db, foldId);
  }

  get databaseThread(): DatabaseThread | null {
    return this.db.thread ?? null;
  }

  unfoldedClicks(): Promise<UnfoldedBatch[]> {
    return clickSql.unfoldedClicks(this.db);
  }

  maintainClicks(now: number, retentionDays: number): Promise<ClickMaintenance> {
    return maintainClicks(this.db, now, retentionDays);
  }
}

interface KeyRow {
  id: string;
  name: string;
  prefix: string;
  created_at: Date;
  revoked_at: Date | null;
}

function rowToKey(r: KeyRow): ApiKeyRecord {
  return { id: r.id, name: r.name, prefix: r.prefix, createdAt: r.created_at, revokedAt: r.revoked_at };
}

function byIdempotencyKey(a: { req: NewLink }, b: { req: NewLink }): number {
  const ka = a.req.idempotency === null ? '' : `${a.req.idempotency.scope}\u0000${a.req.idempotency.key}`;
  const kb = b.req.idempotency === null ? '' : `${b.req.idempotency.scope}\u0000${b.req.idempotency.key}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}
