// `hop move-store`: a stopped Hop's embedded database copied into a PostgreSQL cluster by bucket
// (DESIGN §2, §13), then verified, per bucket and per table, by the same hashes that drove the copy.
// Everything is copied by difference (bucket-sync.ts, table-sync.ts, stream-move.ts), so a run
// killed anywhere is finished by the next run, and a run after a finished one changes nothing.
// Runbook: docs/runbooks/move-store.md.
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { BUCKET_COUNT } from '../domain/bucket.ts';
import { ownerOf, type ShardMap } from '../domain/shard-map.ts';
import { PgPool } from '../storage/postgres/pg-pool.ts';
import { loadShardMap, verifyShardIdentities } from '../storage/postgres/shard-catalog.ts';
import { migrate } from '../storage/sql/migrate.ts';
import type { SqlClient } from '../storage/sql/sql-client.ts';
import { bucketDigest, digestDifferences, syncBucket } from './bucket-sync.ts';
import { type EmbeddedSource, MoveRefused, openEmbeddedSource } from './embedded-source.ts';
import { checkChangeStream, moveChangeStream, sequencePast } from './stream-move.ts';
import { syncTables, tableDigest, type WholeTableSpec } from './table-sync.ts';

export { MoveRefused };

export interface MoveStoreOptions {
  readonly dataDir: string;
  /** The embedded change log (replayed into the database first), or null. */
  readonly changeLog: string | null;
  readonly codeLength: number;
  readonly cluster: readonly { primary: string; replicas: readonly string[] }[];
  /** Copy nothing: compare and print. */
  readonly verifyOnly: boolean;
  /** Buckets in flight at once (default 8): the embedded database reads while the shards write. */
  readonly parallel?: number;
  readonly out: (line: string) => void;
}

export interface PhaseTimes {
  /** Opening both sides, settling clicks, claiming the cluster. */
  readonly prepareS: number;
  readonly copyS: number;
  readonly verifyS: number;
}

export interface MoveStoreResult {
  readonly identical: boolean;
  readonly links: number;
  /** Rows written on the cluster by this run (0 when a re-run found nothing to do). */
  readonly written: number;
  readonly seconds: number;
  readonly phases: PhaseTimes;
}

/** Timestamps in units are taken as epoch numbers: their text would depend on the session's zone. */
const epoch = (col: string) => `extract(epoch FROM ${col})::text`;

/** Shard 0's rows that no bucket places (DESIGN "catalog"), in copy order. */
const CATALOG: readonly WholeTableSpec[] = [
  { table: 'api_keys', unit: 't.id' },
  { table: 'domains', unit: 't.host' },
  { table: 'webhooks', unit: 't.id', upsertKey: ['id'] },
  { table: 'webhook_deliveries', unit: 't.id::text' },
  { table: 'click_salts', unit: epoch('t.day') },
  {
    table: 'orphan_visits',
    unit: `${epoch('t.hour')} || chr(1) || t.domain || chr(1) || t.bot::text || chr(1) || t.type || chr(1) || t.path`,
  },
  { table: 'orphan_visit_list', unit: `t.id::text || chr(1) || ${epoch('t.at')}` },
  // The all-links packs: per shard, summed across shards when read; the embedded ones go to shard 0.
  {
    name: 'click_packs (all links)',
    table: 'click_packs',
    unit: `${epoch('t.hour')} || chr(1) || t.bot::text`,
    where: "t.code = ''",
  },
  {
    name: 'click_packs_daily (all links)',
    table: 'click_packs_daily',
    unit: `${epoch('t.day')} || chr(1) || t.bot::text`,
    where: "t.code = ''",
  },
];

/** Tables whose rows on a cluster mean it holds data of its own (a fresh cluster has none). */
const DATA_TABLES = [
  'links',
  'outbox',
  'api_keys',
  'webhooks',
  'idempotency_keys',
  'click_packs',
  'click_visits',
  'orphan_visits',
];

// Copying 100,000 links into two shards on two cores took 20.1 s with 2 buckets at once, 16.8 s with 4,
// 15.0 s with 8: the embedded database's reads and the shards' writes overlap.
const PARALLEL = 8;

interface Cluster {
  readonly shards: PgPool[];
  readonly map: ShardMap;
  close(): Promise<void>;
}

async function openCluster(urls: MoveStoreOptions['cluster']): Promise<Cluster> {
  // Replicas follow their primaries by streaming replication: the copy writes primaries only.
  const shards = urls.map(
    (u, i) =>
      new PgPool(`shard${i}-primary`, u.primary, {
        size: PARALLEL + 2,
        maxWaiting: 256,
        acquireTimeoutMs: 120_000,
        statementTimeoutMs: 600_000,
      }),
  );
  const close = () => Promise.all(shards.map((s) => s.close().catch(() => {}))).then(() => {});
  try {
    for (const s of shards) await migrate(s);
    await verifyShardIdentities(shards);
    return { shards, map: await loadShardMap(shards), close };
  } catch (err) {
    await close();
    throw err;
  }
}

const fmt = (n: number) => n.toLocaleString('en-US');
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export async function moveStore(o: MoveStoreOptions): Promise<MoveStoreResult> {
  const t0 = performance.now();
  const out = o.out;
  const source = await openEmbeddedSource(o);
  try {
    const p = source.prepared;
    out(
      `Embedded database ${o.dataDir}: ${p.replayed} changes replayed from the change log, ${fmt(p.folded)} clicks folded, ` +
        `${fmt(p.split)} raw clicks split into visit rows, ${p.keyed} idempotency records given their bucket.`,
    );
    const cluster = await openCluster(o.cluster);
    try {
      return await moveInto(o, source, cluster, t0);
    } finally {
      await cluster.close();
    }
  } finally {
    await source.close();
  }
}

async function moveInto(
  o: MoveStoreOptions,
  source: EmbeddedSource,
  cluster: Cluster,
  t0: number,
): Promise<MoveStoreResult> {
  const { out } = o;
  const { shards, map } = cluster;
  const emb = source.reader;
  const links = await count(emb, 'links');
  out(
    `Cluster: ${shards.length} shard(s), shard map version ${map.version}; ${fmt(links)} links (tombstones included) to ${o.verifyOnly ? 'compare' : 'move'}.`,
  );
  let written = 0;
  let copyMs = 0;
  if (!o.verifyOnly) {
    await claimCluster(o, source.db, shards);
    const prepareMs = performance.now() - t0;
    const c0 = performance.now();
    written = await copy(o, emb, cluster, links);
    copyMs = performance.now() - c0;
    out(`Copied in ${secs(copyMs)} (after ${secs(prepareMs)} preparing).`);
  } else {
    const marker = await markerOf(shards[0]!);
    out(
      marker === null
        ? 'The cluster names no move-store source (comparing anyway).'
        : `The cluster was filled from ${marker.source_dir} (move started ${marker.started_at.toISOString()}).`,
    );
  }
  const prepareS = (performance.now() - t0 - copyMs) / 1000;
  const v0 = performance.now();
  const identical = await verify(o, emb, cluster);
  const verifyMs = performance.now() - v0;
  if (identical) {
    const mine = await markerOf(emb);
    if (mine !== null)
      await shards[0]!.query('UPDATE store_move SET verified_at = now() WHERE source_id = $1', [
        mine.source_id,
      ]);
  }
  const seconds = (performance.now() - t0) / 1000;
  const copyS = copyMs / 1000;
  if (!o.verifyOnly) {
    out(
      `Moved ${fmt(links)} links in ${seconds.toFixed(1)} s (${fmt(Math.round(links / Math.max(copyS, 0.001)))} links/s copying, ` +
        `${fmt(Math.round(links / seconds))} links/s overall): prepare ${prepareS.toFixed(1)} s, copy ${copyS.toFixed(1)} s, ` +
        `verify ${(verifyMs / 1000).toFixed(1)} s; ${fmt(written)} rows written by this run.`,
    );
  }
  out(
    identical
      ? 'Verified: the cluster holds exactly what the embedded database holds. Start Hop with HOP_DATABASE_URLS.'
      : 'NOT identical: see the mismatches above. Run move-store again to finish the copy (it rewrites only what differs).',
  );
  return {
    identical,
    links,
    written,
    seconds,
    phases: { prepareS, copyS, verifyS: verifyMs / 1000 },
  };
}

async function count(db: SqlClient, table: string): Promise<number> {
  return (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]?.n ?? 0;
}

interface Marker {
  source_id: string;
  source_dir: string;
  started_at: Date;
  verified_at: Date | null;
}

async function markerOf(db: SqlClient): Promise<Marker | null> {
  const res = await db.query<Marker>(
    'SELECT source_id::text AS source_id, source_dir, started_at, verified_at FROM store_move',
  );
  return res.rows[0] ?? null;
}

/**
 * The cluster takes this move if it is empty, or holds this embedded database's earlier move
 * (finished or not) and has taken no changes of its own since: anything else is refused.
 */
async function claimCluster(o: MoveStoreOptions, emb: SqlClient, shards: PgPool[]): Promise<void> {
  await emb.query(
    'INSERT INTO store_move (source_id, source_dir) VALUES ($1, $2) ON CONFLICT (only_row) DO NOTHING',
    [randomUUID(), resolve(o.dataDir)],
  );
  const mine = (await markerOf(emb))!;
  const first = shards[0]!;
  let theirs = await markerOf(first);
  if (theirs === null) {
    const held = await Promise.all(
      shards.map(async (s, i) => {
        const res = await s.query<{ t: string }>(
          DATA_TABLES.map((t) => `SELECT '${t}' AS t WHERE EXISTS (SELECT 1 FROM ${t})`).join(' UNION ALL '),
        );
        return res.rows.length === 0 ? null : `shard ${i}: ${res.rows.map((r) => r.t).join(', ')}`;
      }),
    );
    const foreign = held.filter((h) => h !== null);
    if (foreign.length > 0)
      throw new MoveRefused(
        `The cluster already holds data that is not from this embedded database (${foreign.join('; ')}). ` +
          'move-store fills an empty cluster, or finishes its own earlier move into one: give it new, empty databases.',
      );
    await first.query(
      'INSERT INTO store_move (source_id, source_dir) VALUES ($1, $2) ON CONFLICT (only_row) DO NOTHING',
      [mine.source_id, mine.source_dir],
    );
    theirs = (await markerOf(first))!;
    if (theirs.source_id === mine.source_id) {
      o.out(`Claimed the cluster for ${mine.source_dir} (move ${mine.source_id}).`);
      return;
    }
  }
  if (theirs.source_id !== mine.source_id)
    throw new MoveRefused(
      `The cluster was filled from another embedded database (${theirs.source_dir}, move ${theirs.source_id}, started ` +
        `${theirs.started_at.toISOString()}): move-store only finishes its own move. Give it new, empty databases.`,
    );
  // Hop serving on the cluster since: its changes follow the moved seqs, its compaction passes the moved watermark.
  const embLast = await lastSeq(emb);
  const embThrough = await compactedThrough(emb);
  for (const [i, s] of shards.entries()) {
    const last = await lastSeq(s);
    if (last > embLast)
      throw new MoveRefused(
        `Shard ${i} has taken link changes since the move (change ${last}; the embedded database's last is ${embLast}): ` +
          'Hop has run on the cluster, and moving again would overwrite what it wrote.',
      );
    if ((await compactedThrough(s)) > embThrough)
      throw new MoveRefused(
        `Shard ${i} has compacted clicks past the embedded database's watermark: Hop has run on the cluster, and moving again would overwrite what it wrote.`,
      );
  }
  o.out(
    theirs.verified_at === null
      ? `Finishing the unfinished move of ${mine.source_dir} (started ${theirs.started_at.toISOString()}).`
      : `Moving ${mine.source_dir} again (last verified ${theirs.verified_at.toISOString()}): only differences are written.`,
  );
}

async function lastSeq(db: SqlClient): Promise<number> {
  return Number(
    (await db.query<{ s: string | null }>('SELECT max(seq)::text AS s FROM outbox')).rows[0]?.s ?? 0,
  );
}

async function compactedThrough(db: SqlClient): Promise<number> {
  const res = await db.query<{ t: Date }>('SELECT through AS t FROM click_compaction WHERE id = 1');
  return res.rows[0]?.t.getTime() ?? 0;
}

/** Runs `job` for buckets 0…1023, `width` at a time. */
async function eachBucket(width: number, job: (bucket: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < BUCKET_COUNT) await job(next++);
    }),
  );
}

/** A line at most every 2 s (and at the end): a copy of a million links runs for minutes. */
function progress(out: (l: string) => void, what: string, total: number, started: number) {
  let last = performance.now();
  return (done: number, extra: string, force = false) => {
    const now = performance.now();
    if (!force && now - last < 2_000) return;
    last = now;
    out(`${what}: ${done}/${total} buckets, ${extra}, ${secs(now - started)}`);
  };
}

async function copy(o: MoveStoreOptions, emb: SqlClient, cluster: Cluster, links: number): Promise<number> {
  const { shards, map } = cluster;
  let written = 0;
  // The daily packs before the watermark are copied with their links: every shard reads them from there.
  const through = new Date(await compactedThrough(emb));
  await Promise.all(
    shards.map((s) => s.query('UPDATE click_compaction SET through = $1 WHERE id = 1', [through])),
  );

  const started = performance.now();
  let done = 0;
  let linkRows = 0;
  const tell = progress(o.out, 'copy', BUCKET_COUNT, started);
  await eachBucket(o.parallel ?? PARALLEL, async (bucket) => {
    const r = await syncBucket(emb, shards[ownerOf(map, bucket)]!, bucket);
    for (const n of Object.values(r.written)) written += n;
    linkRows += r.written.links ?? 0;
    done++;
    tell(done, `${fmt(linkRows)} of ${fmt(links)} links written`, done === BUCKET_COUNT);
  });

  const catalog = await syncTables(emb, shards[0]!, CATALOG);
  for (const n of Object.values(catalog)) written += n;
  const deliveries = await emb.query<{ id: string | null }>(
    'SELECT max(id)::text AS id FROM webhook_deliveries',
  );
  await sequencePast(shards[0]!, 'webhook_deliveries_id_seq', Number(deliveries.rows[0]?.id ?? 0));
  const wrote = Object.entries(catalog)
    .filter(([, n]) => n > 0)
    .map(([t, n]) => `${t} ${fmt(n)}`);
  o.out(`shard 0's own rows: ${wrote.length === 0 ? 'nothing to write' : wrote.join(', ')}`);

  const stream = await moveChangeStream(emb, shards, map);
  written += stream.copied;
  o.out(
    `change stream: ${fmt(stream.changes)} changes (through seq ${stream.lastSeq}) on their links' shards, ${fmt(stream.copied)} written now, all marked published`,
  );
  return written;
}

interface TableTally {
  embedded: number;
  cluster: number;
  compared: string;
  mismatches: number;
  examples: string[];
}

/** Compares everything; prints what it compared, per table; true when nothing differs. */
async function verify(o: MoveStoreOptions, emb: SqlClient, cluster: Cluster): Promise<boolean> {
  const { shards, map } = cluster;
  const tally = new Map<string, TableTally>();
  const row = (name: string, compared: string) => {
    let t = tally.get(name);
    if (t === undefined) {
      t = { embedded: 0, cluster: 0, compared, mismatches: 0, examples: [] };
      tally.set(name, t);
    }
    return t;
  };
  const started = performance.now();
  let done = 0;
  const tell = progress(o.out, 'verify', BUCKET_COUNT, started);
  await eachBucket(o.parallel ?? PARALLEL, async (bucket) => {
    const [a, b] = await Promise.all([
      bucketDigest(emb, bucket),
      bucketDigest(shards[ownerOf(map, bucket)]!, bucket),
    ]);
    const diffs = digestDifferences(a, b);
    for (const [i, x] of a.entries()) {
      const y = b[i];
      const t = row(x.table, `${BUCKET_COUNT} buckets`);
      t.embedded += x.rows;
      t.cluster += y?.rows ?? 0;
      if (y === undefined || y.rows !== x.rows || y.checksum !== x.checksum) {
        t.mismatches++;
        const why = diffs.find((d) => d.startsWith(`${x.table}:`));
        if (t.examples.length < 3) t.examples.push(`bucket ${bucket}${why === undefined ? '' : `: ${why}`}`);
      }
    }
    done++;
    tell(done, 'compared', done === BUCKET_COUNT);
  });
  for (const spec of CATALOG) {
    const [a, b] = await Promise.all([tableDigest(emb, spec), tableDigest(shards[0]!, spec)]);
    const t = row(a.name, 'shard 0');
    t.embedded = a.rows;
    t.cluster = b.rows;
    if (a.rows !== b.rows || a.checksum !== b.checksum) t.mismatches++;
  }
  for (const s of await checkChangeStream(emb, shards, map)) {
    const t = row('outbox (change stream)', `${shards.length} shards`);
    t.embedded += s.embedded;
    t.cluster += s.cluster;
    if (!s.same) {
      t.mismatches++;
      t.examples.push(`shard ${s.shard}`);
    }
  }
  // Every shard reads days before the watermark from the daily packs: it must be the embedded one.
  const through = await compactedThrough(emb);
  const watermarks = await Promise.all(shards.map((s) => compactedThrough(s)));
  const offMark = watermarks.flatMap((t, i) =>
    t === through ? [] : [`shard ${i}: ${new Date(t).toISOString()}`],
  );
  // Links a shard holds for buckets another shard owns: no request would ever find them.
  const misplaced = await Promise.all(
    shards.map(async (s, i) => {
      const res = await s.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM links WHERE ($1::int[])[bucket + 1] <> $2',
        [[...map.owners], i],
      );
      const n = res.rows[0]?.n ?? 0;
      return n === 0 ? [] : [`shard ${i}: ${n}`];
    }),
  ).then((x) => x.flat());

  const names = [...tally.keys()];
  const w = Math.max(...names.map((n) => n.length));
  o.out('Compared (rows on each side; a bucket or table mismatches when its rows or checksum differ):');
  o.out(
    `  ${'table'.padEnd(w)}  ${'embedded'.padStart(11)}  ${'cluster'.padStart(11)}  ${'compared'.padEnd(12)}  mismatches`,
  );
  let bad = 0;
  for (const [name, t] of tally) {
    bad += t.mismatches;
    const ex =
      t.examples.length === 0
        ? ''
        : ` (${t.examples.join(', ')}${t.mismatches > t.examples.length ? ', …' : ''})`;
    o.out(
      `  ${name.padEnd(w)}  ${fmt(t.embedded).padStart(11)}  ${fmt(t.cluster).padStart(11)}  ${t.compared.padEnd(12)}  ${t.mismatches}${ex}`,
    );
  }
  o.out(
    `  click compaction watermark ${new Date(through).toISOString()}: ${offMark.length === 0 ? `the same on all ${shards.length} shards` : `MISMATCH (${offMark.join(', ')})`}`,
  );
  o.out(
    `  links on a shard that does not own their bucket: ${misplaced.length === 0 ? 'none' : `MISMATCH (${misplaced.join(', ')})`}`,
  );
  bad += offMark.length + misplaced.length;
  const strays = await unplacedClickRows(emb);
  if (strays > 0)
    o.out(
      `  note: ${fmt(strays)} click row(s) in the embedded database name no link (no bucket places them) and were not moved.`,
    );
  return bad === 0;
}

/** Click rows whose key names no link: the per-bucket copy never sees them (normally none). */
async function unplacedClickRows(db: SqlClient): Promise<number> {
  let n = 0;
  for (const table of ['click_packs', 'click_packs_daily', 'click_visits']) {
    const res = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${table} t
       WHERE t.code <> '' AND left(t.code, 1) <> '#' AND NOT EXISTS (
         SELECT 1 FROM links l WHERE l.code = regexp_replace(t.code, '^.*/', '')
           AND l.domain = coalesce(substring(t.code FROM '^(.*)/'), ''))`,
    );
    n += res.rows[0]?.n ?? 0;
  }
  return n;
}
