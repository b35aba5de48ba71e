// Moving buckets between shards online (DESIGN §13). Per bucket, from shard S to shard T:
//  1. T refuses writes of the bucket (a buckets_gone row) while it stages a copy of S's rows in
//     hop_staging, twice: a full pass, then a catch-up pass of what changed meanwhile.
//  2. S marks the bucket moving (its writers of it take the bucket's lock shared from then on) and
//     waits out older transactions. The fence: S's transaction takes the lock exclusively, so the
//     bucket's writers wait; a last pass copies what is left and a second must find nothing (the
//     verification: per table, per unit, rows and hashes equal); T moves the staged rows into its
//     real tables (still refusing writes); then S, in the transaction that holds the fence,
//     deletes its rows, marks the bucket gone to T and records the next map version. Its commit
//     ends the fence: waiting writers meet "gone" and re-route.
//  3. T stops refusing the bucket and records the map; every other shard records it; Hops are
//     notified (and poll). A Hop still on the old map is refused at S and re-routes.
// Every step is idempotent and recorded in bucket_moves on shard 0, so a mover killed anywhere
// is finished by the next run; an abort before the fence drops T's staged copy, and S is untouched.
import pg from 'pg';
import { applyMoves, type PlannedMove } from '../domain/reshard-plan.ts';
import type { ShardMap } from '../domain/shard-map.ts';
import { MAP_CHANNEL } from '../storage/postgres/map-watch.ts';
import type { PgPool } from '../storage/postgres/pg-pool.ts';
import { splitVisits } from '../storage/sql/visit-sql.ts';
import {
  dropBucketRows,
  dropBucketSql,
  inlineArgs,
  lockUpdatableRowsSql,
  promoteStagedSql,
  syncBucket,
} from './bucket-sync.ts';
import { INSERT_MAP, mapArgs, newestMap, type ReshardCluster } from './reshard-cluster.ts';

// The same lock key as the links trigger (migration 013) and recordClickPart.
const BUCKET_LOCK = 7_243_003;
// One mover per cluster at a time.
const MOVER_LOCK = 7_243_004;
// How long one try at the fence's lock waits (PostgreSQL's deadlock_timeout is 1 s); then again.
const FENCE_LOCK_WAIT_MS = 50;
const LOCK_NOT_AVAILABLE = '55P03';

export interface MoveOptions {
  readonly log: (line: string) => void;
  /** Longest the fence waits for writers in flight before it gives up (and retries later). */
  readonly fenceLockTimeoutMs?: number;
  /** Called after each step: tests stop a mover at a chosen point this way. */
  readonly afterStep?: (step: 'copied' | 'moved', bucket: number) => Promise<void> | void;
}

export interface MoveReport {
  readonly moved: number;
  readonly aborted: number;
  readonly rowsCopied: number;
  readonly fenceMs: number[];
  readonly seconds: number;
}

interface MoveRow {
  id: string;
  bucket: number;
  from_shard: number;
  to_shard: number;
  state: 'planned' | 'copied' | 'moved' | 'aborted';
}

/** Holds the cluster's mover lock on a connection of its own for as long as the run lasts. */
export async function takeMoverLock(c: ReshardCluster): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: c.primaries[0]!.url, application_name: 'hop-mover' });
  await client.connect();
  const got = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [MOVER_LOCK]);
  if (got.rows[0]?.ok !== true) {
    await client.end();
    throw new Error('another mover is running on this cluster (hop shards status lists its moves)');
  }
  return client;
}

/** Records `planned` (skipping buckets with a move open), then runs every open move in order. */
export async function runMoves(
  c: ReshardCluster,
  planned: readonly PlannedMove[],
  opts: MoveOptions,
): Promise<MoveReport> {
  const lock = await takeMoverLock(c);
  try {
    const catalog = c.primaries[0]!;
    for (const m of planned) {
      await catalog.query(
        `INSERT INTO bucket_moves (bucket, from_shard, to_shard, state) VALUES ($1, $2, $3, 'planned')
         ON CONFLICT (bucket) WHERE state IN ('planned', 'copied') DO NOTHING`,
        [m.bucket, m.from, m.to],
      );
    }
    const report = await runOpenMoves(c, opts);
    if (report.moved > 0) await vacuumAfterMoves(c, opts);
    return report;
  } finally {
    await lock.end().catch(() => {});
  }
}

// The tables a move thins on the giving shard (and churns in staging on the taking one).
const MOVED_TABLES = [
  'links',
  'idempotency_keys',
  'click_packs',
  'click_packs_daily',
  'click_visits',
  'hop_staging.links',
  'hop_staging.idempotency_keys',
  'hop_staging.click_packs',
  'hop_staging.click_packs_daily',
  'hop_staging.click_visits',
];

/**
 * After a rebalance a giving shard holds its moved rows as dead tuples (a third of its links for
 * 2 → 3 shards). Left to autovacuum, that work lands later, in the middle of the traffic the new
 * shard was added for; a plain VACUUM now (online: it blocks no reads or writes) does it at once.
 */
async function vacuumAfterMoves(c: ReshardCluster, opts: MoveOptions): Promise<void> {
  const started = Date.now();
  for (const p of c.primaries) await p.query(`VACUUM (ANALYZE) ${MOVED_TABLES.join(', ')}`);
  opts.log(`vacuumed the moved tables on every shard in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

async function runOpenMoves(c: ReshardCluster, opts: MoveOptions): Promise<MoveReport> {
  const started = Date.now();
  const catalog = c.primaries[0]!;
  const open = await catalog.query<MoveRow>(
    `SELECT id::text AS id, bucket, from_shard, to_shard, state FROM bucket_moves
     WHERE state IN ('planned', 'copied') ORDER BY id`,
  );
  let moved = 0;
  let aborted = 0;
  let rowsCopied = 0;
  const fenceMs: number[] = [];
  for (const [i, m] of open.rows.entries()) {
    const out = await moveOne(c, m, opts);
    if (out.kind === 'moved') {
      moved++;
      rowsCopied += out.rows;
      if (out.fenceMs !== null) fenceMs.push(out.fenceMs);
    } else aborted++;
    if ((i + 1) % 32 === 0 || i + 1 === open.rows.length) {
      opts.log(
        `moves: ${i + 1}/${open.rows.length} (${moved} moved, ${aborted} aborted), ${rowsCopied} rows, ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
    }
  }
  return { moved, aborted, rowsCopied, fenceMs, seconds: (Date.now() - started) / 1000 };
}

type Outcome = { kind: 'moved'; rows: number; fenceMs: number | null } | { kind: 'aborted' };

async function moveOne(c: ReshardCluster, m: MoveRow, opts: MoveOptions): Promise<Outcome> {
  const catalog = c.primaries[0]!;
  const S = c.primaries[m.from_shard];
  const T = c.primaries[m.to_shard];
  const b = m.bucket;
  const map = await newestMap(c.primaries);
  if (map.owners[b] === m.to_shard) {
    // Killed after the fence committed: finish the publication.
    if (T === undefined) throw new Error(`shard ${m.to_shard} is not open`);
    await finish(c, m, map, null);
    return { kind: 'moved', rows: 0, fenceMs: null };
  }
  if (S === undefined || T === undefined || map.owners[b] !== m.from_shard) {
    await setState(catalog, m.id, 'aborted');
    opts.log(`bucket ${b}: no longer on shard ${m.from_shard} as planned; move dropped`);
    return { kind: 'aborted' };
  }
  // T refuses the bucket's writes until the move's last step (a Hop on an old map never sends
  // them there; one on the new map before T is ready waits).
  await T.query(
    `INSERT INTO buckets_gone (bucket, to_shard, map_version) VALUES ($1, $2, $3) ON CONFLICT (bucket) DO NOTHING`,
    [b, m.from_shard, map.version],
  );
  const mark = (await S.query<{ t: Date }>('SELECT now() - interval $$5 seconds$$ AS t')).rows[0]!.t;
  let rows = 0;
  if (m.state === 'planned') {
    for (let pass = 0; pass < 2; pass++) {
      const r = await syncBucket(S, T, b, { into: 'hop_staging' });
      rows += Object.values(r.written).reduce((a, n) => a + n, 0);
    }
    await setState(catalog, m.id, 'copied', rows);
    await opts.afterStep?.('copied', b);
  }
  if ((await stateOf(catalog, m.id)) === 'aborted') {
    await dropBucketRows(T, b, 'hop_staging');
    await S.query('DELETE FROM buckets_moving WHERE bucket = $1', [b]);
    return { kind: 'aborted' };
  }
  // Raw click batches hold visits of many buckets and stay on S: split them into visit rows (which
  // move with their bucket) now, so the fence has little left to split.
  await splitAllVisits(S, false);
  // From here on S's writers of the bucket take its lock; those already under way are waited out.
  await S.query('INSERT INTO buckets_moving (bucket) VALUES ($1) ON CONFLICT (bucket) DO NOTHING', [b]);
  await waitOutOlderTransactions(S);
  const next = applyMoves(map, [{ bucket: b, from: m.from_shard, to: m.to_shard }]);
  const fenceMs = await fence(S, T, b, m.to_shard, next, mark, opts.fenceLockTimeoutMs ?? 5_000);
  await finish(c, m, next, fenceMs);
  await opts.afterStep?.('moved', b);
  return { kind: 'moved', rows, fenceMs };
}

/**
 * Step 2; the milliseconds the bucket's writers could be held: from the first request for the
 * lock (writers queue behind a pending request too) to T's release.
 */
async function fence(
  S: PgPool,
  T: PgPool,
  b: number,
  to: number,
  next: ShardMap,
  mark: Date,
  lockTimeoutMs: number,
): Promise<number> {
  const began = performance.now();
  const fenceOnce = () =>
    S.transaction(async (sx) => {
      // A queued exclusive request makes later shared requests queue behind it. A writer of the
      // bucket that holds the outbox's commit-order lock while it waits would then close a cycle
      // with one that holds the bucket's lock and wants the outbox's: so the request gives up
      // quickly (well before the deadlock detector's second) and is made again.
      await sx.query(`SET LOCAL lock_timeout = '${FENCE_LOCK_WAIT_MS}ms'`);
      await sx.query('SELECT pg_advisory_xact_lock($1, $2)', [BUCKET_LOCK, b]);
      // Still under the short timeout: a writer holding one of these rows may be waiting for the
      // bucket's lock (its row trigger asks after locking the row), so this try gives way to it.
      await sx.exec(lockUpdatableRowsSql(b));
      await sx.query('SET LOCAL lock_timeout = 0');
      // The bucket's writers are held, so no raw batch with its visits can arrive now: split what
      // is there (waiting for a split under way elsewhere), and its visits are in the rows copied.
      await splitAllVisits(S, true);
      // The last pass; a second one must find nothing left to copy: that is the verification.
      for (let pass = 0; ; pass++) {
        const r = await syncBucket(sx, T, b, { into: 'hop_staging', ledgerSince: mark });
        const changed =
          Object.values(r.written).some((n) => n > 0) || Object.values(r.removed).some((n) => n > 0);
        if (!changed) break;
        if (pass >= 1) throw new Error(`bucket ${b}: the copy still differs from the source under the fence`);
      }
      // One script per database from here: writers are waiting.
      await T.transaction((tx) => tx.exec(`SET LOCAL hop.mover = 'on';\n${promoteStagedSql(b)}`));
      await sx.exec(
        [
          `SET LOCAL hop.mover = 'on';`,
          dropBucketSql(b, 'public'),
          inlineArgs('DELETE FROM buckets_moving WHERE bucket = $1;', [b]),
          inlineArgs(
            `INSERT INTO buckets_gone (bucket, to_shard, map_version) VALUES ($1, $2, $3)
             ON CONFLICT (bucket) DO UPDATE SET to_shard = excluded.to_shard, map_version = excluded.map_version, at = now();`,
            [b, to, next.version],
          ),
          `${inlineArgs(INSERT_MAP, mapArgs(next))};`,
        ].join('\n'),
      );
    });
  const deadline = Date.now() + lockTimeoutMs;
  for (let attempt = 0; ; attempt++) {
    try {
      await fenceOnce();
      break;
    } catch (err) {
      if ((err as { code?: unknown }).code !== LOCK_NOT_AVAILABLE || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, Math.min(5 * 2 ** attempt, 50)));
    }
  }
  await T.transaction((tx) =>
    tx.exec(
      `${inlineArgs('DELETE FROM buckets_gone WHERE bucket = $1;', [b])}\n${inlineArgs(INSERT_MAP, mapArgs(next))};`,
    ),
  );
  return performance.now() - began;
}

async function splitAllVisits(db: PgPool, wait: boolean): Promise<void> {
  while ((await splitVisits(db, { wait })) > 0) {}
}

/**
 * Waits until every transaction open on the database when this was called has ended (as CREATE
 * INDEX CONCURRENTLY waits): one that began before the bucket was marked moving may have passed
 * its check without taking the bucket's lock. Reads pg_locks, which needs no privilege.
 */
async function waitOutOlderTransactions(db: PgPool, timeoutMs = 60_000): Promise<void> {
  const open = await db.query<{ vxids: string[] | null }>(
    `SELECT array_agg(l.virtualxid) AS vxids FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'virtualxid' AND l.granted AND l.pid <> pg_backend_pid()
       AND a.datname = current_database()`,
  );
  const vxids = open.rows[0]?.vxids ?? [];
  const deadline = Date.now() + timeoutMs;
  while (vxids.length > 0) {
    const left = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'virtualxid' AND virtualxid = ANY($1::text[])`,
      [vxids],
    );
    if ((left.rows[0]?.n ?? 0) === 0) return;
    if (Date.now() > deadline) {
      throw new Error(
        'a transaction older than the move is still open on the giving shard; the move waits for it',
      );
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Step 3: the map on every shard, T taking writes, the move recorded, Hops told. */
async function finish(c: ReshardCluster, m: MoveRow, map: ShardMap, fenceMs: number | null): Promise<void> {
  const T = c.primaries[m.to_shard]!;
  await T.query('DELETE FROM buckets_gone WHERE bucket = $1', [m.bucket]);
  await publishMap(c, map);
  await c.primaries[0]!.query(
    `UPDATE bucket_moves SET state = 'moved', map_version = $2, fence_ms = coalesce($3, fence_ms), updated_at = now()
     WHERE id = $1`,
    [m.id, map.version, fenceMs],
  );
}

/** The newest map on every shard, and a notification to every Hop listening. */
export async function publishMap(c: ReshardCluster, map: ShardMap): Promise<void> {
  for (const p of c.primaries) await p.query(INSERT_MAP, mapArgs(map));
  await c.primaries[0]!.query('SELECT pg_notify($1, $2)', [MAP_CHANNEL, String(map.version)]);
}

async function setState(catalog: PgPool, id: string, state: MoveRow['state'], rows = 0): Promise<void> {
  await catalog.query(
    `UPDATE bucket_moves SET state = $2, rows_copied = rows_copied + $3, updated_at = now()
     WHERE id = $1 AND state <> 'aborted'`,
    [id, state, rows],
  );
}

async function stateOf(catalog: PgPool, id: string): Promise<string | undefined> {
  return (await catalog.query<{ state: string }>('SELECT state FROM bucket_moves WHERE id = $1', [id]))
    .rows[0]?.state;
}

/**
 * Stops the moves not yet fenced: marked aborted (a running mover sees it before its fence), and,
 * when no mover runs, the staged copies dropped, along with any rows a killed fence had promoted
 * on a shard that does not own them. The old placement keeps serving throughout.
 */
export async function abortMoves(c: ReshardCluster): Promise<{ aborted: number; cleaned: boolean }> {
  const catalog = c.primaries[0]!;
  const gone = await catalog.query<MoveRow>(
    `UPDATE bucket_moves SET state = 'aborted', updated_at = now() WHERE state IN ('planned', 'copied')
     RETURNING id::text AS id, bucket, from_shard, to_shard, state`,
  );
  let lock: pg.Client | null = null;
  try {
    lock = await takeMoverLock(c);
  } catch {
    return { aborted: gone.rows.length, cleaned: false };
  }
  try {
    const map = await newestMap(c.primaries);
    for (const m of gone.rows) {
      const T = c.primaries[m.to_shard];
      if (T === undefined) continue;
      await dropBucketRows(T, m.bucket, 'hop_staging');
      if (map.owners[m.bucket] !== m.to_shard) await dropBucketRows(T, m.bucket, 'public');
      await c.primaries[m.from_shard]?.query('DELETE FROM buckets_moving WHERE bucket = $1', [m.bucket]);
    }
    return { aborted: gone.rows.length, cleaned: true };
  } finally {
    await lock.end().catch(() => {});
  }
}
