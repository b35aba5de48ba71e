// One migration runner for the embedded database and every shard: plain SQL files applied
// in name order, each once, each in its own transaction, safe to run concurrently.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MIGRATIONS_DIR } from '../../paths.ts';
import type { MigrationReport } from '../ports.ts';
import type { SqlClient } from './sql-client.ts';

// Arbitrary but fixed: serializes runners racing on one database.
const MIGRATION_LOCK = 7_243_001;

export function listMigrations(): { version: string; sql: string }[] {
  return readdirSync(MIGRATIONS_DIR)
    .filter((f) => f.endsWith('.sql'))
    .sort()
    .map((f) => ({ version: f.replace(/\.sql$/, ''), sql: readFileSync(join(MIGRATIONS_DIR, f), 'utf8') }));
}

/** The migrations a database has yet to apply (a look, without the lock migrate() takes). */
export async function pendingMigrations(db: SqlClient): Promise<string[]> {
  const table = await db.query<{ t: string | null }>("SELECT to_regclass('schema_migrations')::text AS t");
  const done =
    table.rows[0]?.t == null
      ? new Set<string>()
      : new Set(
          (await db.query<{ version: string }>('SELECT version FROM schema_migrations')).rows.map(
            (r) => r.version,
          ),
        );
  return listMigrations()
    .map((m) => m.version)
    .filter((v) => !done.has(v));
}

export async function migrate(db: SqlClient): Promise<MigrationReport> {
  // Under the lock too: CREATE TABLE IF NOT EXISTS is not safe against itself (two processes
  // booting on a new database at once both create, and one fails on pg_type's unique index).
  await db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await tx.exec(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
    );
  });
  const applied: string[] = [];
  const alreadyApplied: string[] = [];
  for (const m of listMigrations()) {
    const did = await db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      const seen = await tx.query('SELECT 1 FROM schema_migrations WHERE version = $1', [m.version]);
      if (seen.rows.length > 0) return false;
      await tx.exec(m.sql);
      await tx.query('INSERT INTO schema_migrations (version) VALUES ($1)', [m.version]);
      return true;
    });
    (did ? applied : alreadyApplied).push(m.version);
  }
  return { applied, alreadyApplied };
}
