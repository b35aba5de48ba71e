// PostgreSQL clusters for the benchmarks: started with a CPU budget per server (or a note saying why
// not), seeded with `hop import`, explained, and watched: per server its CPU, its cgroup's throttling
// and Hop's connection-pool waits for it, over any window a scenario brackets with two samples.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import {
  type Cluster,
  type ClusterServer,
  databaseUrls,
  startCluster,
  stopCluster,
} from '../../scripts/cluster/pg-cluster.ts';
import {
  cfsQuotaUs,
  cpuQuotaUnavailable,
  parseCpuStat,
  type Throttling,
} from '../../scripts/lib/cpu-cgroup.ts';
import { readMachineBusyMs, readProcessTreeCpuMs } from './child.ts';
import { bucketQuantile, type PoolCounts, poolCountsDelta, readPoolCounts } from './hop-metrics.ts';
import { type HopSetup, type ImportResult, importLinks } from './hop-process.ts';
import type { Target } from './http-client.ts';
import { fmtInt, fmtMs, type Table } from './report.ts';
import { REDIRECT_LOOKUP_SQL } from './store-admin.ts';

export interface BenchCluster {
  cluster: Cluster;
  /** HOP_DATABASE_URLS for this cluster. */
  urls: string;
  /** Cores per server actually applied; null when none was asked for or it could not be applied. */
  cpuQuota: number | null;
  /** Anything the reader must know (a quota not applied). */
  notes: string[];
  /** Stops every server and removes the cgroups and the directory; safe to call twice. */
  stop(): Promise<void>;
}

export interface BenchClusterOptions {
  shards: number;
  replicas: number;
  /** Cores per PostgreSQL server (cgroup v1 CFS quota); null for none. */
  cpuQuota: number | null;
  verbose: boolean;
  log: (line: string) => void;
}

/** A throwaway cluster; a CPU quota that cannot be applied is noted and the servers run unconfined. */
export async function startBenchCluster(o: BenchClusterOptions): Promise<BenchCluster> {
  const notes: string[] = [];
  let cpuQuota = o.cpuQuota;
  if (cpuQuota !== null) {
    const why = await cpuQuotaUnavailable();
    if (why !== null) {
      const msg = `CPU quota of ${cpuQuota} cores per PostgreSQL server NOT applied: ${why}`;
      o.log(msg);
      notes.push(msg);
      cpuQuota = null;
    }
  }
  const shape = `${o.shards} shard(s) × (1 primary + ${o.replicas} replica(s))`;
  o.log(`starting PostgreSQL: ${shape}${cpuQuota === null ? '' : `, ${cpuQuota} cores each`}`);
  const cluster = await startCluster({
    shards: o.shards,
    replicas: o.replicas,
    cpuQuota,
    // Throwaway data: fsync off, as a benchmark of CPU budgets (not of this machine's disk) wants.
    fsync: false,
    ...(o.verbose ? { log: (line: string) => o.log(`cluster: ${line}`) } : {}),
  });
  let stopped: Promise<void> | null = null;
  return {
    cluster,
    urls: databaseUrls(cluster),
    cpuQuota,
    notes,
    stop: () => {
      stopped ??= stopCluster(cluster);
      return stopped;
    },
  };
}

/**
 * Runs `fn` with every server's CPU budget lifted, then puts the budgets back (throws if it cannot:
 * a measurement must not run unconfined unknowingly). Seeding is setup, not measurement, and a
 * `hop import` batch on a server held to a tenth of a core outlasts Hop's statement timeout.
 */
export async function withoutCpuBudget<T>(bc: BenchCluster, fn: () => Promise<T>): Promise<T> {
  const groups = bc.cluster.servers.map((s) => s.cgroup).filter((g): g is string => g !== null);
  if (bc.cpuQuota === null || groups.length === 0) return fn();
  const quota = String(cfsQuotaUs(bc.cpuQuota));
  try {
    for (const g of groups) await writeFile(join(g, 'cpu.cfs_quota_us'), '-1');
    return await fn();
  } finally {
    for (const g of groups) await writeFile(join(g, 'cpu.cfs_quota_us'), quota);
  }
}

/** `hop import` of the links file into the cluster (the setup's env gets HOP_DATABASE_URLS). */
export function importIntoCluster(
  bc: BenchCluster,
  setup: HopSetup,
  linksFile: string,
  links: number,
): Promise<ImportResult> {
  return importLinks({ ...setup, env: { ...setup.env, HOP_DATABASE_URLS: bc.urls } }, linksFile, links);
}

async function withClient<T>(server: ClusterServer, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: server.url, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * EXPLAIN (ANALYZE, BUFFERS) of Hop's redirect lookup on every server of every shard, each with a
 * code of its own shard (the most popular one it holds), after ANALYZE on the primaries; one table
 * per server, with the rows it holds.
 */
export async function explainOnCluster(bc: BenchCluster, codes: readonly string[]): Promise<Table[]> {
  const tables: Table[] = [];
  const candidates = codes.slice(0, 2000);
  for (let shard = 0; shard < bc.cluster.shards; shard++) {
    const servers = bc.cluster.servers.filter((s) => s.shard === shard).sort((a, b) => a.replica - b.replica);
    const primary = servers[0]!;
    const code = await withClient(primary, async (c) => {
      // Fresh statistics, so that the plan is the one the planner picks for this data; replicas
      // receive them with the WAL.
      await c.query('ANALYZE links');
      const { rows } = await c.query<{ code: string }>(
        'SELECT code FROM links WHERE code = ANY($1::text[])',
        [candidates],
      );
      const held = new Set(rows.map((r) => r.code));
      return candidates.find((x) => held.has(x)) ?? null;
    });
    for (const s of servers) {
      const { plan, rows } = await withClient(s, async (c) => {
        const count = await c.query<{ n: string }>('SELECT count(*) AS n FROM links');
        if (code === null) return { plan: [] as string[], rows: Number(count.rows[0]?.n ?? 0) };
        // One untimed execution first: the plan then shows the steady state, pages in shared buffers.
        await c.query(REDIRECT_LOOKUP_SQL, [code]);
        const res = await c.query<{ 'QUERY PLAN': string }>(
          `EXPLAIN (ANALYZE, BUFFERS) ${REDIRECT_LOOKUP_SQL}`,
          [code],
        );
        return { plan: res.rows.map((r) => r['QUERY PLAN']), rows: Number(count.rows[0]?.n ?? 0) };
      });
      tables.push({
        title: `EXPLAIN (ANALYZE, BUFFERS) on ${s.name} with $1 = '${code ?? '(none)'}'`,
        head: ['QUERY PLAN'],
        align: 'l',
        rows: plan.length === 0 ? [['(no code of the import on this shard)']] : plan.map((line) => [line]),
        note: `${fmtInt(rows)} rows in links on ${s.name} (${s.role}, shard ${s.shard}).`,
      });
    }
  }
  return tables;
}

// ---------------------------------------------------------------------------------------------
// Watching the servers over a window

export interface ServerSample {
  name: string;
  /** The postmaster and its backends, reaped ones included. */
  cpuMs: number | null;
  throttling: Throttling | null;
}

export interface ClusterSample {
  /** performance.now() when taken. */
  at: number;
  servers: ServerSample[];
  /** Hop's pool figures per server; null when /metrics did not answer. */
  pool: Map<string, PoolCounts> | null;
  machineBusyMs: number | null;
}

async function readThrottling(cgroup: string | null): Promise<Throttling | null> {
  if (cgroup === null) return null;
  try {
    return parseCpuStat(await readFile(join(cgroup, 'cpu.stat'), 'utf8'));
  } catch {
    return null;
  }
}

/** Everything a window needs at one instant: the servers' CPU and throttling, Hop's pool counters. */
export async function sampleCluster(cluster: Cluster, hop: Target | null): Promise<ClusterSample> {
  const pool = hop === null ? null : await readPoolCounts(hop);
  const servers = await Promise.all(
    cluster.servers.map(async (s) => ({
      name: s.name,
      cpuMs: s.pid === null ? null : readProcessTreeCpuMs(s.pid),
      throttling: await readThrottling(s.cgroup),
    })),
  );
  return { at: performance.now(), servers, pool, machineBusyMs: readMachineBusyMs() };
}

export interface ServerWindow {
  name: string;
  role: 'primary' | 'replica';
  shard: number;
  /** Cores used on average over the window. */
  cpuCores: number | null;
  /** The server's budget; null when unconfined. */
  quotaCores: number | null;
  /** Share of the CFS periods in which the group ran that ended throttled. */
  throttledShare: number | null;
  throttledMs: number | null;
  /** Hop's pool waits and refusals for this server over the window. */
  pool: PoolCounts | null;
}

export interface ClusterWindow {
  elapsedS: number;
  servers: ServerWindow[];
  /** The whole machine's busy cores on average over the window. */
  machineBusyCores: number | null;
}

/** What happened between two samples of the same cluster. */
export function clusterWindow(
  cluster: Pick<Cluster, 'servers' | 'cpuQuota'>,
  before: ClusterSample,
  after: ClusterSample,
): ClusterWindow {
  const elapsedS = Math.max(1e-9, (after.at - before.at) / 1000);
  const pool = before.pool !== null && after.pool !== null ? poolCountsDelta(before.pool, after.pool) : null;
  const servers = cluster.servers.map((s): ServerWindow => {
    const b = before.servers.find((x) => x.name === s.name);
    const a = after.servers.find((x) => x.name === s.name);
    const cpuMs = b?.cpuMs != null && a?.cpuMs != null ? a.cpuMs - b.cpuMs : null;
    const tb = b?.throttling ?? null;
    const ta = a?.throttling ?? null;
    const periods = ta !== null && tb !== null ? ta.periods - tb.periods : null;
    return {
      name: s.name,
      role: s.role,
      shard: s.shard,
      cpuCores: cpuMs === null ? null : cpuMs / 1000 / elapsedS,
      quotaCores: s.cgroup === null ? null : cluster.cpuQuota,
      throttledShare:
        periods === null || ta === null || tb === null
          ? null
          : periods > 0
            ? (ta.throttledPeriods - tb.throttledPeriods) / periods
            : 0,
      throttledMs: ta !== null && tb !== null ? ta.throttledMs - tb.throttledMs : null,
      pool: pool?.get(s.name) ?? (pool === null ? null : { buckets: [], sum: 0, count: 0, refused: {} }),
    };
  });
  const machineBusyCores =
    before.machineBusyMs !== null && after.machineBusyMs !== null
      ? (after.machineBusyMs - before.machineBusyMs) / 1000 / elapsedS
      : null;
  return { elapsedS, servers, machineBusyCores };
}

// ---------------------------------------------------------------------------------------------
// Formatting

/** "0.24 of 0.25" cores, or the cores alone when unconfined. */
export function fmtCores(used: number | null, budget: number | null): string {
  if (used === null) return 'n/a';
  return budget === null ? `${used.toFixed(2)}` : `${used.toFixed(2)} of ${budget}`;
}

export function fmtShareOf(x: number | null): string {
  return x === null ? 'n/a' : `${(x * 100).toFixed(0)}%`;
}

/** Mean and p99 acquire wait in ms ("p99 > 2.5 s" when it fell past the last bucket). */
export function poolWait(p: PoolCounts | null): { count: number; mean: string; p99: string } {
  if (p === null) return { count: 0, mean: 'n/a', p99: 'n/a' };
  if (p.count <= 0) return { count: 0, mean: '-', p99: '-' };
  const q = bucketQuantile(p.buckets, 0.99);
  return {
    count: p.count,
    mean: fmtMs((p.sum / p.count) * 1000),
    p99: q === null ? '-' : q.overflow ? `> ${fmtMs(q.seconds * 1000)}` : fmtMs(q.seconds * 1000),
  };
}

/** Refusals by reason, e.g. "12 (timeout 12)", or "0". */
export function fmtRefused(p: PoolCounts | null): string {
  if (p === null) return 'n/a';
  const parts = Object.entries(p.refused).filter(([, n]) => n > 0);
  const total = parts.reduce((a, [, n]) => a + n, 0);
  return total === 0 ? '0' : `${fmtInt(total)} (${parts.map(([r, n]) => `${r} ${fmtInt(n)}`).join(', ')})`;
}

/** One part of a system under load and its CPU budget (null: none known). */
export interface CpuPart {
  name: string;
  usedCores: number | null;
  budgetCores: number | null;
}

/**
 * The parts that used at least `threshold` of their CPU budget: the ones holding throughput back.
 * Parts without a figure or a budget are never named.
 */
export function saturatedParts(parts: readonly CpuPart[], threshold = 0.85): CpuPart[] {
  return parts.filter(
    (p) =>
      p.usedCores !== null &&
      p.budgetCores !== null &&
      p.budgetCores > 0 &&
      p.usedCores >= threshold * p.budgetCores,
  );
}

/** "shard0-primary 0.25/0.25, Hop 0.61/1" for a list of parts. */
export function fmtParts(parts: readonly CpuPart[]): string {
  return parts
    .map((p) => `${p.name} ${p.usedCores === null ? 'n/a' : p.usedCores.toFixed(2)}/${p.budgetCores ?? '-'}`)
    .join(', ');
}

/**
 * One row per server per window: its CPU against its budget, how often its quota throttled it, and
 * how long Hop's queries waited for one of its pooled connections.
 */
export function serverWindowsTable(
  title: string,
  windows: readonly { label: string; window: ClusterWindow }[],
  note?: string,
): Table {
  const rows: string[][] = [];
  for (const { label, window } of windows) {
    for (const s of window.servers) {
      const w = poolWait(s.pool);
      rows.push([
        label,
        s.name,
        fmtCores(s.cpuCores, s.quotaCores),
        fmtShareOf(s.throttledShare),
        fmtInt(w.count),
        w.mean,
        w.p99,
        fmtRefused(s.pool),
      ]);
    }
  }
  return {
    title,
    head: [
      'window',
      'server',
      'CPU cores',
      'throttled',
      'acquires',
      'wait mean ms',
      'wait p99 ms',
      'refused',
    ],
    align: 'llrrrrrr',
    rows,
    note:
      note ??
      'CPU cores: the server (postmaster and backends) on average over the window, of its cgroup budget. ' +
        'throttled: share of the CFS periods in which the server ran that ended with its quota used up. ' +
        "acquires and waits: Hop's hop_db_pool_acquire_seconds over the window (its 1 s warm-up included); the " +
        'mean is exact, the p99 is interpolated within the histogram buckets (0.1, 0.5, 1, 5, 10, 50, 100, 250, ' +
        '500 ms, 1 s, 2.5 s). refused: hop_db_pool_refused_total by reason.',
  };
}
