// `npm run cluster -- up|down|status`: a local cluster of real PostgreSQL servers (shards × streaming
// replicas) that outlives this command, for running Hop against HOP_DATABASE_URLS by hand.
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  type Cluster,
  ClusterError,
  databaseUrls,
  envFileText,
  loadCluster,
  startCluster,
  stopCluster,
} from './cluster/pg-cluster.ts';

const USAGE = `Usage: npm run cluster -- <command> [options]

Commands:
  up       start a cluster: per shard a primary and streaming replicas, on free 127.0.0.1 ports
  down     stop every server of the cluster and remove its directory (safe to run twice)
  status   list the servers and whether they run

Options:
  --dir D            cluster directory (default .hop-cluster in the current directory)
  --shards N         up: shards (default 2)
  --replicas R       up: streaming replicas per shard (default 1)
  --cpu-quota CORES  up: confine each server to CORES cores (cgroup v1 CFS quota)
  --fsync            up: keep fsync and full_page_writes on (off by default: the data is throwaway)
  --env-file F       up: also write HOP_DATABASE_URLS to F as a dotenv file
  --json             status: print JSON
  -h, --help         this text

PostgreSQL 15 binaries come from /usr/lib/postgresql/15/bin, or from HOP_PG_BIN.
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
      'cpu-quota': { type: 'string' },
      fsync: { type: 'boolean' },
      'env-file': { type: 'string' },
      json: { type: 'boolean' },
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
  const cluster = await startCluster({
    dir,
    shards: values.shards === undefined ? 2 : wholeNumber('--shards', values.shards, 1),
    replicas: values.replicas === undefined ? 1 : wholeNumber('--replicas', values.replicas, 0),
    cpuQuota,
    fsync: values.fsync ?? false,
    // The servers must outlive this command, cgroups included.
    detached: true,
    log: (line) => process.stderr.write(`${line}\n`),
  });
  const seconds = (performance.now() - began) / 1000;
  process.stdout.write(`${table(cluster, false)}\n\n`);
  process.stdout.write(`cluster up in ${seconds.toFixed(1)} s in ${cluster.dir}`);
  process.stdout.write(cluster.cpuQuota === null ? '\n' : `, ${cluster.cpuQuota} core(s) per server\n`);
  if (values['env-file'] !== undefined) {
    const file = resolve(values['env-file']);
    await writeFile(file, envFileText(cluster));
    process.stdout.write(`wrote ${file}\n`);
  }
  process.stdout.write(`stop it with: npm run cluster -- down --dir ${cluster.dir}\n\n`);
  process.stdout.write(`HOP_DATABASE_URLS="${databaseUrls(cluster)}"\n`);
  return 0;
}

async function down(dir: string): Promise<number> {
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
  const cluster = await loadCluster(dir);
  if (json) {
    const { shards, replicas, cpuQuota } = cluster;
    const servers = cluster.servers.map((s) => ({
      name: s.name,
      role: s.role,
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
    process.stdout.write(
      `${JSON.stringify({ dir: cluster.dir, shards, replicas, cpuQuota, servers }, null, 2)}\n`,
    );
  } else {
    process.stdout.write(`${cluster.dir}: ${cluster.shards} shard(s) × ${cluster.replicas} replica(s)\n`);
    process.stdout.write(`${table(cluster, true)}\n`);
  }
  return 0;
}

function table(c: Cluster, withState: boolean): string {
  const head = ['SERVER', 'ROLE', 'PORT', 'PID', ...(withState ? ['STATE'] : []), 'URL'];
  if (c.cpuQuota !== null) head.push('CGROUP');
  const rows = c.servers.map((s) => {
    const row = [s.name, s.role, String(s.port), s.pid === null ? '-' : String(s.pid)];
    if (withState) row.push(s.pid === null ? 'down' : 'up');
    row.push(s.url);
    if (c.cpuQuota !== null) row.push(s.cgroup ?? '-');
    return row;
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  return [head, ...rows]
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
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
