// The faults, each on its own: inject() breaks something and returns once the fault is in place;
// heal() undoes what a person or a supervisor would (restart what was killed, continue what was
// stopped) and returns once the system is whole again, so the next fault starts from health.
import {
  haStatus,
  memberNamed,
  restartEtcd,
  restartMember,
  switchover,
  waitHealthy,
  waitPrimaryThroughBalancer,
} from '../../scripts/cluster/ha-cluster.ts';
import {
  killRedisServer,
  redisPrimary,
  startRedisServer,
  waitRedisFailover,
} from '../../scripts/cluster/redis-servers.ts';
import { restartHop, waitInRotation } from '../../scripts/fleet/fleet.ts';
import { descendants, signal, waitGone } from '../../scripts/lib/processes.ts';
import { stopServer } from '../../scripts/lib/supervisor.ts';
import { type ChaosSystem, startWorker } from './system.ts';

export interface FaultTimings {
  /** How long a zombie primary stays stopped (the issue: 30 s). */
  readonly zombieMs: number;
  /** How long etcd stays down (the issue: 20 s). */
  readonly etcdDownMs: number;
}

export const FULL_TIMINGS: FaultTimings = { zombieMs: 30_000, etcdDownMs: 20_000 };

/**
 * Shorter, for tests and a first look. The zombie must stay stopped well past the leader key's TTL
 * (10 s): a shorter pause is no failover at all, and the primary simply carries on.
 */
export const QUICK_TIMINGS: FaultTimings = { zombieMs: 20_000, etcdDownMs: 10_000 };

export interface Fault {
  readonly name: string;
  readonly what: string;
  /**
   * The most write unavailability it may cause with QUICK_TIMINGS (the tests hold it to this):
   * Patroni's TTL (10 s) plus its loop and HAProxy's checks where a leader is lost.
   */
  readonly rtoBoundMs: number;
  /** Clicks may be lost (an acknowledged Redis write or a killed process's buffer); never double-counted. */
  readonly clicksMayBeLost: boolean;
  inject(sys: ChaosSystem, t: FaultTimings): Promise<{ note: string; heal: () => Promise<void> }>;
}

async function primaryOf(sys: ChaosSystem, shard: number) {
  const all = await haStatus(sys.ha);
  const p = all.find((s) => s.shard === shard && s.role === 'primary');
  if (p === undefined || p.pid === null) throw new Error(`shard ${shard} has no running primary`);
  return p;
}

async function healShard(sys: ChaosSystem, shard: number): Promise<void> {
  await waitHealthy(sys.ha, shard, 120_000);
  await waitPrimaryThroughBalancer(sys.ha, shard, 60_000);
}

const killTree = async (pids: number[]) => {
  const all = [...new Set(pids.flatMap((p) => [p, ...descendants(p)]))];
  for (const p of all) signal(p, 'SIGKILL');
  await waitGone(all, 10_000);
};

export const FAULTS: readonly Fault[] = [
  {
    name: 'pg-postgres',
    rtoBoundMs: 20_000,
    clicksMayBeLost: false,
    what: "SIGKILL the primary's postgres alone (Patroni restarts it or fails over)",
    async inject(sys) {
      const p = await primaryOf(sys, 0);
      await killTree([p.pid!]);
      return { note: `killed ${p.name}'s postgres`, heal: () => healShard(sys, 0) };
    },
  },
  {
    name: 'pg-node',
    rtoBoundMs: 20_000,
    clicksMayBeLost: false,
    what: "SIGKILL a primary's Patroni and postgres together (the node dies)",
    async inject(sys) {
      const p = await primaryOf(sys, 0);
      await killTree([p.patroniPid!, p.pid!]);
      return {
        note: `killed ${p.name} (Patroni and postgres)`,
        heal: async () => {
          // A person (or systemd) starts the node again once the cluster has moved on: it rejoins
          // as a replica, rewound (pg_rewind) if it had diverged.
          await waitPrimaryThroughBalancer(sys.ha, 0, 60_000);
          await restartMember(sys.ha, p.name);
          await healShard(sys, 0);
        },
      };
    },
  },
  {
    name: 'pg-zombie',
    rtoBoundMs: 25_000,
    clicksMayBeLost: false,
    what: 'SIGSTOP the primary (Patroni, postgres and its backends), then SIGCONT: it must come back as a replica',
    async inject(sys, t) {
      const p = await primaryOf(sys, 0);
      const frozen = [p.patroniPid!, ...descendants(p.patroniPid!), p.pid!, ...descendants(p.pid!)];
      for (const pid of new Set(frozen)) signal(pid, 'SIGSTOP');
      return {
        note: `stopped ${p.name} for ${t.zombieMs / 1000} s`,
        heal: async () => {
          await sleep(t.zombieMs);
          for (const pid of new Set(frozen)) signal(pid, 'SIGCONT');
          // It wakes believing it leads; Patroni finds the key gone, demotes it (rewinding what it
          // may have written alone) and it follows the new leader.
          const deadline = Date.now() + 90_000;
          for (;;) {
            const role = (await haStatus(sys.ha)).find((s) => s.name === p.name)?.role;
            if (role === 'replica') break;
            if (Date.now() > deadline) throw new Error(`${p.name} came back as ${role}, not a replica`);
            await sleep(250);
          }
          await healShard(sys, 0);
        },
      };
    },
  },
  {
    name: 'pg-replica',
    rtoBoundMs: 10_000,
    clicksMayBeLost: false,
    what: 'SIGKILL an asynchronous replica, then the synchronous standby (their Patroni restarts each)',
    async inject(sys) {
      const all = (await haStatus(sys.ha)).filter(
        (s) => s.shard === 0 && s.role === 'replica' && s.pid !== null,
      );
      const async = all.find((s) => !s.sync);
      const standby = all.find((s) => s.sync);
      if (async !== undefined) await killTree([async.pid!]);
      await sleep(1_000);
      if (standby !== undefined) await killTree([standby.pid!]);
      return {
        note: `killed ${[async?.name, standby?.name].filter(Boolean).join(' then ')}`,
        heal: () => healShard(sys, 0),
      };
    },
  },
  {
    name: 'etcd',
    rtoBoundMs: 5_000,
    clicksMayBeLost: false,
    what: 'SIGKILL etcd for a while (failsafe mode: the primary keeps its role while it reaches every member)',
    async inject(sys, t) {
      const pid = sys.ha.etcd.server!.pid;
      await killTree([pid]);
      return {
        note: `etcd down ${t.etcdDownMs / 1000} s`,
        heal: async () => {
          await sleep(t.etcdDownMs);
          await restartEtcd(sys.ha);
          await healShard(sys, 0);
        },
      };
    },
  },
  {
    name: 'redis-primary',
    rtoBoundMs: 5_000,
    clicksMayBeLost: true,
    what: 'SIGKILL the Redis primary (Sentinel promotes its replica)',
    async inject(sys) {
      if (sys.redis.mode !== 'sentinel') throw new Error('the Redis fault needs --redis sentinel');
      const p = await redisPrimary(sys.redis);
      await killRedisServer(sys.redis, p.name);
      return {
        note: `killed ${p.name}`,
        heal: async () => {
          const next = await waitRedisFailover(sys.redis, p.name, 60_000);
          // It comes back empty, as a replica of the new primary (nothing was persisted).
          await startRedisServer(sys.redis, p.name);
          sys.log(`redis: ${next.name} is the primary now; ${p.name} back as its replica`);
        },
      };
    },
  },
  {
    name: 'hop',
    rtoBoundMs: 5_000,
    clicksMayBeLost: true,
    what: 'SIGKILL a Hop process (the balancer routes around it), then the worker',
    async inject(sys) {
      const victim = sys.fleet.hops[0]!;
      signal(victim.pid, 'SIGKILL');
      await waitGone([victim.pid], 5_000);
      return {
        note: `killed ${victim.name}, then the worker`,
        heal: async () => {
          await sleep(2_000);
          await restartHop(sys.fleet, victim.name);
          await waitInRotation(sys.fleet, [victim.name]);
          signal(sys.worker.pid, 'SIGKILL');
          await waitGone([sys.worker.pid], 5_000);
          await stopServer(sys.worker);
          await sleep(2_000);
          sys.worker = await startWorker(sys);
        },
      };
    },
  },
  {
    name: 'switchover',
    rtoBoundMs: 10_000,
    clicksMayBeLost: false,
    what: 'a planned switchover through Patroni',
    async inject(sys) {
      const r = await switchover(sys.ha, 0);
      return {
        note: `${r.from} → ${r.to} in ${(r.ms / 1000).toFixed(1)} s`,
        heal: async () => {
          await healShard(sys, 0);
          memberNamed(sys.ha, r.from);
        },
      };
    },
  },
];

export function faultsNamed(names: readonly string[] | null): Fault[] {
  if (names === null) return [...FAULTS];
  return names.map((n) => {
    const f = FAULTS.find((x) => x.name === n);
    if (f === undefined) throw new Error(`no fault ${n} (${FAULTS.map((x) => x.name).join(', ')})`);
    return f;
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
