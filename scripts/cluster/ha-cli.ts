// The HA shape's commands for scripts/cluster.ts: `up --ha`, `status` and `down` of an HA cluster dir,
// and `switchover --shard N`.
import { writeFile } from 'node:fs/promises';
import { textTable } from '../lib/text-table.ts';
import {
  type HaCluster,
  type HaServerStatus,
  haDatabaseUrls,
  haEnvFileText,
  haStatus,
  loadHaCluster,
  type SyncMode,
  startHaCluster,
  stopHaCluster,
  switchover,
} from './ha-cluster.ts';
import { ClusterError } from './pg-cluster.ts';

export interface HaUpOptions {
  dir: string;
  shards: number;
  replicas: number;
  sync: SyncMode;
  cpuQuota: number | null;
  backups: { archiveTimeoutS: number } | null;
  log: (line: string) => void;
}

export function syncModeOf(text: string | undefined): SyncMode {
  if (text === undefined) return 'on';
  if (text === 'on' || text === 'strict' || text === 'off') return text;
  throw new ClusterError(`--sync needs on, strict or off, got '${text}'`);
}

export async function upHa(o: HaUpOptions): Promise<HaCluster> {
  return startHaCluster({ ...o, detached: true });
}

/** What `up` prints and writes for the HA shape, Redis's lines (if any) appended by the caller. */
export async function reportHaUp(c: HaCluster, envFile: string | null, redisEnv: string): Promise<void> {
  process.stdout.write(`${haTable(await haStatus(c))}\n\n`);
  process.stdout.write(
    `HA cluster up in ${c.dir}: ${c.shards} shard(s) × (1 primary + ${c.replicas} replica(s)), ` +
      `synchronous replication ${c.sync}, Patroni on etcd, HAProxy in front of each primary\n`,
  );
  if (envFile !== null) {
    await writeFile(envFile, haEnvFileText(c) + redisEnv);
    process.stdout.write(`wrote ${envFile}\n`);
  }
  process.stdout.write(`stop it with: npm run cluster -- down --dir ${c.dir}\n\n`);
  process.stdout.write(`HOP_DATABASE_URLS="${haDatabaseUrls(c)}"\n`);
}

export async function haStatusJson(c: HaCluster): Promise<Record<string, unknown>> {
  return {
    dir: c.dir,
    ha: true,
    shards: c.shards,
    replicas: c.replicas,
    sync: c.sync,
    cpuQuota: c.cpuQuota,
    databaseUrls: haDatabaseUrls(c),
    servers: await haStatus(c),
  };
}

export async function printHaStatus(c: HaCluster): Promise<void> {
  process.stdout.write(
    `${c.dir}: HA, ${c.shards} shard(s) × ${c.replicas + 1} member(s), synchronous replication ${c.sync}\n`,
  );
  process.stdout.write(`${haTable(await haStatus(c))}\n`);
}

export async function switchoverCommand(dir: string, shard: number): Promise<number> {
  const c = await loadHaCluster(dir);
  if (shard >= c.shards)
    throw new ClusterError(`--shard ${shard}: the cluster has shards 0 to ${c.shards - 1}`);
  const r = await switchover(c, shard);
  process.stdout.write(
    `shard ${shard}: switched over from ${r.from} to ${r.to} in ${(r.ms / 1000).toFixed(1)} s ` +
      '(the old primary follows the new one as a replica)\n',
  );
  return 0;
}

export async function downHa(dir: string): Promise<number> {
  const c = await loadHaCluster(dir);
  await stopHaCluster(c);
  process.stdout.write(
    `stopped the HA cluster (etcd, ${c.members.length} Patroni members, HAProxy), removed ${dir}\n`,
  );
  return 0;
}

export { loadHaCluster };

function haTable(servers: HaServerStatus[]): string {
  const head = ['SERVER', 'ROLE', 'SYNC', 'STATE', 'TL', 'PORT', 'PID', 'PATRONI'];
  const rows = servers.map((s) => [
    s.name,
    s.role,
    s.sync ? 'sync' : '',
    s.state ?? '-',
    s.timeline === null ? '' : String(s.timeline),
    String(s.port),
    s.pid === null ? '-' : String(s.pid),
    s.patroniPid === null ? '' : String(s.patroniPid),
  ]);
  return textTable(head, rows);
}
