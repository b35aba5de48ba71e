// One bucket's rows from one database to another, by difference (DESIGN §13). Each table's rows of
// the bucket are grouped into units (a link, an idempotency key, a link's click packs, …); both
// sides hash every unit, and only the units that differ are rewritten on the target. So the first
// pass copies everything, a second catches up what changed meanwhile, a pass under the write
// fence leaves nothing behind, and a re-run after a crash converges instead of duplicating. The
// same hashes, compared once more, are the verification. Runs on PGlite and PostgreSQL 15 alike.
import { createHash } from 'node:crypto';
import { tailCode } from '../domain/visits.ts';
import type { SqlClient } from '../storage/sql/sql-client.ts';

/** A link's click rows are keyed by its link key: the code, or "domain/code". */
const KEY_EXPR = `CASE WHEN l.domain = '' THEN l.code ELSE l.domain || '/' || l.code END`;

/** Where a bucket's rows are: the real tables, or the staging copy a taking shard fills first. */
export type Place = 'public' | 'hop_staging';

interface TableSpec {
  readonly table: string;
  /** SQL for a row's unit, over alias t. */
  readonly unit: string;
  /** Which rows of `place` are the bucket's, over alias t, with `args` as $1…. */
  readonly where: (place: Place) => string;
  readonly args: (bucket: number) => unknown[];
}

const justBucket = (b: number) => [b];
// The keys as an array, not `IN (subquery)`: the planner then finds each key's rows by the code
// index; with IN it hashed the bucket's keys and scanned the whole click table, for every bucket.
const bucketKeys = (place: Place) => `ARRAY(SELECT ${KEY_EXPR} FROM ${place}.links l WHERE l.bucket = $1)`;
const ofBucketKeys = (place: Place) => `t.code = ANY(${bucketKeys(place)})`;

/** In copy order: the click tables find the bucket's keys through its links, so links go first. */
export const BUCKET_TABLES: readonly TableSpec[] = [
  { table: 'links', unit: 't.code || chr(1) || t.domain', where: () => 't.bucket = $1', args: justBucket },
  {
    table: 'idempotency_keys',
    unit: 't.scope || chr(1) || t.key',
    where: () => 't.bucket = $1',
    args: justBucket,
  },
  { table: 'click_packs', unit: 't.code', where: ofBucketKeys, args: justBucket },
  { table: 'click_packs_daily', unit: 't.code', where: ofBucketKeys, args: justBucket },
  {
    // A link's own visit rows, and the bucket's shared row of links with few visits.
    table: 'click_visits',
    unit: 't.code',
    where: (place) => `t.code = ANY(${bucketKeys(place)} || $2::text)`,
    args: (b) => [b, tailCode(b)],
  },
];

export interface TableDigest {
  readonly table: string;
  readonly rows: number;
  readonly units: number;
  /** md5 over the sorted unit hashes: equal on both sides means the same rows. */
  readonly checksum: string;
}

export interface BucketSyncResult {
  /** Rows written on the target, per table. */
  readonly written: Record<string, number>;
  /** Rows removed from the target (it held rows the source does not), per table. */
  readonly removed: Record<string, number>;
  /** Ledger entries (batch ids) the target was given. */
  readonly ledger: number;
}

// Rows travel as JSON text, never parsed in JavaScript: bigint sums and timestamps arrive exact.
const CHUNK_UNITS = 500;

interface UnitRow {
  unit: string;
  hash: string;
  n: number;
}

/** Hashes are of each row's text form, with timestamps in UTC so both engines print them alike. */
async function unitHashes(
  db: SqlClient,
  spec: TableSpec,
  bucket: number,
  place: Place = 'public',
): Promise<Map<string, UnitRow>> {
  return db.transaction(async (tx) => {
    await tx.query(`SET LOCAL TimeZone = 'UTC'`);
    const res = await tx.query<UnitRow>(
      `SELECT ${spec.unit} AS unit, md5(string_agg(md5(t::text), '' ORDER BY md5(t::text))) AS hash,
         count(*)::int AS n
       FROM ${place}.${spec.table} t WHERE ${spec.where(place)} GROUP BY 1`,
      spec.args(bucket),
    );
    return new Map(res.rows.map((r) => [r.unit, r]));
  });
}

/** Makes the target's rows of `bucket` equal the source's, table by table; then its ledger. */
export async function syncBucket(
  from: SqlClient,
  to: SqlClient,
  bucket: number,
  opts: { ledgerSince?: Date | null; into?: Place } = {},
): Promise<BucketSyncResult> {
  const into = opts.into ?? 'public';
  const written: Record<string, number> = {};
  const removed: Record<string, number> = {};
  for (const spec of BUCKET_TABLES) {
    const [src, dst] = await Promise.all([
      unitHashes(from, spec, bucket),
      unitHashes(to, spec, bucket, into),
    ]);
    const copy = [...src.values()].filter((u) => dst.get(u.unit)?.hash !== u.hash).map((u) => u.unit);
    const drop = [...dst.keys()].filter((u) => !src.has(u));
    written[spec.table] = 0;
    removed[spec.table] = [...dst.values()].filter((u) => !src.has(u.unit)).reduce((n, u) => n + u.n, 0);
    if (copy.length === 0 && drop.length === 0) continue;
    const args = spec.args(bucket);
    const unitsArg = `$${args.length + 1}::text[]`;
    for (let i = 0; i < Math.max(copy.length, drop.length); i += CHUNK_UNITS) {
      const copyPart = copy.slice(i, i + CHUNK_UNITS);
      const dropPart = drop.slice(i, i + CHUNK_UNITS);
      const rows =
        copyPart.length === 0
          ? null
          : (
              await from.query<{ rows: string | null }>(
                `SELECT json_agg(t)::text AS rows FROM public.${spec.table} t
               WHERE ${spec.where('public')} AND ${spec.unit} = ANY(${unitsArg})`,
                [...args, copyPart],
              )
            ).rows[0]?.rows;
      await to.transaction(async (tx) => {
        await tx.query(`SET LOCAL hop.mover = 'on'`);
        await tx.query(
          `DELETE FROM ${into}.${spec.table} t WHERE ${spec.where(into)} AND ${spec.unit} = ANY(${unitsArg})`,
          [...args, [...copyPart, ...dropPart]],
        );
        if (rows !== null && rows !== undefined) {
          const ins = await tx.query(
            `INSERT INTO ${into}.${spec.table} SELECT * FROM json_populate_recordset(NULL::${into}.${spec.table}, $1::json)`,
            [rows],
          );
          written[spec.table] = (written[spec.table] ?? 0) + ins.affectedRows;
        }
      });
    }
  }
  const ledger = await syncLedger(from, to, bucket, opts.ledgerSince ?? null);
  return { written, removed, ledger };
}

// How far back the ledger moves with a bucket: a batch is replayed within minutes (a worker's
// pending entries are claimed after seconds); an hour is far beyond that.
export const LEDGER_WINDOW_MS = 3600_000;

/**
 * The exactly-once ledger moves with its bucket: every batch the source applied for this bucket
 * (recently) is marked applied for it on the target, so a batch replayed after the move adds
 * nothing twice. Rows without a bucket list (the embedded database's, older rows) cover the whole
 * batch, so they count for every bucket.
 */
async function syncLedger(
  from: SqlClient,
  to: SqlClient,
  bucket: number,
  since: Date | null,
): Promise<number> {
  const after = since ?? new Date(Date.now() - LEDGER_WINDOW_MS);
  const src = await from.query<{ batch_id: string; applied_at: Date }>(
    `SELECT batch_id::text AS batch_id, applied_at FROM click_batches
     WHERE applied_at >= $2 AND (buckets IS NULL OR $1 = ANY(buckets))`,
    [bucket, after],
  );
  if (src.rows.length === 0) return 0;
  const res = await to.query(
    `INSERT INTO click_batches (batch_id, applied_at, buckets)
     SELECT u.id, u.at, ARRAY[$1::smallint] FROM unnest($2::uuid[], $3::timestamptz[]) AS u(id, at)
     ON CONFLICT (batch_id) DO UPDATE SET buckets = click_batches.buckets || $1::smallint
     WHERE click_batches.buckets IS NOT NULL AND NOT ($1 = ANY(click_batches.buckets))`,
    [bucket, src.rows.map((r) => r.batch_id), src.rows.map((r) => r.applied_at)],
  );
  return res.affectedRows;
}

/** Per table: the bucket's rows, units and checksum (the verification both sides print). */
export async function bucketDigest(
  db: SqlClient,
  bucket: number,
  place: Place = 'public',
): Promise<TableDigest[]> {
  const out: TableDigest[] = [];
  for (const spec of BUCKET_TABLES) {
    const units = await unitHashes(db, spec, bucket, place);
    const sorted = [...units.values()].map((u) => `${u.unit}\u0000${u.hash}`).sort();
    out.push({
      table: spec.table,
      rows: [...units.values()].reduce((n, u) => n + u.n, 0),
      units: units.size,
      checksum: md5(sorted.join('\n')),
    });
  }
  return out;
}

/** The tables whose digests differ, as "table: rows a≠b" lines; empty when the two are the same. */
export function digestDifferences(a: readonly TableDigest[], b: readonly TableDigest[]): string[] {
  return a.flatMap((x, i) => {
    const y = b[i];
    if (y !== undefined && y.checksum === x.checksum && y.rows === x.rows) return [];
    return [
      `${x.table}: ${x.rows} rows (checksum ${x.checksum.slice(0, 8)}) vs ${y?.rows ?? 0} (${y?.checksum.slice(0, 8) ?? '-'})`,
    ];
  });
}

/**
 * `sql` with its $1… replaced by the literals of `args`: the fence's statements travel as one
 * script, one round trip per database while writers wait. Only integers, integer arrays and
 * strings Hop itself made (a bucket's tail code) are ever inlined.
 */
export function inlineArgs(sql: string, args: readonly unknown[]): string {
  const literal = (v: unknown): string => {
    if (typeof v === 'number' && Number.isInteger(v)) return String(v);
    if (Array.isArray(v) && v.every((x) => Number.isInteger(x))) return `'{${v.join(',')}}'`;
    if (typeof v === 'string') return `'${v.replaceAll("'", "''")}'`;
    throw new Error(`cannot inline ${typeof v} into SQL`);
  };
  return sql.replace(/\$(\d+)/g, (_, n: string) => literal(args[Number(n) - 1]));
}

/** A script removing a bucket's rows from `place` (run where hop.mover is set). */
export function dropBucketSql(bucket: number, place: Place): string {
  // Click rows first: they find the bucket's keys through its links.
  return [...BUCKET_TABLES]
    .reverse()
    .map((spec) =>
      inlineArgs(`DELETE FROM ${place}.${spec.table} t WHERE ${spec.where(place)};`, spec.args(bucket)),
    )
    .join('\n');
}

/**
 * Locks a bucket's rows that writers update in place (links, idempotency records). Such a writer
 * locks its row before the row trigger asks for the bucket's lock; the fence, holding that lock,
 * would then wait for the row to delete it: a cycle. Taken right after the bucket's lock and
 * under a lock timeout, a wait here ends the try instead, and the writer finishes first.
 */
export function lockUpdatableRowsSql(bucket: number): string {
  return BUCKET_TABLES.filter((spec) => spec.table === 'links' || spec.table === 'idempotency_keys')
    .map((spec) =>
      inlineArgs(
        `SELECT count(*) FROM (SELECT 1 FROM public.${spec.table} t WHERE ${spec.where('public')} FOR UPDATE) x;`,
        spec.args(bucket),
      ),
    )
    .join('\n');
}

/** A script moving the staged copy of a bucket into the real tables (run where hop.mover is set). */
export function promoteStagedSql(bucket: number): string {
  const inserts = BUCKET_TABLES.map((spec) =>
    inlineArgs(
      `INSERT INTO public.${spec.table} SELECT * FROM hop_staging.${spec.table} t WHERE ${spec.where('hop_staging')};`,
      spec.args(bucket),
    ),
  );
  return [dropBucketSql(bucket, 'public'), ...inserts, dropBucketSql(bucket, 'hop_staging')].join('\n');
}

/** Removes a bucket's rows from `place`, in a transaction of its own. */
export async function dropBucketRows(db: SqlClient, bucket: number, place: Place): Promise<void> {
  await db.transaction((tx) => tx.exec(`SET LOCAL hop.mover = 'on';\n${dropBucketSql(bucket, place)}`));
}

function md5(text: string): string {
  return createHash('md5').update(text).digest('hex');
}
