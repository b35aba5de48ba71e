// `npm run fleet -- up|status|restart|down`: N Hop processes behind HAProxy on a local cluster (see
// `npm run cluster`), for running Hop as a fleet by hand, in tests and in the benches.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  callerSettings,
  FleetError,
  fleetStatus,
  loadFleet,
  parseEnvFile,
  rollingRestart,
  startFleet,
  stopFleet,
} from './fleet/fleet.ts';
import { SupervisorError } from './lib/supervisor.ts';

const USAGE = `Usage: npm run fleet -- <command> [options]

Commands:
  up        start N Hop processes on the cluster the env file names, and HAProxy in front of them
  status    the balancer and each Hop process: url, pid, running, and the balancer's view (UP/DOWN)
  restart   rolling restart: one Hop process at a time, each back in rotation before the next
  down      stop the balancer, then every Hop process (each drains), and remove the directory

Options:
  --dir D            fleet directory (default .hop-fleet in the current directory)
  --hops N           up: Hop processes (default 3)
  --env-file F       up: the cluster's settings (HOP_DATABASE_URLS, HOP_REDIS_URL), as written by
                     npm run cluster -- up --env-file F; the caller's HOP_* and OTEL_* variables
                     (HOP_INITIAL_API_KEY, say) go to every process too, and win over the file
  --port P           up: the balancer's port (default: a free one)
  --cpu-quota CORES  up: confine each Hop process to CORES cores (cgroup v1 CFS quota)
  --json             status: print JSON ({balancer: {url, pid, …}, hops: [{url, pid, …}]})
  -h, --help         this text

Each Hop gets HOP_PUBLIC_URL (the balancer's URL), HOP_TRUST_PROXY=127.0.0.1 and HOP_DRAIN_DELAY_MS
unless set. The embedded default is refused: its database lives inside one process.`;

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
  const dir = resolve(values.dir ?? '.hop-fleet');
  const log = (line: string) => process.stderr.write(`${line}\n`);
  switch (command) {
    case 'up': {
      const fromFile =
        values['env-file'] === undefined
          ? {}
          : parseEnvFile(await readFile(resolve(values['env-file']), 'utf8'));
      const began = performance.now();
      const fleet = await startFleet({
        dir,
        hops: values.hops === undefined ? 3 : whole('--hops', values.hops),
        env: { ...fromFile, ...callerSettings(process.env) },
        cpuQuota: values['cpu-quota'] === undefined ? null : cores(values['cpu-quota']),
        ...(values.port === undefined ? {} : { port: whole('--port', values.port) }),
        log,
      });
      const seconds = ((performance.now() - began) / 1000).toFixed(1);
      process.stdout.write(
        `fleet up in ${seconds} s: ${fleet.hops.length} Hop process(es) behind ${fleet.balancer.url}\n`,
      );
      process.stdout.write(`stop it with: npm run fleet -- down --dir ${dir}\n`);
      return 0;
    }
    case 'status': {
      const s = await fleetStatus(await loadFleet(dir));
      if (values.json) {
        process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
      } else {
        process.stdout.write(
          `balancer ${s.balancer.url} pid ${s.balancer.pid} ${s.balancer.running ? 'running' : 'down'}\n`,
        );
        for (const h of s.hops) {
          process.stdout.write(
            `${h.name} ${h.url} pid ${h.pid} ${h.running ? 'running' : 'down'}, balancer: ${h.balancer}\n`,
          );
        }
      }
      return 0;
    }
    case 'restart': {
      const began = performance.now();
      await rollingRestart(await loadFleet(dir), log);
      process.stdout.write(`rolling restart done in ${((performance.now() - began) / 1000).toFixed(1)} s\n`);
      return 0;
    }
    case 'down': {
      let fleet: Awaited<ReturnType<typeof loadFleet>>;
      try {
        fleet = await loadFleet(dir);
      } catch (err) {
        if (!(err instanceof FleetError)) throw err;
        process.stdout.write(`no fleet in ${dir}; nothing to stop\n`);
        return 0;
      }
      const failures = await stopFleet(fleet);
      if (failures.length > 0) throw new FleetError(failures.join('\n'));
      process.stdout.write(`stopped the balancer and ${fleet.hops.length} Hop process(es), removed ${dir}\n`);
      return 0;
    }
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
      hops: { type: 'string' },
      'env-file': { type: 'string' },
      port: { type: 'string' },
      'cpu-quota': { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

function whole(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} needs a whole number ≥ 1, got '${text}'`);
  return n;
}

function cores(text: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0)
    throw new UsageError(`--cpu-quota needs a number of cores > 0, got '${text}'`);
  return n;
}

// As in cluster.ts: `fleet.ts -- <args>` keeps Node 20 from reading --env-file as its own option.
const args = process.argv.slice(2);
main(args[0] === '--' ? args.slice(1) : args).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`fleet: ${err.message}\n\n${USAGE}\n`);
      process.exitCode = 2;
    } else if (err instanceof FleetError || err instanceof SupervisorError) {
      process.stderr.write(`fleet: ${err.message}\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(
        `fleet: unexpected failure\n${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
      process.exitCode = 1;
    }
  },
);
