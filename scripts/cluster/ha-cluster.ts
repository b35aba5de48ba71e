// The HA shape of the local cluster: one etcd, and per shard R+1 PostgreSQL 15 servers each managed by
// its own Patroni, with HAProxy in front of every shard's current primary. Leader election is
// Patroni's on etcd; replication is PostgreSQL's; what this file owns is starting, reporting and
// stopping the processes, through the one supervisor (scripts/lib/supervisor.ts).
//
// Timings (DCS, bootstrap.dcs): ttl 10 s, loop_wait 1 s, retry_timeout 4 s. Patroni requires
// loop_wait + 2 × retry_timeout ≤ ttl (1 + 8 ≤ 10): a leader that cannot renew its key within
// retry_timeout demotes itself before the key expires, so two leaders never overlap. A dead leader is
// replaced about ttl after its last renewal. failsafe_mode: with etcd down, a leader that still reaches
// every member over their REST APIs keeps its role instead of demoting (Patroni 3.0), so an etcd
// outage pauses failover, not writes.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { cpuQuotaUnavailable } from '../lib/cpu-cgroup.ts';
import { haproxyServerStatus } from '../lib/haproxy-stats.ts';
import { findProgram, isAlive, signal, waitGone } from '../lib/processes.ts';
import {
  httpReady,
  type RunningServer,
  type ServerSpec,
  startServer,
  stopServer,
  tcpReady,
} from '../lib/supervisor.ts';
import {
  createHaStanzas,
  haArchiveCommand,
  haReplicaFromRepository,
  prepareHaBackups,
  stopHaRestored,
} from './ha-backups.ts';
import { DEFAULT_PG_CHECK, pgBalancerConfig } from './pg-balancer-config.ts';
import {
  ClusterError,
  freePorts,
  ownDir,
  pgBinDir,
  postgresUnavailable,
  serverUrl,
  serverUser,
  withClient,
} from './pg-cluster.ts';

export const HA_FILE = 'ha-cluster.json';
const DATABASE = 'hop';

export type SyncMode = 'on' | 'strict' | 'off';

export const HA_TIMINGS = { ttl: 10, loop_wait: 1, retry_timeout: 4 } as const;

export interface HaMember {
  /** shard<N>-node<M>: a node keeps its name whatever role it holds. */
  name: string;
  shard: number;
  node: number;
  pgPort: number;
  apiPort: number;
  dir: string;
  dataDir: string;
  configFile: string;
  /** Patroni's log; PostgreSQL's own goes to <dir>/postgres.log. */
  logFile: string;
  patroni: RunningServer | null;
}

export interface HaCluster {
  kind: 'ha';
  dir: string;
  id: string;
  shards: number;
  replicas: number;
  sync: SyncMode;
  cpuQuota: number | null;
  binDir: string;
  etcd: { port: number; peerPort: number; dataDir: string; logFile: string; server: RunningServer | null };
  balancer: {
    configFile: string;
    logFile: string;
    statsPort: number;
    /** Per shard, the port that reaches its current primary. */
    primaryPorts: number[];
    server: RunningServer | null;
  };
  members: HaMember[];
  /** pgBackRest (ha-backups.ts), when started with backups. */
  backups?: { configFile: string; repoDir: string; archiveTimeoutS: number } | null;
  /** Data dirs of the side copies `restore --into` started; `down` stops them. */
  restored?: string[];
}

export interface HaStartOptions {
  shards?: number;
  replicas?: number;
  sync?: SyncMode;
  dir?: string;
  cpuQuota?: number | null;
  log?: (line: string) => void;
  /** The servers outlive this process (the CLI's `up`); otherwise they are killed when it exits. */
  detached?: boolean;
  /** pgBackRest: WAL archived by whichever member leads, switched at least this often (seconds). */
  backups?: { archiveTimeoutS: number } | null;
}

/** One server as it is now, for `status --json` and for scripts that kill servers by pid. */
export interface HaServerStatus {
  name: string;
  role: 'primary' | 'replica' | 'etcd' | 'balancer' | 'down';
  shard: number | null;
  port: number;
  /** The postmaster (PostgreSQL), or the process itself (etcd, HAProxy); null when not running. */
  pid: number | null;
  /** The member's Patroni process. */
  patroniPid: number | null;
  /** The synchronous standby Patroni chose. */
  sync: boolean;
  /** Patroni's view: running, streaming, starting, stopped, …; the timeline it is on. */
  state: string | null;
  timeline: number | null;
  /** Bytes behind the leader, as Patroni reports it (replicas). */
  lag: number | null;
  dataDir: string | null;
  apiUrl: string | null;
}

// ---------------------------------------------------------------------------------------------
// Starting

export async function startHaCluster(opts: HaStartOptions = {}): Promise<HaCluster> {
  const began = performance.now();
  const log = (line: string) => opts.log?.(`${((performance.now() - began) / 1000).toFixed(2)} s ${line}`);
  const shards = opts.shards ?? 1;
  const replicas = opts.replicas ?? 2;
  const sync = opts.sync ?? 'on';
  const cpuQuota = opts.cpuQuota ?? null;
  if (!Number.isInteger(shards) || shards < 1) throw new ClusterError(`shards must be ≥ 1, got ${shards}`);
  if (!Number.isInteger(replicas) || replicas < 1) {
    throw new ClusterError(`the HA shape needs ≥ 1 replica per shard to fail over to, got ${replicas}`);
  }
  if (cpuQuota !== null) {
    const why = await cpuQuotaUnavailable();
    if (why !== null) throw new ClusterError(`cannot apply a CPU quota of ${cpuQuota} cores: ${why}`);
  }
  const missing = await haUnavailable();
  if (missing !== null) throw new ClusterError(missing);
  const dir = resolve(opts.dir ?? (await mkdtemp(join(tmpdir(), 'hop-ha-'))));
  await mkdir(dir, { recursive: true });
  const nodes = replicas + 1;
  const ports = await freePorts(3 + shards * (1 + 2 * nodes));
  const c: HaCluster = {
    kind: 'ha',
    dir,
    id: randomBytes(4).toString('hex'),
    shards,
    replicas,
    sync,
    cpuQuota,
    binDir: pgBinDir(),
    etcd: {
      port: ports.pop()!,
      peerPort: ports.pop()!,
      dataDir: join(dir, 'etcd'),
      logFile: join(dir, 'etcd.log'),
      server: null,
    },
    balancer: {
      configFile: join(dir, 'haproxy.cfg'),
      logFile: join(dir, 'haproxy.log'),
      statsPort: ports.pop()!,
      primaryPorts: Array.from({ length: shards }, () => ports.pop()!),
      server: null,
    },
    members: [],
  };
  for (let shard = 0; shard < shards; shard++) {
    for (let node = 0; node < nodes; node++) {
      const name = `shard${shard}-node${node}`;
      const memberDir = join(dir, name);
      c.members.push({
        name,
        shard,
        node,
        pgPort: ports.pop()!,
        apiPort: ports.pop()!,
        dir: memberDir,
        dataDir: join(memberDir, 'data'),
        configFile: join(memberDir, 'patroni.yml'),
        logFile: join(memberDir, 'patroni.log'),
        patroni: null,
      });
    }
  }
  if (!opts.detached) killOnExit(c);
  try {
    await ownDir(dir);
    await saveHaCluster(c);
    log(
      `starting etcd, ${shards} shard(s) × ${nodes} Patroni-managed PostgreSQL servers (sync ${sync}) in ${dir}`,
    );
    await startEtcd(c);
    log(`etcd up on port ${c.etcd.port}`);
    const user = await serverUser();
    // Before the members' configuration: their archive command names pgBackRest's.
    if (opts.backups) await prepareHaBackups(c, opts.backups.archiveTimeoutS);
    for (const m of c.members) {
      await mkdir(m.dir, { recursive: true });
      await writeFile(m.configFile, stringify(patroniConfig(c, m)));
      await ownDir(m.dir);
    }
    refuseUnreachable(c.members[0]!.configFile);
    // Node 0 of each shard first, so it bootstraps (initdb) and the others copy it.
    await Promise.all(c.members.filter((m) => m.node === 0).map((m) => startPatroni(c, m, user)));
    await Promise.all(Array.from({ length: shards }, (_, s) => waitLeader(c, s, 90_000)));
    log('every shard has a leader');
    await Promise.all(c.members.filter((m) => m.node > 0).map((m) => startPatroni(c, m, user)));
    await Promise.all(Array.from({ length: shards }, (_, s) => waitHealthy(c, s, 120_000)));
    log(`every shard's replicas stream${sync === 'off' ? '' : ', one of them synchronously'}`);
    await startBalancer(c);
    log(`HAProxy up: primaries on ports ${c.balancer.primaryPorts.join(', ')}`);
    for (let s = 0; s < shards; s++) {
      await withClient(c.balancer.primaryPorts[s]!, 'postgres', async (client) => {
        const { rows } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
        if (rows.length === 0) await client.query(`CREATE DATABASE ${DATABASE}`);
      });
    }
    if (c.backups) await createHaStanzas(c, log);
    await saveHaCluster(c);
  } catch (err) {
    log(`start failed; stopping what was started in ${dir}`);
    await stopHaCluster(c).catch(() => {});
    throw err;
  }
  log('HA cluster up');
  return c;
}

/** Why the HA shape cannot start here (a missing program), or null. */
export async function haUnavailable(): Promise<string | null> {
  const pg = await postgresUnavailable();
  if (pg !== null) return pg;
  for (const [cmd, pkg] of [
    ['patroni', 'patroni'],
    ['etcd', 'etcd-server'],
    ['haproxy', 'haproxy'],
  ] as const) {
    if (findProgram(cmd) === null)
      return `${cmd} is not installed (Debian package ${pkg}: bash scripts/ensure-debian.sh ${cmd}=${pkg})`;
  }
  return null;
}

function patroniConfig(c: HaCluster, m: HaMember): Record<string, unknown> {
  const auth = { username: 'postgres', password: 'postgres' };
  return {
    scope: `shard${m.shard}`,
    // One namespace per cluster: two clusters on one etcd never mix.
    namespace: `/hop-${c.id}/`,
    name: m.name,
    log: { level: 'INFO' },
    restapi: { listen: `127.0.0.1:${m.apiPort}`, connect_address: `127.0.0.1:${m.apiPort}` },
    // etcd's v2 API, not etcd3: the etcd3 driver of Debian's Patroni 3.0.2 renews an expired leader
    // key with an unconditional put, so a primary that wakes from a pause longer than the TTL takes
    // the key back from the leader elected meanwhile, and that leader's acknowledged commits are
    // rewound away (seen by the chaos suite's zombie fault; fixed upstream in 3.0.3, patroni#2689).
    // The v2 driver renews with compare-and-swap on its own name and demotes when that fails.
    etcd: { host: `127.0.0.1:${c.etcd.port}` },
    bootstrap: {
      dcs: {
        ...HA_TIMINGS,
        // A replica further behind than this is not promoted (it would lose acknowledged writes
        // in async mode; in sync mode only the synchronous standby is a candidate anyway).
        maximum_lag_on_failover: 1_048_576,
        synchronous_mode: c.sync !== 'off',
        synchronous_mode_strict: c.sync === 'strict',
        failsafe_mode: true,
        postgresql: {
          use_pg_rewind: true,
          use_slots: true,
          parameters: {
            wal_level: 'replica',
            hot_standby: 'on',
            hot_standby_feedback: 'on',
            wal_log_hints: 'on',
            max_wal_senders: 10,
            max_replication_slots: 10,
            max_connections: 200,
            wal_keep_size: '512MB',
            shared_buffers: '128MB',
            // Throwaway data: no fsync (the failover tests kill processes, not machines).
            fsync: 'off',
            full_page_writes: 'on',
            log_min_messages: 'warning',
          },
        },
      },
      initdb: [{ encoding: 'UTF8' }, { locale: 'C' }, { auth: 'trust' }],
      pg_hba: [
        'local all all trust',
        'host all all 127.0.0.1/32 trust',
        'host replication all 127.0.0.1/32 trust',
      ],
    },
    postgresql: {
      listen: `127.0.0.1:${m.pgPort}`,
      connect_address: `127.0.0.1:${m.pgPort}`,
      data_dir: m.dataDir,
      bin_dir: c.binDir,
      pgpass: join(m.dir, 'pgpass'),
      authentication: { superuser: auth, replication: auth, rewind: auth },
      parameters: {
        unix_socket_directories: m.dir,
        cluster_name: `hop-${c.id}-${m.name}`,
        logging_collector: 'off',
        ...(c.backups
          ? {
              // On every member: whichever leads archives, a promoted standby from its first segment.
              // In the member's own settings: its archive-push has a spool and lock of its own.
              archive_mode: 'on',
              archive_command: haArchiveCommand(c.backups.configFile, m.shard, m),
              archive_timeout: c.backups.archiveTimeoutS,
            }
          : {}),
      },
      pg_ctl_timeout: 60,
      ...(c.backups
        ? {
            // A new or rebuilt replica restores the repository's newest backup and replays the archive,
            // sparing the primary; with no backup yet, it copies the primary.
            create_replica_methods: ['pgbackrest', 'basebackup'],
            pgbackrest: haReplicaFromRepository(c.backups.configFile, m.shard, m),
            basebackup: [{ checkpoint: 'fast' }],
          }
        : {}),
    },
    tags: { nofailover: false, noloadbalance: false, clonefrom: false, nosync: false },
  };
}

async function startEtcd(c: HaCluster): Promise<void> {
  const e = c.etcd;
  c.etcd.server = await startServer(
    {
      name: 'etcd',
      command: 'etcd',
      args: [
        ...['--name', 'etcd0', '--data-dir', e.dataDir],
        ...['--listen-client-urls', `http://127.0.0.1:${e.port}`],
        ...['--advertise-client-urls', `http://127.0.0.1:${e.port}`],
        ...['--listen-peer-urls', `http://127.0.0.1:${e.peerPort}`],
        ...['--initial-advertise-peer-urls', `http://127.0.0.1:${e.peerPort}`],
        ...['--initial-cluster', `etcd0=http://127.0.0.1:${e.peerPort}`],
        // Patroni's etcd (v2) driver: see patroniConfig.
        '--enable-v2=true',
        '--initial-cluster-state',
        existsSync(e.dataDir) ? 'existing' : 'new',
      ],
      logFile: e.logFile,
      ready: httpReady(`http://127.0.0.1:${e.port}/health`),
      readyTimeoutMs: 30_000,
      cpuQuota: c.cpuQuota,
    },
    `hop-ha-${c.id}`,
  );
}

async function startPatroni(c: HaCluster, m: HaMember, user: { uid: number; gid: number }): Promise<void> {
  // PGHOST and friends from the caller's shell would point Patroni's own connections elsewhere.
  const env = Object.fromEntries(
    Object.keys(process.env)
      .filter((k) => k.startsWith('PG'))
      .map((k) => [k, '']),
  );
  const spec: ServerSpec = {
    name: m.name,
    command: 'patroni',
    args: [m.configFile],
    env: { ...env, HOME: m.dir },
    cwd: m.dir,
    uid: user.uid,
    gid: user.gid,
    logFile: m.logFile,
    // The REST API answers (any status) once Patroni runs; the role comes later (waitLeader).
    ready: async () => {
      const res = await fetch(`http://127.0.0.1:${m.apiPort}/patroni`, {
        signal: AbortSignal.timeout(2_000),
      });
      await res.arrayBuffer();
      return true;
    },
    readyTimeoutMs: 30_000,
    // Patroni and the PostgreSQL it starts share the node's budget: its children inherit the group.
    cpuQuota: c.cpuQuota,
  };
  m.patroni = await startServer(spec, `hop-ha-${c.id}`);
}

async function startBalancer(c: HaCluster): Promise<void> {
  const b = c.balancer;
  const text = pgBalancerConfig({
    shards: b.primaryPorts.map((port, shard) => ({
      bind: `127.0.0.1:${port}`,
      members: c.members
        .filter((m) => m.shard === shard)
        .map((m) => ({ name: m.name, address: `127.0.0.1:${m.pgPort}`, apiPort: m.apiPort })),
    })),
    statsBind: `127.0.0.1:${b.statsPort}`,
    check: DEFAULT_PG_CHECK,
  });
  await writeFile(b.configFile, text);
  b.server = await startServer(
    {
      name: 'haproxy-postgres',
      command: 'haproxy',
      args: ['-db', '-f', b.configFile],
      logFile: b.logFile,
      ready: tcpReady(b.primaryPorts[0]!),
      readyTimeoutMs: 15_000,
    },
    `hop-ha-${c.id}`,
  );
  // Ready once every shard's port reaches a primary.
  for (let s = 0; s < c.shards; s++) await waitPrimaryThroughBalancer(c, s, 30_000);
}

/**
 * Until HAProxy has exactly one member of the shard up and a connection through its port lands on a
 * server that is not in recovery. (HAProxy 2.6 starts every server as up before its first check, so
 * for about a second after it starts, connections may reach replicas; their writes fail read-only.)
 */
export async function waitPrimaryThroughBalancer(
  c: HaCluster,
  shard: number,
  timeoutMs: number,
): Promise<number> {
  const began = Date.now();
  let last = 'no answer';
  for (;;) {
    try {
      const up = await balancerUpMembers(c, shard);
      if (up.length !== 1) throw new Error(`HAProxy has ${up.length} members up (${up.join(', ')})`);
      const recovering = await withClient(c.balancer.primaryPorts[shard]!, 'postgres', async (client) => {
        const { rows } = await client.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
        return rows[0]!.r;
      });
      if (!recovering) return Date.now() - began;
      last = 'reached a server in recovery';
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() - began > timeoutMs) {
      throw new ClusterError(
        `shard ${shard}: no primary through the balancer after ${timeoutMs} ms (${last})\n${await diagnosis(c, shard)}`,
      );
    }
    await sleep(100);
  }
}

/** The members HAProxy routes the shard's primary port to now (status UP, or UP going down). */
export async function balancerUpMembers(c: HaCluster, shard: number): Promise<string[]> {
  const servers = await haproxyServerStatus(
    `http://127.0.0.1:${c.balancer.statsPort}`,
    `shard${shard}-primary`,
  );
  return [...servers].filter(([, status]) => status.startsWith('UP')).map(([name]) => name);
}

// ---------------------------------------------------------------------------------------------
// Patroni's view

interface PatroniMember {
  name: string;
  role: string;
  state: string;
  timeline?: number;
  lag?: number | string;
}

/** The shard's members as Patroni's DCS has them, asked of the first member that answers. */
export async function patroniMembers(c: HaCluster, shard: number): Promise<PatroniMember[] | null> {
  for (const m of c.members.filter((x) => x.shard === shard)) {
    try {
      const res = await fetch(`http://127.0.0.1:${m.apiPort}/cluster`, {
        signal: AbortSignal.timeout(1_500),
      });
      if (!res.ok) continue;
      return ((await res.json()) as { members: PatroniMember[] }).members;
    } catch {
      // Try the next member.
    }
  }
  return null;
}

async function waitLeader(c: HaCluster, shard: number, timeoutMs: number): Promise<void> {
  await waitFor(`shard ${shard}: a running leader`, timeoutMs, c, async () => {
    const members = await patroniMembers(c, shard);
    return members?.some((m) => m.role === 'leader' && m.state === 'running') === true;
  });
}

// How far behind the leader a replica may be and still count as caught up: a quarter of
// maximum_lag_on_failover, so a fault injected next finds every replica promotable.
const CAUGHT_UP_BYTES = 262_144;

/**
 * A running leader, every replica running and caught up, with sync on a synchronous standby, and
 * every running member in the leader's /failsafe list.
 */
export async function waitHealthy(c: HaCluster, shard: number, timeoutMs: number): Promise<void> {
  const want = c.replicas + 1;
  await waitFor(`shard ${shard}: a leader and ${c.replicas} streaming replica(s)`, timeoutMs, c, async () => {
    const members = (await patroniMembers(c, shard)) ?? [];
    const running = members.filter((m) => m.state === 'running' || m.state === 'streaming');
    // Caught up too: a replica Patroni sees more than maximum_lag_on_failover behind the leader's
    // last position may not be promoted, so a primary lost while its replicas still catch up (after
    // a crash restart's checkpoint, say) can leave the shard without a leader.
    const ready =
      running.length === want &&
      running.filter((m) => m.role === 'leader').length === 1 &&
      (c.sync === 'off' || running.some((m) => m.role === 'sync_standby')) &&
      running.every((m) => m.role === 'leader' || (typeof m.lag === 'number' && m.lag <= CAUGHT_UP_BYTES));
    if (!ready) return false;
    // failsafe_mode: a member missing from the leader's last /failsafe list may not run for leader
    // (Patroni's is_healthiest_node). The leader rewrites the list when its members change, so one
    // written while a member was briefly absent would disqualify that member if the leader died now.
    const listed = await failsafeMembers(c, shard);
    return listed === null || running.every((m) => listed.includes(m.name));
  });
}

/** The names in the shard's /failsafe key, or null when there is none (then no member is excluded). */
async function failsafeMembers(c: HaCluster, shard: number): Promise<string[] | null> {
  const value = await etcdKey(c, `shard${shard}/failsafe`);
  if (value === null) return null;
  const parsed = JSON.parse(value) as unknown;
  return parsed !== null && typeof parsed === 'object' ? Object.keys(parsed) : null;
}

/** Every server with its role now: Patroni's for PostgreSQL, the processes' for the rest. */
export async function haStatus(c: HaCluster): Promise<HaServerStatus[]> {
  const out: HaServerStatus[] = [];
  const other = (name: string, role: 'etcd' | 'balancer', port: number, s: RunningServer | null) =>
    out.push({
      name,
      role,
      shard: null,
      port,
      pid: s !== null && isAlive(s.pid) ? s.pid : null,
      patroniPid: null,
      sync: false,
      state: s !== null && isAlive(s.pid) ? 'running' : 'stopped',
      timeline: null,
      lag: null,
      dataDir: role === 'etcd' ? c.etcd.dataDir : null,
      apiUrl: null,
    });
  other('etcd', 'etcd', c.etcd.port, c.etcd.server);
  for (let shard = 0; shard < c.shards; shard++) {
    const members = (await patroniMembers(c, shard)) ?? [];
    for (const m of c.members.filter((x) => x.shard === shard)) {
      const p = members.find((x) => x.name === m.name);
      const pid = postmasterPid(m);
      const role = p === undefined || pid === null ? 'down' : p.role === 'leader' ? 'primary' : 'replica';
      out.push({
        name: m.name,
        role,
        shard,
        port: m.pgPort,
        pid,
        patroniPid: m.patroni !== null && isAlive(m.patroni.pid) ? m.patroni.pid : null,
        sync: p?.role === 'sync_standby',
        state: p?.state ?? null,
        timeline: p?.timeline ?? null,
        lag: typeof p?.lag === 'number' ? p.lag : null,
        dataDir: m.dataDir,
        apiUrl: `http://127.0.0.1:${m.apiPort}`,
      });
    }
  }
  other('haproxy-postgres', 'balancer', c.balancer.statsPort, c.balancer.server);
  return out;
}

/** The postmaster's pid from postmaster.pid, when that process is a live postgres. */
export function postmasterPid(m: HaMember): number | null {
  try {
    const pid = Number(readFileSync(join(m.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return null;
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres' ? pid : null;
  } catch {
    return null;
  }
}

/**
 * HOP_DATABASE_URLS for the HA shape, shards separated by ';': first the balancer's port for the
 * shard's primary (writes follow the leader), then every member directly for reads. Hop checks each
 * listed replica's role and replay position itself (read-your-writes needs each one's), so a member
 * that is the primary now is simply not a replica in rotation, and joins it once it is one again.
 */
export function haDatabaseUrls(c: HaCluster): string {
  const shards: string[] = [];
  for (let shard = 0; shard < c.shards; shard++) {
    const members = c.members.filter((m) => m.shard === shard).map((m) => serverUrl(m.pgPort));
    shards.push([serverUrl(c.balancer.primaryPorts[shard]!), ...members].join(','));
  }
  return shards.join(';');
}

export function haEnvFileText(c: HaCluster): string {
  const lines = [`# Hop local HA cluster (Patroni on etcd, HAProxy) in ${c.dir}`];
  lines.push(`# stop it: npm run cluster -- down --dir ${c.dir}`);
  for (const m of c.members) {
    lines.push(`# ${m.name.padEnd(14)} postgres 127.0.0.1:${m.pgPort} patroni http://127.0.0.1:${m.apiPort}`);
  }
  lines.push(`HOP_DATABASE_URLS="${haDatabaseUrls(c)}"`);
  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// Operations

/** A planned switchover through Patroni: the leader hands over to its synchronous standby (or a healthy replica). */
export async function switchover(
  c: HaCluster,
  shard: number,
  candidate?: string,
): Promise<{ from: string; to: string; ms: number }> {
  const members = (await patroniMembers(c, shard)) ?? [];
  const leader = members.find((m) => m.role === 'leader');
  if (leader === undefined) throw new ClusterError(`shard ${shard} has no leader to switch over from`);
  const api = c.members.find((m) => m.name === leader.name)!;
  const began = Date.now();
  const res = await fetch(`http://127.0.0.1:${api.apiPort}/switchover`, {
    method: 'POST',
    body: JSON.stringify(
      candidate === undefined ? { leader: leader.name } : { leader: leader.name, candidate },
    ),
    signal: AbortSignal.timeout(60_000),
  });
  const text = await res.text();
  if (!res.ok)
    throw new ClusterError(`switchover of shard ${shard} refused by Patroni: ${res.status} ${text}`);
  let to = '';
  await waitFor(`shard ${shard}: a new leader after the switchover`, 60_000, c, async () => {
    const now = (await patroniMembers(c, shard)) ?? [];
    const l = now.find((m) => m.role === 'leader' && m.state === 'running');
    if (l === undefined || l.name === leader.name) return false;
    to = l.name;
    return true;
  });
  await waitPrimaryThroughBalancer(c, shard, 30_000);
  return { from: leader.name, to, ms: Date.now() - began };
}

/** Starts a member's Patroni again (after a kill): it adopts or restarts its PostgreSQL and rejoins. */
export async function restartMember(c: HaCluster, name: string): Promise<void> {
  const m = memberNamed(c, name);
  if (m.patroni !== null && isAlive(m.patroni.pid)) return;
  if (m.patroni !== null) await stopServer(m.patroni);
  await startPatroni(c, m, await serverUser());
  await saveHaCluster(c);
}

export async function restartEtcd(c: HaCluster): Promise<void> {
  if (c.etcd.server !== null && isAlive(c.etcd.server.pid)) return;
  if (c.etcd.server !== null) await stopServer(c.etcd.server);
  await startEtcd(c);
  await saveHaCluster(c);
}

export function memberNamed(c: HaCluster, name: string): HaMember {
  const m = c.members.find((x) => x.name === name);
  if (m === undefined)
    throw new ClusterError(`no member ${name} (${c.members.map((x) => x.name).join(', ')})`);
  return m;
}

// ---------------------------------------------------------------------------------------------
// Stopping

/**
 * Stops everything: HAProxy, every Patroni (which stops its PostgreSQL), etcd; what is left is
 * killed. Removes the directory unless `keepDir`.
 */
export async function stopHaCluster(c: HaCluster, opts: { keepDir?: boolean } = {}): Promise<void> {
  await stopHaRestored(c);
  if (c.balancer.server !== null) await stopServer(c.balancer.server, { graceMs: 5_000 });
  // A paused (SIGSTOPped) postgres cannot stop: it is continued first, like its Patroni by stopServer.
  for (const m of c.members) {
    const pid = postmasterPid(m);
    if (pid !== null) signal(pid, 'SIGCONT');
  }
  await Promise.all(
    c.members.map(async (m) => {
      if (m.patroni !== null) await stopServer(m.patroni, { graceMs: 20_000 });
    }),
  );
  // A postmaster whose Patroni was killed outlives it; immediate shutdown, then SIGKILL.
  const left = c.members.map(postmasterPid).filter((p): p is number => p !== null);
  for (const pid of left) signal(pid, 'SIGQUIT');
  if (!(await waitGone(left, 10_000))) for (const pid of left) signal(pid, 'SIGKILL');
  const stray = clusterPids(c);
  for (const pid of stray) signal(pid, 'SIGKILL');
  await waitGone(stray, 10_000);
  if (c.etcd.server !== null) await stopServer(c.etcd.server, { graceMs: 5_000 });
  attached.delete(c.dir);
  if (!opts.keepDir) await rm(c.dir, { recursive: true, force: true });
}

/** Processes of this cluster's PostgreSQL servers, by their title (cluster_name) or data dir. */
function clusterPids(c: HaCluster): number[] {
  const pids: number[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return pids;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes(`hop-${c.id}-`) || cmdline.includes(`${c.dir}/`)) pids.push(Number(entry));
    } catch {
      // Gone.
    }
  }
  return pids.filter((p) => p !== process.pid && isAlive(p));
}

const attached = new Map<string, HaCluster>();
let hookInstalled = false;

function killOnExit(c: HaCluster): void {
  attached.set(c.dir, c);
  if (hookInstalled) return;
  hookInstalled = true;
  process.on('exit', () => {
    for (const cluster of attached.values()) killSync(cluster);
  });
}

/** Where nothing asynchronous runs: every process of the cluster killed, its directory removed. */
function killSync(c: HaCluster): void {
  const servers = [c.balancer.server, c.etcd.server, ...c.members.map((m) => m.patroni)];
  for (const s of servers) if (s !== null) signal(s.pid, 'SIGKILL');
  const postmasters = c.members.map(postmasterPid).filter((p): p is number => p !== null);
  for (const pid of postmasters) signal(pid, 'SIGQUIT');
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + 5_000;
  while (postmasters.some(isAlive) && Date.now() < deadline) Atomics.wait(pause, 0, 0, 20);
  for (const pid of clusterPids(c)) signal(pid, 'SIGKILL');
  rmSync(c.dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// State file

export async function saveHaCluster(c: HaCluster): Promise<void> {
  const file = join(c.dir, HA_FILE);
  await writeFile(`${file}.tmp`, `${JSON.stringify(c, null, 2)}\n`);
  await rename(`${file}.tmp`, file);
}

export async function loadHaCluster(dir: string): Promise<HaCluster> {
  const text = await readFile(join(resolve(dir), HA_FILE), 'utf8');
  return JSON.parse(text) as HaCluster;
}

export function isHaDir(dir: string): boolean {
  return existsSync(join(resolve(dir), HA_FILE));
}

// ---------------------------------------------------------------------------------------------
// Small helpers

/** Patroni runs as postgres: a parent directory closed to that user would leave it without config. */
function refuseUnreachable(file: string): void {
  if (process.getuid?.() !== 0) return;
  const r = spawnSync('runuser', ['-u', 'postgres', '--', 'test', '-r', file]);
  if (r.status !== 0) {
    throw new ClusterError(
      `the postgres user cannot read ${file}: a parent directory is closed to it (pick a cluster dir under ${tmpdir()}, or open its parents)`,
    );
  }
}

async function waitFor(
  what: string,
  timeoutMs: number,
  c: HaCluster,
  ok: () => Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await ok().catch(() => false)) return;
    if (Date.now() > deadline) {
      throw new ClusterError(`${what}: not after ${timeoutMs / 1000} s\n${await diagnosis(c, null)}`);
    }
    await sleep(200);
  }
}

/**
 * What a failed wait prints: Patroni's view of the shard (or every shard), its DCS keys that decide
 * a leader race (/leader, /sync, /failsafe, /status with the leader's last position), and each
 * member's last log lines other than the once-a-loop "no action" ones and tracebacks, which would
 * push the reasons out of view.
 */
async function diagnosis(c: HaCluster, shard: number | null): Promise<string> {
  const shards = shard === null ? Array.from({ length: c.shards }, (_, s) => s) : [shard];
  const out: string[] = [];
  for (const s of shards) {
    const members = await patroniMembers(c, s).catch(() => null);
    out.push(`shard ${s}: Patroni /cluster: ${JSON.stringify(members)}`);
    for (const key of ['leader', 'sync', 'failsafe', 'status']) {
      const value = await etcdKey(c, `shard${s}/${key}`).then(
        (v) => v ?? '(none)',
        (err: unknown) => `(${err instanceof Error ? err.message : String(err)})`,
      );
      out.push(`  /${key}: ${value}`);
    }
  }
  for (const m of c.members.filter((x) => shard === null || x.shard === shard)) {
    out.push(`${m.name} (patroni.log):\n${tail(m.logFile, 12, reasonLine)}`);
  }
  return out.join('\n');
}

/** A timestamped log line other than Patroni's per-loop "no action" (not a traceback's lines). */
const reasonLine = (l: string) => /^\d{4}-\d\d-\d\d /.test(l) && !l.includes('INFO: no action');

/** A key's value in the cluster's namespace in etcd (Patroni's v2 keys), or null when it is not set. */
async function etcdKey(c: HaCluster, key: string): Promise<string | null> {
  const res = await fetch(`http://127.0.0.1:${c.etcd.port}/v2/keys/hop-${c.id}/${key}`, {
    signal: AbortSignal.timeout(1_500),
  });
  if (res.status === 404) return null;
  const body = (await res.json()) as { node?: { value?: string } };
  const value = body.node?.value;
  if (!res.ok || value === undefined) throw new Error(`etcd answered ${res.status} for /${key}`);
  return value;
}

function tail(file: string, n: number, keep: (line: string) => boolean = () => true): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').filter(keep).slice(-n).join('\n');
  } catch {
    return '(no log)';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
