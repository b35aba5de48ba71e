// What the chaos suite breaks: an HA cluster (Patroni on etcd, HAProxy in front of each primary),
// Redis (Sentinel when it can be run, a single server otherwise), two Hop processes behind HAProxy
// (the fleet), and one `hop worker` writing the click stream into PostgreSQL.
import { join } from 'node:path';
import {
  type HaCluster,
  haDatabaseUrls,
  type SyncMode,
  startHaCluster,
  stopHaCluster,
} from '../../scripts/cluster/ha-cluster.ts';
import {
  type RedisMode,
  type RedisServers,
  startRedis,
  stopRedis,
} from '../../scripts/cluster/redis-servers.ts';
import { type Fleet, startFleet, stopFleet } from '../../scripts/fleet/fleet.ts';
import { freePort } from '../../scripts/lib/free-port.ts';
import { httpReady, type RunningServer, startServer, stopServer } from '../../scripts/lib/supervisor.ts';
import { REPO_ROOT } from '../lib/hop-process.ts';
import { CHAOS_KEY } from './load.ts';

export interface ChaosSystem {
  readonly dir: string;
  readonly ha: HaCluster;
  readonly redis: RedisServers;
  readonly fleet: Fleet;
  worker: RunningServer;
  readonly workerPort: number;
  readonly env: Readonly<Record<string, string>>;
  readonly log: (line: string) => void;
}

export interface ChaosSystemOptions {
  readonly dir: string;
  readonly shards?: number;
  readonly sync?: SyncMode;
  readonly redis?: RedisMode;
  /** Cores per server and per Hop process (cgroup v1 quota); null: unconfined. */
  readonly cpuQuota?: number | null;
  readonly log?: (line: string) => void;
  /** Extra Hop settings. */
  readonly hopEnv?: Readonly<Record<string, string>>;
}

export async function startChaosSystem(o: ChaosSystemOptions): Promise<ChaosSystem> {
  const log = o.log ?? (() => {});
  const ha = await startHaCluster({
    dir: join(o.dir, 'pg'),
    shards: o.shards ?? 1,
    replicas: 2,
    sync: o.sync ?? 'on',
    cpuQuota: o.cpuQuota ?? null,
    log,
  });
  let redis: RedisServers | null = null;
  let fleet: Fleet | null = null;
  try {
    redis = await startRedis({
      mode: o.redis ?? 'sentinel',
      dir: join(o.dir, 'redis'),
      cpuQuota: o.cpuQuota ?? null,
      log,
    });
    const env: Record<string, string> = {
      HOP_DATABASE_URLS: haDatabaseUrls(ha),
      HOP_REDIS_URL: redis.url,
      HOP_CLICK_PIPELINE: 'stream',
      HOP_INITIAL_API_KEY: CHAOS_KEY,
      HOP_LOG_LEVEL: 'warn',
      // The load is the suite's own: no limit may turn it away.
      HOP_RATE_LIMITS: 'off',
      // Replicas are checked often, so a member that changed role leaves or joins the rotation quickly.
      HOP_REPLICA_CHECK_MS: '250',
      ...o.hopEnv,
    };
    fleet = await startFleet({ dir: join(o.dir, 'fleet'), hops: 2, env, cpuQuota: o.cpuQuota ?? null, log });
    const workerPort = await freePort();
    const sys: ChaosSystem = {
      dir: o.dir,
      ha,
      redis,
      fleet,
      worker: null as unknown as RunningServer,
      workerPort,
      env: fleet.env,
      log,
    };
    sys.worker = await startWorker(sys);
    log(`worker pid ${sys.worker.pid}`);
    return sys;
  } catch (err) {
    if (fleet !== null) await stopFleet(fleet).catch(() => {});
    if (redis !== null) await stopRedis(redis).catch(() => {});
    await stopHaCluster(ha).catch(() => {});
    throw err;
  }
}

export async function startWorker(sys: ChaosSystem): Promise<RunningServer> {
  return startServer(
    {
      name: 'hop-worker',
      command: process.execPath,
      args: [join(REPO_ROOT, 'bin/hop.js'), 'worker'],
      env: { ...sys.env, HOP_WORKER_PORT: String(sys.workerPort), HOST: '127.0.0.1' },
      cwd: REPO_ROOT,
      logFile: join(sys.dir, 'worker.log'),
      ready: httpReady(`http://127.0.0.1:${sys.workerPort}/healthz`),
      readyTimeoutMs: 60_000,
      cpuQuota: sys.fleet.cpuQuota,
    },
    'hop-chaos',
  );
}

export async function stopChaosSystem(sys: ChaosSystem): Promise<void> {
  await stopServer(sys.worker, { graceMs: 10_000 }).catch(() => {});
  await stopFleet(sys.fleet).catch(() => {});
  await stopRedis(sys.redis).catch(() => {});
  await stopHaCluster(sys.ha).catch(() => {});
}
