// The embedded database as the source of `hop move-store`: a stopped Hop's data directory, opened
// here (its lock turns away a second opener), brought to the state a cluster can hold. Acknowledged
// changes only in the change log go in first; clicks held raw and unfolded are folded into packs and
// every raw batch is split into visit rows, so nothing the move copies by bucket sits in
// embedded-only state (DESIGN §7); idempotency records from before migration 013 get their bucket.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { idempotencyBucket } from '../domain/domains.ts';
import { FoldingClickSink } from '../events/folding-click-sink.ts';
import { noopMetrics } from '../metrics/metrics.ts';
import { openPglite, type PgliteOptions } from '../storage/embedded/pglite-client.ts';
import { migrate } from '../storage/sql/migrate.ts';
import type { SqlClient } from '../storage/sql/sql-client.ts';
import { SqlStore } from '../storage/sql/sql-store.ts';

/** A refusal meant for the operator: printed as it is, without a stack trace. */
export class MoveRefused extends Error {
  override name = 'MoveRefused';
}

/**
 * A move is one bulk job on a stopped server: the database gets buffers and V8's optimizing WASM
 * compiler, which a small serving Hop goes without (pglite-client.ts: SMALL_DATABASE).
 */
const MOVE_DATABASE: PgliteOptions = { buffersMb: 256, compiler: 'optimizing' };

export interface EmbeddedSource {
  readonly db: SqlClient;
  /** The same database for the copy's and the verification's reads (see quietReads). */
  readonly reader: SqlClient;
  readonly store: SqlStore;
  /** Changes replayed from the change log, clicks folded, raw clicks split, idempotency records given a bucket. */
  readonly prepared: { replayed: number; folded: number; split: number; keyed: number };
  close(): Promise<void>;
}

export async function openEmbeddedSource(opts: {
  dataDir: string;
  changeLog: string | null;
  codeLength: number;
}): Promise<EmbeddedSource> {
  const pg = join(opts.dataDir, 'pg');
  if (!existsSync(pg) || readdirSync(pg).length === 0)
    throw new MoveRefused(`No embedded database in ${opts.dataDir} (HOP_DATA_DIR): nothing to move.`);
  let db: SqlClient;
  try {
    db = await openPglite(opts.dataDir, MOVE_DATABASE);
  } catch (err) {
    const msg = (err as Error).message;
    if (/in use by process/.test(msg))
      throw new MoveRefused(
        `${msg.replace(/ Stop that Hop first.*$/, '')} move-store copies a stopped embedded database: stop that Hop first (the cut-over's downtime starts here).`,
      );
    throw err;
  }
  try {
    await migrate(db);
    const store = new SqlStore(db, { kind: 'embedded', codeLength: opts.codeLength });
    const replayed = await replayChangeLog(store, opts.changeLog);
    const { folded, split } = await settleClicks(db, store);
    const keyed = await keyIdempotencyRecords(db);
    return {
      db,
      reader: await quietReads(db),
      store,
      prepared: { replayed, folded, split, keyed },
      close: () => store.close(),
    };
  } catch (err) {
    await db.close().catch(() => {});
    throw err;
  }
}

/** Acknowledged changes the database lacks (a crash before its commit): as `hop serve` does on start. */
async function replayChangeLog(store: SqlStore, dir: string | null): Promise<number> {
  if (dir === null || !existsSync(dir)) return 0;
  const { ChangeLog } = await import('../storage/embedded/change-log.ts');
  const opened = await ChangeLog.open(dir, store);
  await opened.log.close();
  return opened.replayed;
}

/**
 * Folds every raw batch not yet folded (a stopped Hop folds at shutdown; a killed one leaves them),
 * then splits every raw batch into visit rows. Raw batches are copied nowhere: afterwards there are
 * none, or the move is refused (a batch left raw would be lost to the cluster's stats and lists).
 */
async function settleClicks(db: SqlClient, store: SqlStore): Promise<{ folded: number; split: number }> {
  const unfolded = await store.unfoldedClicks();
  const folded = unfolded.reduce((n, b) => n + b.events.length, 0);
  if (unfolded.length > 0) {
    const log = pino({ level: 'warn' }, pino.destination(2));
    const sink = await FoldingClickSink.open(
      store,
      { flushMs: 60_000, batchSize: 2_000, maxBuffered: 1, foldMs: 0, foldRows: 1_000_000_000 },
      noopMetrics,
      log,
    );
    // Closing folds everything held, without the rests a serving writer takes between parts.
    await sink.close();
  }
  let split = 0;
  for (;;) {
    const n = await store.splitVisits();
    if (n === 0) break;
    split += n;
  }
  const left = await db.query<{ folded: boolean; n: number }>(
    'SELECT folded, count(*)::int AS n FROM click_events GROUP BY folded',
  );
  if (left.rows.length > 0) {
    const what = left.rows.map((r) => `${r.n} ${r.folded ? 'folded' : 'unfolded'}`).join(', ');
    throw new MoveRefused(
      `Raw click batches remain after folding and splitting (${what}); they would not reach the cluster. Start Hop on the data directory once, stop it, and move again.`,
    );
  }
  return { folded, split };
}

/** Idempotency records written before migration 013 have no bucket: give them theirs, so they move. */
async function keyIdempotencyRecords(db: SqlClient): Promise<number> {
  const res = await db.query<{ scope: string; key: string }>(
    'SELECT scope, key FROM idempotency_keys WHERE bucket IS NULL',
  );
  if (res.rows.length === 0) return 0;
  const upd = await db.query(
    `UPDATE idempotency_keys i SET bucket = u.b
     FROM unnest($1::text[], $2::text[], $3::smallint[]) AS u(scope, key, b)
     WHERE i.scope = u.scope AND i.key = u.key`,
    [
      res.rows.map((r) => r.scope),
      res.rows.map((r) => r.key),
      res.rows.map((r) => idempotencyBucket(r.scope, r.key)),
    ],
  );
  return upd.affectedRows;
}

/**
 * The copy hashes every bucket's tables in transactions that set the time zone to UTC (bucket-sync.ts),
 * five per bucket and pass; on PGlite a transaction's round trips cost more than the hash (the
 * digests of all 1,024 buckets of 100,000 links: 8.2 s, 5.1 s without). This database is this
 * process's alone and nothing writes it while it is read, so its reads need no transaction: the
 * session is set to UTC once, and the per-transaction setting is answered here.
 */
const UTC_HERE = `SET LOCAL TimeZone = 'UTC'`;

async function quietReads(db: SqlClient): Promise<SqlClient> {
  await db.query(`SET TimeZone = 'UTC'`);
  const reader: SqlClient = {
    query: (sql, params, opts) =>
      sql === UTC_HERE ? Promise.resolve({ rows: [], affectedRows: 0 }) : db.query(sql, params, opts),
    transaction: (fn) => fn(reader),
    exec: (sql) => db.exec(sql),
    close: () => db.close(),
  };
  return reader;
}
