// A local fleet: N stateless Hop processes on a cluster (HOP_DATABASE_URLS), HAProxy in front of
// them checking /readyz, every process run by the one supervisor. The fleet outlives the command
// that started it; fleet.json in its directory is how later commands (status, restart, down) and
// tests find its processes.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../lib/free-port.ts';
import { haproxyServerStatus } from '../lib/haproxy-stats.ts';
import { isAlive } from '../lib/processes.ts';
import {
  httpReady,
  type RunningServer,
  SupervisorError,
  startServer,
  stopServer,
} from '../lib/supervisor.ts';
import { DEFAULT_CHECK, drainDelayFor, type HealthCheck, haproxyConfig } from './haproxy-config.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const STATE_FILE = 'fleet.json';

export interface HopServer extends RunningServer {
  readonly port: number;
  readonly url: string;
}

export interface Balancer extends RunningServer {
  readonly url: string;
  /** HAProxy's stats page and Prometheus metrics (/stats, /metrics). */
  readonly statsUrl: string;
  readonly configFile: string;
}

export interface Fleet {
  readonly dir: string;
  readonly balancer: Balancer;
  readonly hops: HopServer[];
  /** What every Hop process runs with, beyond its own PORT: kept so a restart needs no env file. */
  readonly env: Readonly<Record<string, string>>;
  readonly cpuQuota: number | null;
  readonly check: HealthCheck;
}

export interface FleetOptions {
  readonly dir: string;
  readonly hops: number;
  /** The env file's settings and the caller's Hop settings; must name a cluster. */
  readonly env: Readonly<Record<string, string>>;
  readonly cpuQuota?: number | null;
  /** The balancer's port (default: a free one). */
  readonly port?: number;
  readonly check?: HealthCheck;
  readonly log?: (line: string) => void;
}

export class FleetError extends Error {}

/** Which of the caller's variables a Hop process takes with it (the env file adds its own). */
export function callerSettings(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v !== undefined && (k.startsWith('HOP_') || k.startsWith('OTEL_'))) out[k] = v;
  }
  return out;
}

/** A dotenv file as `npm run cluster -- up --env-file` writes it: KEY=value, optionally quoted. */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (m === null) throw new FleetError(`not a KEY=value line: ${line}`);
    let value = m[2] ?? '';
    const q = value[0];
    if ((q === '"' || q === "'") && value.endsWith(q) && value.length >= 2) value = value.slice(1, -1);
    out[m[1] ?? ''] = value;
  }
  return out;
}

export async function startFleet(o: FleetOptions): Promise<Fleet> {
  const log = o.log ?? (() => {});
  if (!o.env.HOP_DATABASE_URLS) {
    throw new FleetError(
      'a fleet needs a cluster: HOP_DATABASE_URLS is not set (give --env-file from `npm run cluster -- up`). ' +
        'The embedded default keeps its database inside one process, so it cannot be shared by several.',
    );
  }
  if (!Number.isInteger(o.hops) || o.hops < 1) throw new FleetError('--hops must be a whole number ≥ 1');
  await claimDir(o.dir);
  const check = o.check ?? DEFAULT_CHECK;
  const port = o.port ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;
  const env: Record<string, string> = {
    HOP_PUBLIC_URL: url,
    // The balancer connects from loopback; its X-Forwarded-For names the client.
    HOP_TRUST_PROXY: '127.0.0.1',
    HOP_DRAIN_DELAY_MS: String(drainDelayFor(check)),
    ...o.env,
  };
  const hops: HopServer[] = [];
  const fleet: Fleet = {
    dir: o.dir,
    // Filled in below; saved only once it runs.
    balancer: null as unknown as Balancer,
    hops,
    env,
    cpuQuota: o.cpuQuota ?? null,
    check,
  };
  try {
    const ports = await Promise.all(Array.from({ length: o.hops }, () => freePort()));
    // Every start settles before any failure is thrown, so the cleanup below knows each one that ran.
    const starts = await Promise.allSettled(ports.map((p, i) => startHop(fleet, `hop-${i + 1}`, p)));
    for (const s of starts) if (s.status === 'fulfilled') hops.push(s.value);
    const failed = starts.find((s) => s.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    for (const h of hops) log(`${h.name} ${h.url} pid ${h.pid}`);
    const balancer = await startBalancer(fleet, port);
    (fleet as { balancer: Balancer }).balancer = balancer;
    await saveFleet(fleet);
    await waitInRotation(
      fleet,
      hops.map((h) => h.name),
    );
    log(`balancer ${balancer.url} pid ${balancer.pid} (stats ${balancer.statsUrl}/stats)`);
  } catch (err) {
    await Promise.all(hops.map((h) => stopServer(h, { signal: 'SIGKILL' })));
    if (fleet.balancer) await stopServer(fleet.balancer, { signal: 'SIGKILL' });
    throw err;
  }
  return fleet;
}

export async function loadFleet(dir: string): Promise<Fleet> {
  let text: string;
  try {
    text = await readFile(join(dir, STATE_FILE), 'utf8');
  } catch {
    throw new FleetError(`no fleet in ${dir} (start one with npm run fleet -- up)`);
  }
  return JSON.parse(text) as Fleet;
}

export interface FleetStatus {
  balancer: { url: string; pid: number; running: boolean; statsUrl: string };
  hops: { name: string; url: string; pid: number; running: boolean; balancer: string }[];
}

/** Each process as it is now, with the balancer's view of each Hop (UP, DOWN, …). */
export async function fleetStatus(f: Fleet): Promise<FleetStatus> {
  const seen = await balancerView(f).catch(() => new Map<string, string>());
  return {
    balancer: {
      url: f.balancer.url,
      pid: f.balancer.pid,
      running: isAlive(f.balancer.pid),
      statsUrl: f.balancer.statsUrl,
    },
    hops: f.hops.map((h) => ({
      name: h.name,
      url: h.url,
      pid: h.pid,
      running: isAlive(h.pid),
      balancer: seen.get(h.name) ?? 'unknown',
    })),
  };
}

/**
 * Restarts every Hop process, one at a time: SIGTERM (it turns unready, the balancer takes it out,
 * it drains and exits), start it again on its port, and go on only once the balancer has it back in
 * rotation, so at most one process is ever out.
 */
export async function rollingRestart(f: Fleet, log: (line: string) => void = () => {}): Promise<void> {
  for (const h of [...f.hops]) {
    const began = performance.now();
    await restartHop(f, h.name);
    log(`${h.name} restarted in ${((performance.now() - began) / 1000).toFixed(1)} s`);
  }
}

export async function restartHop(f: Fleet, name: string): Promise<HopServer> {
  const i = f.hops.findIndex((h) => h.name === name);
  const old = f.hops[i];
  if (old === undefined) throw new FleetError(`no Hop process named ${name}`);
  await stopServer(old, { graceMs: stopGraceMs(f) });
  const next = await startHop(f, old.name, old.port);
  f.hops[i] = next;
  await saveFleet(f);
  await waitInRotation(f, [name]);
  return next;
}

/** How long a Hop process may take to exit after SIGTERM: its drain delay, its shutdown timeout, slack. */
function stopGraceMs(f: Fleet): number {
  return Number(f.env.HOP_DRAIN_DELAY_MS ?? 0) + Number(f.env.HOP_SHUTDOWN_TIMEOUT_MS ?? 10_000) + 10_000;
}

/** Stops the balancer, then every Hop process (each drains), and removes the fleet's directory. */
export async function stopFleet(f: Fleet): Promise<string[]> {
  const failures: string[] = [];
  await stopServer(f.balancer).catch((err) => failures.push(`balancer: ${String(err)}`));
  await Promise.all(
    f.hops.map((h) =>
      stopServer(h, { graceMs: stopGraceMs(f) }).catch((err) => failures.push(`${h.name}: ${String(err)}`)),
    ),
  );
  if (failures.length === 0) await rm(f.dir, { recursive: true, force: true });
  return failures;
}

/** The balancer's status of each server ("UP", "DOWN", "UP 1/2", "MAINT", …), by name. */
export function balancerView(f: Fleet): Promise<Map<string, string>> {
  return haproxyServerStatus(f.balancer.statsUrl, 'hop');
}

/** Until the balancer routes to each named server (bounded: a check takes `rise` intervals). */
export async function waitInRotation(f: Fleet, names: readonly string[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const view = await balancerView(f).catch(() => new Map<string, string>());
    if (names.every((n) => view.get(n) === 'UP')) return;
    if (Date.now() > deadline) {
      const seen = names.map((n) => `${n} ${view.get(n) ?? '?'}`).join(', ');
      throw new FleetError(`the balancer did not take ${names.join(', ')} into rotation in time (${seen})`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function startHop(f: Fleet, name: string, port: number): Promise<HopServer> {
  const url = `http://127.0.0.1:${port}`;
  const s = await startServer(
    {
      name,
      command: process.execPath,
      args: [join(ROOT, 'bin/hop.js'), 'serve'],
      cwd: ROOT,
      env: { ...f.env, HOST: '127.0.0.1', PORT: String(port) },
      logFile: join(f.dir, `${name}.log`),
      ready: httpReady(`${url}/readyz`),
      readyTimeoutMs: 120_000,
      cpuQuota: f.cpuQuota,
    },
    `hop-fleet-${process.pid}`,
  );
  return { ...s, port, url };
}

async function startBalancer(f: Fleet, port: number): Promise<Balancer> {
  const statsPort = await freePort();
  const configFile = join(f.dir, 'haproxy.cfg');
  const config = haproxyConfig({
    bind: `127.0.0.1:${port}`,
    statsBind: `127.0.0.1:${statsPort}`,
    servers: { kind: 'static', list: f.hops.map((h) => ({ name: h.name, address: `127.0.0.1:${h.port}` })) },
    check: f.check,
    // Within a shell's usual limit of open files (HAProxy refuses to start past it).
    maxconn: 4_096,
  });
  await writeFile(configFile, config);
  const statsUrl = `http://127.0.0.1:${statsPort}`;
  // -db: in the foreground (the supervisor holds its pid), no daemon.
  const s = await startServer(
    {
      name: 'balancer',
      command: 'haproxy',
      args: ['-db', '-f', configFile],
      logFile: join(f.dir, 'haproxy.log'),
      ready: httpReady(`${statsUrl}/stats`),
      readyTimeoutMs: 10_000,
      // The balancer is measured, not budgeted: its CPU is reported beside the Hops'.
      cpuQuota: null,
    },
    `hop-fleet-${process.pid}`,
  ).catch((err) => {
    if (err instanceof SupervisorError && /ENOENT/.test(err.message)) {
      throw new FleetError('haproxy is not installed: bash scripts/ensure-debian.sh haproxy=haproxy');
    }
    throw err;
  });
  return { ...s, url: `http://127.0.0.1:${port}`, statsUrl, configFile };
}

async function saveFleet(f: Fleet): Promise<void> {
  // It holds the Hop settings, API key included: the owner's alone.
  await writeFile(join(f.dir, STATE_FILE), `${JSON.stringify(f, null, 2)}\n`, { mode: 0o600 });
}

async function claimDir(dir: string): Promise<void> {
  try {
    const old = await loadFleet(dir);
    if (isAlive(old.balancer.pid) || old.hops.some((h) => isAlive(h.pid))) {
      throw new FleetError(`a fleet already runs from ${dir}: npm run fleet -- down --dir ${dir}`);
    }
  } catch (err) {
    if (!(err instanceof FleetError) || !/no fleet/.test(err.message)) throw err;
  }
  await mkdir(dir, { recursive: true });
}
