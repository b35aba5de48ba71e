// The embedded backup's database work, run on the database thread (pglite-worker.mjs): a logical
// snapshot of every table of the public schema in one transaction, and its reverse for restore.
// Plain JavaScript for the same reason as the worker. PGlite has one connection, so the snapshot's
// transaction holds every other query back while it runs: it only copies; hashing comes after.
import { createHash } from 'node:crypto';

const ident = (name) => `"${name.replaceAll('"', '""')}"`;

/** Every table of the public schema with its columns and an order that makes the export repeatable. */
async function listTables(tx) {
  const r = await tx.query(
    `SELECT c.relname AS table,
            (SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a
              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns,
            (SELECT array_agg(a.attname::text ORDER BY k.ord) FROM pg_index i
               CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
              WHERE i.indrelid = c.oid AND i.indisprimary) AS key
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
      ORDER BY c.relname`,
  );
  return r.rows.map((t) => ({
    table: t.table,
    columns: t.columns ?? [],
    // Without a primary key the whole row, as text, orders it (any column type has a text form).
    order: t.key === null ? `${ident(t.table)}::text COLLATE "C"` : t.key.map(ident).join(', '),
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

async function exportTables(tx, tables) {
  const copies = [];
  for (const t of tables) {
    const r = await tx.query(
      `COPY (SELECT * FROM ${ident(t.table)} ORDER BY ${t.order}) TO '/dev/blob' WITH (FORMAT csv, HEADER true)`,
    );
    copies.push({ table: t.table, columns: t.columns, rows: r.affectedRows ?? 0, blob: r.blob });
  }
  return copies;
}

/** Sizes and hashes; the CSV itself only when kept (a restore's check needs the hashes alone). */
async function digest(copies, keepCsv) {
  const out = [];
  for (const c of copies) {
    const bytes = c.blob === undefined ? new Uint8Array(0) : new Uint8Array(await c.blob.arrayBuffer());
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    out.push({
      table: c.table,
      columns: c.columns,
      rows: c.rows,
      bytes: bytes.byteLength,
      sha256,
      csv: keepCsv ? bytes : new Uint8Array(0),
    });
  }
  return out;
}

/**
 * The whole database as ordered CSV per table, read in one REPEATABLE READ transaction, with the
 * applied migrations, the newest outbox seq and the sequences' state. `pauseMs` is how long other
 * queries were held back (the transaction's own time).
 */
export async function snapshot(db, keepCsv = true) {
  const started = performance.now();
  const taken = await db.transaction(async (tx) => {
    await tx.exec('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    const tables = await listTables(tx);
    const copies = await exportTables(tx, tables);
    const names = new Set(tables.map((t) => t.table));
    const migrations = names.has('schema_migrations')
      ? (await tx.query('SELECT version FROM schema_migrations ORDER BY version')).rows.map((r) => r.version)
      : [];
    const lastChangeSeq = names.has('outbox')
      ? Number((await tx.query('SELECT coalesce(max(seq), 0)::text AS s FROM outbox')).rows[0].s)
      : 0;
    const sequences = await listSequences(tx);
    return { copies, migrations, lastChangeSeq, sequences };
  });
  const pauseMs = performance.now() - started;
  const tables = await digest(taken.copies, keepCsv);
  return {
    tables,
    migrations: taken.migrations,
    lastChangeSeq: taken.lastChangeSeq,
    sequences: taken.sequences,
    pauseMs,
  };
}

/**
 * Loads tables (CSV with a header, as snapshot() writes them) into a database migrated to the
 * backup's schema, in one transaction: emptied first (migrations may have seeded rows), triggers
 * and foreign keys off while copying (replica role), then each sequence set past both its saved
 * state and its column's largest value.
 */
export async function load(db, tables, sequences) {
  await db.transaction(async (tx) => {
    await tx.exec('SET LOCAL session_replication_role = replica');
    if (tables.length > 0) await tx.exec(`TRUNCATE ${tables.map((t) => ident(t.table)).join(', ')}`);
    // As pg_restore does: indexes other than the keys are built once after the data, not row by row
    // (the trigram index alone makes a row-by-row load of links several times slower).
    const indexes = await tx.query(
      `SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def
         FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relname = ANY($1)
          AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)`,
      [tables.map((t) => t.table)],
    );
    for (const i of indexes.rows) await tx.exec(`DROP INDEX ${i.name}`);
    for (const t of tables) {
      const cols = t.columns.map(ident).join(', ');
      await tx.query(`COPY ${ident(t.table)} (${cols}) FROM '/dev/blob' WITH (FORMAT csv, HEADER true)`, [], {
        blob: new Blob([t.csv]),
      });
    }
    for (const i of indexes.rows) await tx.exec(i.def);
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
  });
}
