// The embedded change stream (the outbox, DESIGN §6) moved into a cluster. Each change goes to the
// shard that owns its link's bucket, with its own seq: a shard's stream then holds the history of
// exactly the links it holds, as if they had always lived there (what `hop replay --into` a shard
// and a later bucket move's catch-up read), and seqs stay unique and ordered across shards (each
// shard's stream has gaps where other shards' changes were, which no reader minds). Every shard's
// sequence is set past the last moved seq, so new changes follow the history.
// The history is marked published: Redis never saw it from the cluster, and relaying a million old
// changes would only invalidate caches that hold nothing yet. Webhooks keep their place: the
// embedded fan-out had delivered through seq E, so each shard's offset is its newest moved change at
// or below E, and the changes after E (not yet fanned out) are delivered from the cluster.
import type { ShardMap } from '../domain/shard-map.ts';
import type { SqlClient } from '../storage/sql/sql-client.ts';

const CHUNK_ROWS = 10_000;
/** A change's shard, over the outbox row's bucket, with the owners as $1. */
const OWNER = '($1::int[])[bucket + 1]';

export interface StreamMove {
  /** Changes written on the shards by this run (a re-run writes none). */
  readonly copied: number;
  readonly changes: number;
  readonly lastSeq: number;
}

export async function moveChangeStream(
  from: SqlClient,
  shards: readonly SqlClient[],
  map: ShardMap,
): Promise<StreamMove> {
  const owners = [...map.owners];
  const top = await from.query<{ n: number; last: string | null }>(
    'SELECT count(*)::int AS n, max(seq)::text AS last FROM outbox',
  );
  const changes = top.rows[0]?.n ?? 0;
  const lastSeq = Number(top.rows[0]?.last ?? 0);
  // Chunk bounds: every CHUNK_ROWS-th seq, then the last.
  const bounds = (
    await from.query<{ seq: string }>(
      `SELECT seq::text AS seq FROM (SELECT seq, row_number() OVER (ORDER BY seq) AS i FROM outbox) x
       WHERE i % ${CHUNK_ROWS} = 0 ORDER BY seq`,
    )
  ).rows.map((r) => Number(r.seq));
  if (bounds.at(-1) !== lastSeq) bounds.push(lastSeq);
  let copied = 0;
  let lo = 0;
  for (const hi of bounds) {
    const want = await from.query<{ shard: number; n: number }>(
      `SELECT ${OWNER} AS shard, count(*)::int AS n FROM outbox WHERE seq > $2 AND seq <= $3 GROUP BY 1`,
      [owners, lo, hi],
    );
    await Promise.all(
      want.rows.map(async ({ shard, n }) => {
        const to = shards[shard]!;
        const have = await to.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM outbox WHERE seq > $1 AND seq <= $2',
          [lo, hi],
        );
        if (have.rows[0]?.n === n) return;
        const rows = (
          await from.query<{ rows: string | null }>(
            `SELECT json_agg(t)::text AS rows FROM (
               SELECT seq, kind, code, bucket, payload, created_at, coalesce(published_at, now()) AS published_at
               FROM outbox WHERE seq > $2 AND seq <= $3 AND ${OWNER} = $4 ORDER BY seq) t`,
            [owners, lo, hi, shard],
          )
        ).rows[0]?.rows;
        if (rows === null || rows === undefined) return;
        const ins = await to.query(
          `INSERT INTO outbox (seq, kind, code, bucket, payload, created_at, published_at)
           SELECT seq, kind, code, bucket, payload, created_at, published_at
           FROM json_populate_recordset(NULL::outbox, $1::json) ON CONFLICT (seq) DO NOTHING`,
          [rows],
        );
        copied += ins.affectedRows;
      }),
    );
    lo = hi;
  }
  await Promise.all(shards.map((db) => sequencePast(db, 'outbox_seq_seq', lastSeq)));
  await keepWebhookOffsets(from, shards, owners);
  return { copied, changes, lastSeq };
}

/** Moves a serial column's sequence past `seq` (never back). */
export async function sequencePast(db: SqlClient, sequence: string, seq: number): Promise<void> {
  await db.query(
    `SELECT setval('public.${sequence}', GREATEST($1::bigint, 1,
       coalesce((SELECT last_value FROM pg_sequences WHERE schemaname = 'public' AND sequencename = $2), 1)))`,
    [seq, sequence],
  );
}

async function keepWebhookOffsets(from: SqlClient, shards: readonly SqlClient[], owners: number[]) {
  const done = await from.query<{ seq: string }>(
    'SELECT seq::text AS seq FROM webhook_offsets WHERE stream = 0',
  );
  const through = Number(done.rows[0]?.seq ?? 0);
  const per = await from.query<{ shard: number; seq: string }>(
    `SELECT ${OWNER} AS shard, max(seq)::text AS seq FROM outbox WHERE seq <= $2 GROUP BY 1`,
    [owners, through],
  );
  const offsets = shards.map((_, i) => Number(per.rows.find((r) => r.shard === i)?.seq ?? 0));
  await shards[0]!.query(
    `INSERT INTO webhook_offsets (stream, seq) SELECT s, o FROM unnest($1::int[], $2::bigint[]) AS u(s, o)
     ON CONFLICT (stream) DO UPDATE SET seq = GREATEST(webhook_offsets.seq, excluded.seq)`,
    [offsets.map((_, i) => i), offsets],
  );
}

export interface StreamCheck {
  readonly shard: number;
  readonly embedded: number;
  readonly cluster: number;
  readonly same: boolean;
}

/**
 * Per shard: the embedded changes it owns against the shard's changes up to the last moved seq,
 * counted and summed over a hash of each row (all but published_at), which needs no sort.
 */
export async function checkChangeStream(
  from: SqlClient,
  shards: readonly SqlClient[],
  map: ShardMap,
): Promise<StreamCheck[]> {
  const owners = [...map.owners];
  const hash = `sum(('x' || substr(md5(row(seq, kind, code, bucket, payload, created_at)::text), 1, 15))::bit(60)::bigint)::text`;
  const digest = (db: SqlClient, sql: string, args: unknown[]) =>
    db.transaction(async (tx) => {
      await tx.query(`SET LOCAL TimeZone = 'UTC'`);
      return (await tx.query<{ shard: number; n: number; h: string | null }>(sql, args)).rows;
    });
  const last = Number(
    (await from.query<{ s: string | null }>('SELECT max(seq)::text AS s FROM outbox')).rows[0]?.s ?? 0,
  );
  const mine = await digest(
    from,
    `SELECT ${OWNER} AS shard, count(*)::int AS n, ${hash} AS h FROM outbox GROUP BY 1`,
    [owners],
  );
  return Promise.all(
    shards.map(async (db, shard) => {
      const [theirs] = await digest(
        db,
        `SELECT ${shard} AS shard, count(*)::int AS n, ${hash} AS h FROM outbox WHERE seq <= $1`,
        [last],
      );
      const ours = mine.find((r) => r.shard === shard);
      const a = { n: ours?.n ?? 0, h: ours?.h ?? null };
      const b = { n: theirs?.n ?? 0, h: theirs?.h ?? null };
      return { shard, embedded: a.n, cluster: b.n, same: a.n === b.n && a.h === b.h };
    }),
  );
}
