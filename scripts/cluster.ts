// `npm run cluster -- up|down|status|add-shard|…`: a local cluster of real PostgreSQL servers (shards ×
// streaming replicas), and optionally Redis, that outlives this command, for running Hop against
// HOP_DATABASE_URLS and HOP_REDIS_URL by hand.
import { access, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { backupShard, enableBackups, restoreShard } from './cluster/backups.ts';
import { restoreHaShardInto } from './cluster/ha-backups.ts';
import {
  downHa,
  haStatusJson,
  loadHaCluster,
  printHaStatus,
  reportHaUp,
  switchoverCommand,
  syncModeOf,
  upHa,
} from './cluster/ha-cli.ts';
import { isHaDir, saveHaCluster, stopHaCluster } from './cluster/ha-cluster.ts';
import {
  addShardServers,
  type Cluster,
  ClusterError,
  type ClusterServer,
  databaseUrls,
  envFileText,
  loadCluster,
  startCluster,
  stopCluster,
} from './cluster/pg-cluster.ts';
import {
  loadRedis,
  REDIS_STATE_FILE,
  type RedisMode,
  type RedisServer,
  type RedisServers,
  redisEnvText,
  startRedis,
  stopRedis,
} from './cluster/redis-servers.ts';
import { textTable } from './lib/text-table.ts';

/** Redis started with the cluster lives in this subdirectory of it. */
const REDIS_DIR = 'redis';

/** Every server `status` lists has one, so a script can pick a server (to stop, say) by role alone. */
type ServerRole = ClusterServer['role'] | RedisServer['role'];

const USAGE = `Usage: npm run cluster -- <command> [options]

Commands:
  up       start a cluster: per shard a primary and streaming replicas, on free 127.0.0.1 ports
  down     stop every server of the cluster (Redis included) and remove its directory (safe to run twice)
  status   list the servers and whether they run
  backup   with --backups: a pgBackRest backup of one shard (--shard N) or of every shard, then verify
  restore  with --backups: restore --shard N to --time ISO8601 or --latest (the end of its archived WAL),
           in place (its servers stopped, the primary restored and promoted, replicas copied again) or
           --into DIR (started on a free port beside the cluster; its URL is printed; down stops it)
  switchover  with --ha: a planned switchover of --shard N through Patroni (the synchronous standby
           takes over; the old primary follows it)
  add-shard  start one more shard (a primary and --replicas R streaming replicas, set up as up set up
           the others) beside the running cluster, record it, rewrite --env-file F with it last in
           HOP_DATABASE_URLS, and print its URLs for \`hop shards add\` (not yet with --ha or --backups)

Options:
  --dir D            cluster directory (default .hop-cluster in the current directory)
  --shards N         up: shards (default 2)
  --replicas R       up: streaming replicas per shard (default 1); add-shard: of the new shard
                     (default: as many as the cluster's shards have)
  --redis MODE       up: also start Redis without persistence: single (one server), cluster (a Redis
                     Cluster of three masters) or sentinel (a primary and a replica watched by three
                     Sentinels, which promote the replica when the primary dies); its HOP_REDIS_URL goes
                     into the env file
  --cpu-quota CORES  up: confine each server to CORES cores (cgroup v1 CFS quota), Redis included
  --fsync            up: keep fsync and full_page_writes on (off by default: the data is throwaway)
  --env-file F       up: also write HOP_DATABASE_URLS (and HOP_REDIS_URL) to F as a dotenv file;
                     add-shard (required): rewrite F the same way, the new shard last
  --backups          up: pgBackRest: a repository in the cluster dir, a stanza per shard, WAL archived
                     from every primary (asynchronous, never dropped), checked with pgbackrest check
  --archive-timeout S  up --backups: switch WAL at least every S seconds while writes come (60): the most
                     an archive-only restore can miss
  --ha               up: the HA shape: one etcd, per shard 1 + R PostgreSQL servers each run by Patroni
                     (automatic failover, pg_rewind rejoin), HAProxy in front of every shard's primary;
                     defaults --shards 1 --replicas 2; status reports the roles as Patroni has them now
  --sync MODE        up --ha: on (default: Patroni's synchronous_mode, a commit waits for one standby
                     and only that standby may be promoted), strict (no commit without a standby) or off
  --shard N          backup, restore, switchover: which shard
  --type T           backup: full (default), diff or incr
  --time ISO8601     restore: the point in time (the last commit before it)
  --latest           restore: to the end of the archived WAL
  --into DIR         restore: into DIR, started on a free port, instead of in place
  --json             status: print JSON (every server with its role: primary, replica, redis; under
                     Sentinel redis-primary, redis-replica and sentinel, as the Sentinels say now)
  -h, --help         this text

PostgreSQL 15 binaries come from /usr/lib/postgresql/15/bin, or from HOP_PG_BIN; redis-server and
redis-cli (Redis 7) from PATH.
Run directly, put -- before the arguments (node --import tsx scripts/cluster.ts -- up --env-file F):
Node 20 otherwise reads --env-file as its own option.`;

/** A wrong invocation: usage goes with it. */
class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const [command, ...extra] = positionals;
  if (command === undefined) throw new UsageError('no command given');
  if (extra.length > 0) throw new UsageError(`unexpected argument ${extra[0]}`);
  const dir = resolve(values.dir ?? '.hop-cluster');
  switch (command) {
    case 'up':
      return up(dir, values);
    case 'down':
      return down(dir);
    case 'status':
      return status(dir, values.json ?? false);
    case 'backup':
      return backup(dir, values);
    case 'restore':
      return restore(dir, values);
    case 'switchover':
      if (values.shard === undefined) throw new UsageError('switchover needs --shard N');
      return switchoverCommand(dir, wholeNumber('--shard', values.shard, 0));
    case 'add-shard':
      return addShard(dir, values);
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      dir: { type: 'string' },
      shards: { type: 'string' },
      replicas: { type: 'string' },
      redis: { type: 'string' },
      'cpu-quota': { type: 'string' },
      fsync: { type: 'boolean' },
      'env-file': { type: 'string' },
      json: { type: 'boolean' },
      backups: { type: 'boolean' },
      'archive-timeout': { type: 'string' },
      shard: { type: 'string' },
      type: { type: 'string' },
      time: { type: 'string' },
      latest: { type: 'boolean' },
      into: { type: 'string' },
      ha: { type: 'boolean' },
      sync: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

type Values = ReturnType<typeof parse>['values'];

async function up(dir: string, values: Values): Promise<number> {
  const began = performance.now();
  // The tools run in process groups of their own, so Ctrl-C stops only this command; cluster.json,
  // written before anything starts, lets `down` find whatever had started.
  process.once('SIGINT', () => {
    process.stderr.write(`\ninterrupted: stop what had started with npm run cluster -- down --dir ${dir}\n`);
    process.exit(130);
  });
  const cpuQuota =
    values['cpu-quota'] === undefined ? null : positiveNumber('--cpu-quota', values['cpu-quota']);
  const redisMode = values.redis === undefined ? null : redisModeOf(values.redis);
  if (redisMode !== null) await refuseLiveRedis(dir);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  if (values.ha) return upHaShape(dir, values, cpuQuota, redisMode, log);
  if (values.sync !== undefined) throw new UsageError('--sync goes with --ha');
  const cluster = await startCluster({
    dir,
    shards: values.shards === undefined ? 2 : wholeNumber('--shards', values.shards, 1),
    replicas: values.replicas === undefined ? 1 : wholeNumber('--replicas', values.replicas, 0),
    cpuQuota,
    fsync: values.fsync ?? false,
    archiving: values.backups ?? false,
    // The servers must outlive this command, cgroups included.
    detached: true,
    log,
  });
  if (values.backups) {
    try {
      await enableBackups(cluster, {
        archiveTimeoutS:
          values['archive-timeout'] === undefined
            ? 60
            : wholeNumber('--archive-timeout', values['archive-timeout'], 1),
        log,
      });
    } catch (err) {
      log('pgBackRest could not be configured; stopping the cluster');
      await stopCluster(cluster).catch((stopErr: unknown) => log(`cleanup failed too: ${String(stopErr)}`));
      throw err;
    }
  }
  const redis = await redisBeside(cluster.dir, redisMode, cpuQuota, log, () => stopCluster(cluster));
  const seconds = (performance.now() - began) / 1000;
  process.stdout.write(`${table(cluster, redis, false)}\n\n`);
  process.stdout.write(`cluster up in ${seconds.toFixed(1)} s in ${cluster.dir}`);
  process.stdout.write(cluster.cpuQuota === null ? '\n' : `, ${cluster.cpuQuota} core(s) per server\n`);
  if (values['env-file'] !== undefined) {
    const file = resolve(values['env-file']);
    await writeFile(file, envFileText(cluster) + (redis === null ? '' : redisEnvText(redis)));
    process.stdout.write(`wrote ${file}\n`);
  }
  process.stdout.write(`stop it with: npm run cluster -- down --dir ${cluster.dir}\n\n`);
  process.stdout.write(`HOP_DATABASE_URLS="${databaseUrls(cluster)}"\n`);
  if (redis !== null) process.stdout.write(`HOP_REDIS_URL="${redis.url}"\n`);
  return 0;
}

/**
 * `add-shard`: one more shard's servers beside the cluster in `dir` (pg-cluster.ts: addShardServers),
 * the env file rewritten as `up --env-file` writes it, and the next step: Hop claims the shard.
 */
async function addShard(dir: string, values: Values): Promise<number> {
  if (isHaDir(dir) || values.ha) {
    process.stderr.write(
      `cluster: add-shard is not supported for --ha yet${isHaDir(dir) ? ` (${dir} holds an HA cluster)` : ''}\n`,
    );
    return 2;
  }
  if (values['env-file'] === undefined) {
    throw new UsageError('add-shard needs --env-file F: the file Hop reads HOP_DATABASE_URLS from');
  }
  for (const flag of ['shards', 'redis', 'cpu-quota', 'fsync', 'backups', 'sync'] as const) {
    if (values[flag] !== undefined) {
      throw new UsageError(`--${flag} does not go with add-shard: the new shard is set up as the others are`);
    }
  }
  const replicas = values.replicas === undefined ? undefined : wholeNumber('--replicas', values.replicas, 0);
  const began = performance.now();
  process.once('SIGINT', () => {
    process.stderr.write(
      `\ninterrupted: the next add-shard removes what had started, or stop everything with ` +
        `npm run cluster -- down --dir ${dir}\n`,
    );
    process.exit(130);
  });
  const cluster = await loadCluster(dir);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const shard = cluster.shards;
  const urls = await addShardServers(cluster, { replicas, log });
  const seconds = (performance.now() - began) / 1000;
  const file = resolve(values['env-file']);
  const redis = await redisIn(dir);
  await writeFile(file, envFileText(cluster) + (redis === null ? '' : redisEnvText(redis)));
  const added = { ...cluster, servers: cluster.servers.filter((s) => s.shard === shard) };
  process.stdout.write(`${table(added, null, false)}\n\n`);
  process.stdout.write(`shard ${shard} up in ${seconds.toFixed(1)} s in ${cluster.dir}\n`);
  process.stdout.write(`wrote ${file} (HOP_DATABASE_URLS names shard ${shard} last)\n\n`);
  process.stdout.write(`primary:  ${urls.primary}\n`);
  for (const url of urls.replicas) process.stdout.write(`replica:  ${url}\n`);
  process.stdout.write(
    `\nnext: claim the shard and add it to the shard map:\n` +
      `  hop shards add '${[urls.primary, ...urls.replicas].join(',')}'\n`,
  );
  return 0;
}

/** `up --ha`: Patroni on etcd and HAProxy (scripts/cluster/ha-cluster.ts), Redis beside it as asked. */
async function upHaShape(
  dir: string,
  values: Values,
  cpuQuota: number | null,
  redisMode: RedisMode | null,
  log: (line: string) => void,
): Promise<number> {
  if (values.fsync) throw new UsageError('--fsync is not yet available with --ha');
  const cluster = await upHa({
    dir,
    shards: values.shards === undefined ? 1 : wholeNumber('--shards', values.shards, 1),
    replicas: values.replicas === undefined ? 2 : wholeNumber('--replicas', values.replicas, 1),
    sync: syncModeOf(values.sync),
    cpuQuota,
    backups: values.backups ? { archiveTimeoutS: archiveTimeoutOf(values) } : null,
    log,
  });
  const redis = await redisBeside(cluster.dir, redisMode, cpuQuota, log, () => stopHaCluster(cluster));
  const envFile = values['env-file'] === undefined ? null : resolve(values['env-file']);
  await reportHaUp(cluster, envFile, redis === null ? '' : redisEnvText(redis));
  if (redis !== null) process.stdout.write(`HOP_REDIS_URL="${redis.url}"\n`);
  return 0;
}

/**
 * Redis as `--redis` asks, in the cluster's directory. All or nothing: when it does not start, the
 * PostgreSQL servers are stopped too (a cluster without the Redis asked for is not what `up` promised).
 */
async function redisBeside(
  dir: string,
  mode: RedisMode | null,
  cpuQuota: number | null,
  log: (line: string) => void,
  stopServers: () => Promise<void>,
): Promise<RedisServers | null> {
  if (mode === null) return null;
  try {
    return await startRedis({ mode, dir: join(dir, REDIS_DIR), cpuQuota, detached: true, log });
  } catch (err) {
    log('Redis did not start; stopping the PostgreSQL servers');
    await stopServers().catch((stopErr: unknown) => log(`cleanup failed too: ${String(stopErr)}`));
    throw err;
  }
}

function archiveTimeoutOf(values: Values): number {
  return values['archive-timeout'] === undefined
    ? 60
    : wholeNumber('--archive-timeout', values['archive-timeout'], 1);
}

async function backup(dir: string, values: Values): Promise<number> {
  const cluster = isHaDir(dir) ? await loadHaCluster(dir) : await loadCluster(dir);
  const type = values.type ?? 'full';
  if (type !== 'full' && type !== 'diff' && type !== 'incr') {
    throw new UsageError(`--type needs full, diff or incr, got '${type}'`);
  }
  const shards =
    values.shard === undefined
      ? Array.from({ length: cluster.shards }, (_, i) => i)
      : [shardNumber(cluster, values.shard)];
  for (const shard of shards) {
    const r = await backupShard(cluster, shard, type);
    process.stdout.write(
      `shard ${shard}: ${r.type} backup ${r.label} in ${r.seconds.toFixed(1)} s, ` +
        `${mib(r.databaseBytes)} MiB of database, ${mib(r.repoBytes)} MiB in the repository, verified\n`,
    );
  }
  return 0;
}

async function restore(dir: string, values: Values): Promise<number> {
  const cluster = isHaDir(dir) ? await loadHaCluster(dir) : await loadCluster(dir);
  if (values.shard === undefined) throw new UsageError('restore needs --shard N');
  const shard = shardNumber(cluster, values.shard);
  if ((values.time === undefined) === (values.latest !== true)) {
    throw new UsageError('restore needs one of --time ISO8601 and --latest');
  }
  const time = values.time === undefined ? null : new Date(values.time);
  if (time !== null && Number.isNaN(time.getTime())) {
    throw new UsageError(`--time needs an ISO 8601 time, got '${values.time}'`);
  }
  if ('kind' in cluster) {
    if (values.into === undefined) {
      throw new UsageError(
        'restore with --ha needs --into DIR: restoring a Patroni cluster in place is a new bootstrap from the backup (docs/runbooks/backups-and-recovery.md)',
      );
    }
    const r = await restoreHaShardInto(cluster, shard, time, resolve(values.into));
    await saveHaCluster(cluster);
    const what = time === null ? 'the end of its archived WAL' : time.toISOString();
    process.stdout.write(
      `shard ${shard} restored to ${what} in ${r.seconds.toFixed(1)} s into ${r.dataDir}, serving at\n${r.url}\n`,
    );
    return 0;
  }
  const r = await restoreShard(cluster, shard, {
    time,
    into: values.into === undefined ? null : resolve(values.into),
  });
  const what = time === null ? 'the end of its archived WAL' : time.toISOString();
  process.stdout.write(
    `shard ${shard} restored to ${what} in ${r.seconds.toFixed(1)} s ` +
      `${values.into === undefined ? 'in place' : `into ${r.dataDir}`}, serving at\n${r.url}\n`,
  );
  return 0;
}

function shardNumber(c: { shards: number }, text: string): number {
  const n = wholeNumber('--shard', text, 0);
  if (n >= c.shards) throw new UsageError(`--shard ${n}: the cluster has shards 0 to ${c.shards - 1}`);
  return n;
}

const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);

async function down(dir: string): Promise<number> {
  // Redis first: stopping PostgreSQL removes the directory Redis runs in.
  const redis = await redisIn(dir);
  if (redis !== null) {
    const running = redis.servers.filter((s) => s.pid !== null).length;
    await stopRedis(redis);
    process.stdout.write(`stopped ${running} Redis server(s)\n`);
  }
  if (isHaDir(dir)) return downHa(dir);
  let cluster: Cluster;
  try {
    cluster = await loadCluster(dir);
  } catch (err) {
    if (!(err instanceof ClusterError)) throw err;
    // Nothing to load: an empty or absent dir is removed or left as is; anything else is refused.
    await stopCluster(dir);
    process.stdout.write(`no cluster in ${dir}; nothing to stop\n`);
    return 0;
  }
  const running = cluster.servers.filter((s) => s.pid !== null).length;
  await stopCluster(cluster);
  process.stdout.write(`stopped ${running} server(s), removed ${dir}\n`);
  return 0;
}

async function status(dir: string, json: boolean): Promise<number> {
  if (isHaDir(dir)) {
    const ha = await loadHaCluster(dir);
    if (!json) {
      await printHaStatus(ha);
      return 0;
    }
    const redis = await redisIn(dir);
    const out = {
      ...(await haStatusJson(ha)),
      redis: redis === null ? null : { mode: redis.mode, url: redis.url },
    };
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return 0;
  }
  const cluster = await loadCluster(dir);
  const redis = await redisIn(dir);
  if (json) {
    const { shards, replicas, cpuQuota } = cluster;
    const servers = cluster.servers.map((s) => ({
      name: s.name,
      role: s.role satisfies ServerRole,
      shard: s.shard,
      replica: s.replica,
      port: s.port,
      pid: s.pid,
      alive: s.pid !== null,
      dataDir: s.dataDir,
      logFile: s.logFile,
      url: s.url,
      cgroup: s.cgroup,
    }));
    const redisJson =
      redis === null
        ? null
        : {
            mode: redis.mode,
            url: redis.url,
            dir: redis.dir,
            servers: redis.servers.map((s) => ({
              name: s.name,
              role: s.role satisfies ServerRole,
              port: s.port,
              busPort: s.busPort,
              pid: s.pid,
              alive: s.pid !== null,
              dir: s.dir,
              logFile: s.logFile,
              cgroup: s.cgroup,
            })),
          };
    process.stdout.write(
      `${JSON.stringify({ dir: cluster.dir, shards, replicas, cpuQuota, servers, redis: redisJson }, null, 2)}\n`,
    );
  } else {
    process.stdout.write(`${cluster.dir}: ${shape(cluster)}`);
    process.stdout.write(redis === null ? '\n' : `, Redis (${redis.mode}) at ${redis.url}\n`);
    process.stdout.write(`${table(cluster, redis, true)}\n`);
  }
  return 0;
}

/** The Redis started with the cluster in `dir`, or null when it was started without. */
async function redisIn(dir: string): Promise<RedisServers | null> {
  const redisDir = join(dir, REDIS_DIR);
  try {
    await access(join(redisDir, REDIS_STATE_FILE));
  } catch {
    // Never started, or interrupted before it wrote its state (then nothing of it runs).
    return null;
  }
  return loadRedis(redisDir);
}

/** `up` into a dir whose PostgreSQL is dead but whose Redis is not would remove files under live servers. */
async function refuseLiveRedis(dir: string): Promise<void> {
  const redis = await redisIn(dir).catch(() => null);
  const alive = redis?.servers.filter((s) => s.pid !== null).length ?? 0;
  if (alive > 0) {
    throw new ClusterError(
      `Redis is already running in ${join(dir, REDIS_DIR)} (${alive} server(s) alive): ` +
        `stop it first (npm run cluster -- down --dir ${dir})`,
    );
  }
}

/** "2 shard(s) × 1 replica(s)"; after an add-shard with another replica count, each shard's. */
function shape(c: Cluster): string {
  const counts = Array.from(
    { length: c.shards },
    (_, shard) => c.servers.filter((s) => s.shard === shard && s.role === 'replica').length,
  );
  if (counts.every((n) => n === c.replicas)) return `${c.shards} shard(s) × ${c.replicas} replica(s)`;
  return `${c.shards} shard(s) with ${counts.join(', ')} replica(s)`;
}

function table(c: Cluster, redis: RedisServers | null, withState: boolean): string {
  const head = ['SERVER', 'ROLE', 'PORT', 'PID', ...(withState ? ['STATE'] : []), 'URL'];
  const quota = c.cpuQuota !== null || (redis !== null && redis.cpuQuota !== null);
  if (quota) head.push('CGROUP');
  const rows = c.servers.map((s) => {
    const row = [s.name, s.role, String(s.port), s.pid === null ? '-' : String(s.pid)];
    if (withState) row.push(s.pid === null ? 'down' : 'up');
    row.push(s.url);
    if (quota) row.push(s.cgroup ?? '-');
    return row;
  });
  for (const s of redis?.servers ?? []) {
    const row = [s.name, s.role, String(s.port)];
    row.push(s.pid === null ? '-' : String(s.pid));
    if (withState) row.push(s.pid === null ? 'down' : 'up');
    row.push(`redis://127.0.0.1:${s.port}`);
    if (quota) row.push(s.cgroup ?? '-');
    rows.push(row);
  }
  return textTable(head, rows);
}

function redisModeOf(text: string): RedisMode {
  if (text === 'single' || text === 'cluster' || text === 'sentinel') return text;
  throw new UsageError(`--redis needs single, cluster or sentinel, got '${text}'`);
}

function wholeNumber(flag: string, text: string, min: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min)
    throw new UsageError(`${flag} needs a whole number ≥ ${min}, got '${text}'`);
  return n;
}

function positiveNumber(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0)
    throw new UsageError(`${flag} needs a number of cores > 0, got '${text}'`);
  return n;
}

// package.json runs this as `cluster.ts -- <args>`: Node 20 takes an `--env-file` anywhere on its command
// line for its own and exits when the file does not exist yet (nodejs/node#54232), but stops looking at `--`.
const args = process.argv.slice(2);
main(args[0] === '--' ? args.slice(1) : args).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`cluster: ${err.message}\n\n${USAGE}\n`);
      process.exitCode = 2;
    } else if (err instanceof ClusterError) {
      process.stderr.write(`cluster: ${err.message}\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(
        `cluster: unexpected failure\n${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
      process.exitCode = 1;
    }
  },
);
