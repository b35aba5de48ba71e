// The embedded backup's database work, run on the database thread (pglite-worker.mjs): a logical
// snapshot of every table of the public schema in one transaction, read in chunks of bounded size
// that go to the reader as they come, and its reverse for restore, loaded chunk by chunk. Plain
// JavaScript for the same reason as the worker. PGlite has one connection, so the snapshot's
// transaction holds every other query back while it runs: it only copies; hashing is the reader's.
import { createHash } from 'node:crypto';

const ident = (name) => `"${name.replaceAll('"', '""')}"`;

/**
 * Every table of the public schema with its columns and the key that orders its export: the
 * primary key's columns (with their types, for literals of them), or without one the whole row
 * as text (any column type has a text form; identical rows are identical CSV, so ties do not matter).
 */
async function listTables(tx) {
  const r = await tx.query(
    `SELECT c.relname AS table,
            (SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a
              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns,
            (SELECT array_agg(a.attname::text ORDER BY k.ord) FROM pg_index i
               CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
              WHERE i.indrelid = c.oid AND i.indisprimary) AS key,
            (SELECT array_agg(format_type(a.atttypid, a.atttypmod) ORDER BY k.ord) FROM pg_index i
               CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
              WHERE i.indrelid = c.oid AND i.indisprimary) AS types
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
      ORDER BY c.relname`,
  );
  return r.rows.map((t) => ({
    table: t.table,
    columns: t.columns ?? [],
    key:
      t.key === null
        ? [{ expr: `${ident(t.table)}::text COLLATE "C"`, type: 'text' }]
        : t.key.map((k, i) => ({ expr: ident(k), type: t.types[i] })),
  }));
}

/** Sequences of the public schema: their state, and the column each one numbers (if any). */
async function listSequences(tx) {
  const r = await tx.query(
    `SELECT s.relname AS sequence, t.relname AS table, a.attname AS column
       FROM pg_class s JOIN pg_namespace n ON n.oid = s.relnamespace
       LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid
            AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
       LEFT JOIN pg_class t ON t.oid = d.refobjid
       LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
      WHERE n.nspname = 'public' AND s.relkind = 'S'
      ORDER BY s.relname`,
  );
  const out = [];
  for (const s of r.rows) {
    const v = await tx.query(
      `SELECT last_value::text AS last, is_called AS called FROM ${ident(s.sequence)}`,
    );
    out.push({
      sequence: s.sequence,
      table: s.table ?? null,
      column: s.column ?? null,
      last: v.rows[0].last,
      called: v.rows[0].called,
    });
  }
  return out;
}

/** What one chunk aims at: a few MB of CSV, never more than MAX_ROWS rows. */
const CHUNK_BYTES = 4 * 1024 * 1024;
const FIRST_ROWS = 256;
const MAX_ROWS = 50_000;

/** A text value as an SQL literal of its type (COPY takes no parameters). */
const literal = (text, type) => `'${text.replaceAll("'", "''")}'::${type}`;

/**
 * Exports one table as ordered CSV in chunks of bounded size, each a COPY of one keyset range
 * along the table's order: the range's upper key is found first (an index-only scan counting n
 * keys on), then `lo < key <= hi` is copied. The first chunk carries the CSV's header row, so the
 * chunks' bytes in order are the table's whole CSV, and a table always has at least one chunk.
 */
async function exportTable(tx, t, sink) {
  const keys = `(${t.key.map((k) => k.expr).join(', ')})`;
  const order = t.key.map((k) => k.expr).join(', ');
  const texts = t.key.map((k, i) => `(${k.expr})::text AS k${i}`).join(', ');
  const bound = (values) => `(${values.map((v, i) => literal(v, t.key[i].type)).join(', ')})`;
  let lo = null;
  let rows = FIRST_ROWS;
  let total = { rows: 0, bytes: 0 };
  for (let index = 0; ; index++) {
    const after = lo === null ? 'true' : `${keys} > ${bound(lo)}`;
    const upper = await tx.query(
      `SELECT ${texts} FROM ${ident(t.table)} WHERE ${after} ORDER BY ${order} OFFSET ${rows - 1} LIMIT 1`,
    );
    const hi = upper.rows.length === 0 ? null : t.key.map((_, i) => upper.rows[0][`k${i}`]);
    const upTo = hi === null ? 'true' : `${keys} <= ${bound(hi)}`;
    const r = await tx.query(
      `COPY (SELECT * FROM ${ident(t.table)} WHERE ${after} AND ${upTo} ORDER BY ${order}) TO '/dev/blob' WITH (FORMAT csv, HEADER ${index === 0})`,
    );
    const csv = r.blob === undefined ? new Uint8Array(0) : new Uint8Array(await r.blob.arrayBuffer());
    const n = r.affectedRows ?? 0;
    await sink.chunk(t, index, n, csv);
    if (hi === null) return;
    lo = hi;
    total = { rows: total.rows + n, bytes: total.bytes + csv.byteLength };
    // The next chunk's rows from the table's mean row so far: about CHUNK_BYTES of CSV.
    const perRow = total.bytes / Math.max(1, total.rows);
    rows = Math.max(1, Math.min(MAX_ROWS, rows * 4, Math.floor(CHUNK_BYTES / Math.max(1, perRow))));
  }
}

/**
 * The whole database as ordered CSV per table, read in one REPEATABLE READ transaction, handed
 * to `sink` chunk by chunk as it is read (`sink.table(t)` before a table's chunks, `await
 * sink.chunk(t, index, rows, csv)` for each: it may wait, holding the transaction, until the
 * reader has room). Returns the applied migrations, the newest outbox seq, the sequences' state
 * and `pauseMs`, how long other queries were held back (the transaction's own time).
 */
export async function exportDatabase(db, sink) {
  const started = performance.now();
  const taken = await db.transaction(async (tx) => {
    await tx.exec('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    const tables = await listTables(tx);
    const names = new Set(tables.map((t) => t.table));
    const migrations = names.has('schema_migrations')
      ? (await tx.query('SELECT version FROM schema_migrations ORDER BY version')).rows.map((r) => r.version)
      : [];
    const lastChangeSeq = names.has('outbox')
      ? Number((await tx.query('SELECT coalesce(max(seq), 0)::text AS s FROM outbox')).rows[0].s)
      : 0;
    const sequences = await listSequences(tx);
    for (const t of tables) {
      sink.table(t);
      await exportTable(tx, t, sink);
    }
    return { migrations, lastChangeSeq, sequences };
  });
  return { ...taken, pauseMs: performance.now() - started };
}

/** A sink that only counts and hashes each table's CSV (a restore's check): nothing is kept. */
export function hashingSink() {
  const tables = [];
  let current = null;
  return {
    tables,
    table(t) {
      current = { table: t.table, rows: 0, bytes: 0, chunks: 0, hash: createHash('sha256') };
      tables.push(current);
    },
    async chunk(_t, _index, rows, csv) {
      current.hash.update(csv);
      current.rows += rows;
      current.bytes += csv.byteLength;
      current.chunks++;
    },
    summaries() {
      return tables.map(({ hash, ...t }) => ({ ...t, sha256: hash.digest('hex') }));
    },
  };
}

/** How many bytes of chunks may wait for the reader before the export waits for it. */
const WINDOW_BYTES = 16 * 1024 * 1024;
/** A reader that takes nothing for this long is gone: the transaction must not wait for it forever. */
const STALL_MS = 120_000;

/**
 * A sink that sends each chunk to the reader (`send(message, transfer)`: the bytes move, not
 * copied) and, once WINDOW_BYTES are unacknowledged, waits for the reader's ack(bytes) before
 * reading more. cancel() makes the export fail (its transaction rolls back).
 */
export function streamingSink(send) {
  let unacked = 0;
  let cancelled = null;
  let wake = null;
  const rouse = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  return {
    ack(bytes) {
      unacked -= bytes;
      rouse();
    },
    cancel(reason = 'the backup was cancelled by its reader') {
      cancelled ??= new Error(reason);
      rouse();
    },
    table(t) {
      if (cancelled !== null) throw cancelled;
      send({ kind: 'backup-table', table: t.table, columns: t.columns }, []);
    },
    async chunk(t, index, rows, csv) {
      while (cancelled === null && unacked > 0 && unacked + csv.byteLength > WINDOW_BYTES) {
        const stalled = await new Promise((resume) => {
          const timer = setTimeout(() => resume(true), STALL_MS);
          wake = () => {
            clearTimeout(timer);
            resume(false);
          };
        });
        if (stalled)
          cancelled ??= new Error(
            `the backup's reader took nothing for ${STALL_MS / 1000} s; the snapshot was given up so that the database is not held`,
          );
      }
      if (cancelled !== null) throw cancelled;
      unacked += csv.byteLength;
      send({ kind: 'backup-chunk', table: t.table, index, rows, csv }, [csv.buffer]);
    },
  };
}

/**
 * A restore's load into a database migrated to the backup's schema, in one transaction held open
 * while the chunks come: every table emptied first (migrations may have seed rows), triggers and
 * foreign keys off while copying (replica role); finish() builds the indexes and sets each
 * sequence past both its saved state and its column's largest value, then commits. Operations run
 * one after another in the order asked.
 */
export async function openLoad(db) {
  let tx;
  let indexes;
  let settle;
  let ready;
  const opened = new Promise((r) => {
    ready = r;
  });
  const done = db.transaction(async (t) => {
    tx = t;
    await tx.exec('SET LOCAL session_replication_role = replica');
    const tables = (
      await tx.query(
        `SELECT c.relname AS table FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')`,
      )
    ).rows.map((r) => r.table);
    if (tables.length > 0) await tx.exec(`TRUNCATE ${tables.map(ident).join(', ')}`);
    // As pg_restore does: indexes other than the keys are built once after the data, not row by
    // row (the trigram index alone makes a row-by-row load of links several times slower).
    indexes = (
      await tx.query(
        `SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def
           FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'public'
            AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)`,
      )
    ).rows;
    for (const i of indexes) await tx.exec(`DROP INDEX ${i.name}`);
    await new Promise((commit, rollback) => {
      settle = { commit, rollback };
      ready();
    });
  });
  await Promise.race([opened, done]);
  let queue = Promise.resolve();
  const inTurn = (fn) => {
    const next = queue.then(fn);
    queue = next.catch(() => {});
    return next;
  };
  return {
    /** One chunk of a table's CSV (the first one starts with the header row). */
    chunk: (table, columns, index, csv) =>
      inTurn(() =>
        tx.query(
          `COPY ${ident(table)} (${columns.map(ident).join(', ')}) FROM '/dev/blob' WITH (FORMAT csv, HEADER ${index === 0})`,
          [],
          { blob: new Blob([csv]) },
        ),
      ),
    finish: (sequences) =>
      inTurn(async () => {
        try {
          for (const i of indexes) await tx.exec(i.def);
          await setSequences(tx, sequences);
        } catch (err) {
          settle.rollback(err);
          await done.catch(() => {});
          throw err;
        }
        settle.commit();
        await done;
      }),
    abort: () =>
      inTurn(async () => {
        settle.rollback(new Error('the restore was given up'));
        await done.catch(() => {});
      }),
  };
}

async function setSequences(tx, sequences) {
  const states = new Map(sequences.map((s) => [s.sequence, s]));
  for (const s of await listSequences(tx)) {
    const before = states.get(s.sequence);
    const max =
      s.table === null || s.column === null
        ? null
        : (await tx.query(`SELECT max(${ident(s.column)})::text AS m FROM ${ident(s.table)}`)).rows[0].m;
    const kept = before?.called ? before.last : null;
    if (kept === null && max === null) {
      if (before !== undefined)
        await tx.query('SELECT setval($1::regclass, $2::bigint, false)', [ident(s.sequence), before.last]);
      continue;
    }
    // GREATEST passes over a NULL: the larger of the saved state and the column's maximum.
    await tx.query('SELECT setval($1::regclass, GREATEST($2::bigint, $3::bigint), true)', [
      ident(s.sequence),
      kept,
      max,
    ]);
  }
}
