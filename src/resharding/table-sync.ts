// Whole tables (or a filtered part) from one database to another, by difference: the rows that are
// not placed by bucket (API keys, webhooks and their deliveries, domains, orphan visits, visitor
// salts, the all-links click packs) go to one shard. As bucket-sync.ts does per bucket, both sides
// hash each unit (a key, or a group of rows), and only the units that differ are rewritten, so a
// re-run converges and never duplicates; the same hashes are the verification.
import { createHash } from 'node:crypto';
import type { SqlClient } from '../storage/sql/sql-client.ts';

export interface WholeTableSpec {
  /** Printed in the summary; defaults to the table. */
  readonly name?: string;
  readonly table: string;
  /** A row's unit over alias t: the rows of one unit are rewritten together. */
  readonly unit: string;
  /** Which rows (over alias t, no parameters); all by default. */
  readonly where?: string;
  /**
   * The key other tables reference: its rows are updated in place (INSERT … ON CONFLICT), never
   * deleted and inserted again, which a foreign key would refuse.
   */
  readonly upsertKey?: readonly string[];
}

export interface WholeTableDigest {
  readonly name: string;
  readonly rows: number;
  readonly checksum: string;
}

interface UnitRow {
  unit: string;
  hash: string;
  n: number;
}

const nameOf = (s: WholeTableSpec) => s.name ?? s.table;
const CHUNK_UNITS = 1_000;

/** Each unit's hash over its rows' text, timestamps in UTC so both engines print them alike. */
async function unitHashes(db: SqlClient, spec: WholeTableSpec): Promise<Map<string, UnitRow>> {
  return db.transaction(async (tx) => {
    await tx.query(`SET LOCAL TimeZone = 'UTC'`);
    const res = await tx.query<UnitRow>(
      `SELECT ${spec.unit} AS unit, md5(string_agg(md5(t::text), '' ORDER BY md5(t::text))) AS hash,
         count(*)::int AS n
       FROM ${spec.table} t WHERE ${spec.where ?? 'true'} GROUP BY 1`,
    );
    return new Map(res.rows.map((r) => [r.unit, r]));
  });
}

function digestOf(spec: WholeTableSpec, units: Map<string, UnitRow>): WholeTableDigest {
  const sorted = [...units.values()].map((u) => `${u.unit}\u0000${u.hash}`).sort();
  return {
    name: nameOf(spec),
    rows: [...units.values()].reduce((n, u) => n + u.n, 0),
    checksum: createHash('md5').update(sorted.join('\n')).digest('hex'),
  };
}

export async function tableDigest(db: SqlClient, spec: WholeTableSpec): Promise<WholeTableDigest> {
  return digestOf(spec, await unitHashes(db, spec));
}

/**
 * Makes the target's rows of each spec equal the source's. Units the source lacks go first, in
 * reverse order (a webhook's deliveries before the webhook); then the differing units, in order.
 * Returns the rows written per table.
 */
export async function syncTables(
  from: SqlClient,
  to: SqlClient,
  specs: readonly WholeTableSpec[],
): Promise<Record<string, number>> {
  const plans = [];
  for (const spec of specs) {
    const [src, dst] = await Promise.all([unitHashes(from, spec), unitHashes(to, spec)]);
    plans.push({
      spec,
      copy: [...src.values()].filter((u) => dst.get(u.unit)?.hash !== u.hash).map((u) => u.unit),
      drop: [...dst.keys()].filter((u) => !src.has(u)),
    });
  }
  const where = (s: WholeTableSpec) => `${s.where ?? 'true'} AND ${s.unit} = ANY($1::text[])`;
  for (const { spec, drop } of [...plans].reverse()) {
    for (let i = 0; i < drop.length; i += CHUNK_UNITS)
      await to.query(`DELETE FROM ${spec.table} t WHERE ${where(spec)}`, [drop.slice(i, i + CHUNK_UNITS)]);
  }
  const written: Record<string, number> = {};
  for (const { spec, copy } of plans) {
    written[nameOf(spec)] = 0;
    if (copy.length === 0) continue;
    const upsert = spec.upsertKey === undefined ? '' : await upsertClause(to, spec.table, spec.upsertKey);
    for (let i = 0; i < copy.length; i += CHUNK_UNITS) {
      const part = copy.slice(i, i + CHUNK_UNITS);
      const rows = (
        await from.query<{ rows: string | null }>(
          `SELECT json_agg(t)::text AS rows FROM ${spec.table} t WHERE ${where(spec)}`,
          [part],
        )
      ).rows[0]?.rows;
      await to.transaction(async (tx) => {
        if (spec.upsertKey === undefined)
          await tx.query(`DELETE FROM ${spec.table} t WHERE ${where(spec)}`, [part]);
        if (rows === null || rows === undefined) return;
        const ins = await tx.query(
          `INSERT INTO ${spec.table} SELECT * FROM json_populate_recordset(NULL::${spec.table}, $1::json) ${upsert}`,
          [rows],
        );
        written[nameOf(spec)] = (written[nameOf(spec)] ?? 0) + ins.affectedRows;
      });
    }
  }
  return written;
}

async function upsertClause(db: SqlClient, table: string, key: readonly string[]): Promise<string> {
  const cols = await db.query<{ c: string }>(
    `SELECT column_name AS c FROM information_schema.columns
     WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`,
    [table],
  );
  const set = cols.rows.filter((r) => !key.includes(r.c)).map((r) => `${r.c} = excluded.${r.c}`);
  return `ON CONFLICT (${key.join(', ')}) DO ${set.length === 0 ? 'NOTHING' : `UPDATE SET ${set.join(', ')}`}`;
}
