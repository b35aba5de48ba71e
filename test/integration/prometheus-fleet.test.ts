// The real Prometheus (Debian's) with deploy/prometheus.yml's rules and scrape jobs, its targets
// pointed at a live fleet: two Hop processes behind HAProxy (configured as `npm run fleet` does),
// one `hop worker`, on a PostgreSQL primary with a replica and Redis (the click stream), and the
// blackbox exporter probing the canary short link through the balancer. After a little traffic
// (creates, redirects, clicks through the worker), its HTTP API must show every target up, every
// rule evaluating without error and every recording rule producing a series. Jobs whose exporter
// is not here (Patroni) are left out by name, and said so; a job this file does not know fails it.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { type RedisServers, startRedis, stopRedis } from '../../scripts/cluster/redis-servers.ts';
import { DEFAULT_CHECK, haproxyConfig } from '../../scripts/fleet/haproxy-config.ts';
import { httpReady, type RunningServer, startServer, stopServer } from '../../scripts/lib/supervisor.ts';
import { TEST_KEY } from '../support/harness.ts';
import { freePort, type HopProcess, startHop, startWorker, tempDir } from '../support/hop-process.ts';
import {
  allRules,
  DEPLOY,
  dashboardQueries,
  metricNames,
  PROMETHEUS_CONFIG,
  RULES_DIR,
  readYaml,
  withoutGrafanaVariables,
} from '../support/monitoring.ts';
import { type Cluster, freshDatabases, stopCluster, testCluster } from '../support/pg-cluster.ts';

interface ScrapeConfig {
  job_name: string;
  static_configs?: { targets: string[] }[];
  dns_sd_configs?: unknown;
  file_sd_configs?: unknown;
  relabel_configs?: { target_label?: string; replacement?: string }[];
  [k: string]: unknown;
}
interface PromConfig {
  global: Record<string, string>;
  rule_files: string[];
  alerting?: unknown;
  scrape_configs: ScrapeConfig[];
}

/** Jobs of deploy/prometheus.yml with no exporter in this test, and why. */
const ABSENT: Record<string, string> = {
  patroni: 'no Patroni here (the cluster is PostgreSQL streaming replication); its alerts are unit-tested',
};

const auth = { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json' };
const hostOf = (url: string) => new URL(url).host;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, ms: number, fn: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn().catch((err: unknown) => err as T);
    if (ok(v)) return v;
    if (Date.now() > deadline) {
      const seen = v instanceof Error ? v.message : JSON.stringify(v, null, 1);
      throw new Error(`${what}: still ${seen} after ${ms} ms`);
    }
    await sleep(500);
  }
}

let pg: Cluster;
let redis: RedisServers;
let dir: ReturnType<typeof tempDir>;
const hops: HopProcess[] = [];
let worker: HopProcess | undefined;
const servers: RunningServer[] = [];
let balancer = '';
let prometheus = '';
const skipped: string[] = [];

before(
  async () => {
    dir = tempDir('hop-prometheus-');
    [pg, redis] = await Promise.all([testCluster(1, 1), startRedis({ mode: 'single' })]);
    const db = await freshDatabases(pg);
    const env = {
      HOP_DATABASE_URLS: db.urls,
      HOP_REDIS_URL: redis.url,
      HOP_CLICK_PIPELINE: 'stream',
      HOP_CLICK_FLUSH_MS: '100',
      HOP_INITIAL_API_KEY: TEST_KEY,
      HOP_RATE_LIMITS: 'off',
    };
    hops.push(await startHop(env), await startHop(env));
    worker = await startWorker(env);

    // HAProxy in front of both, as the fleet script configures it, its metrics on a stats port.
    const [port, statsPort, blackboxPort, prometheusPort] = await Promise.all([
      freePort(),
      freePort(),
      freePort(),
      freePort(),
    ]);
    const haproxyFile = join(dir.path, 'haproxy.cfg');
    writeFileSync(
      haproxyFile,
      haproxyConfig({
        bind: `127.0.0.1:${port}`,
        statsBind: `127.0.0.1:${statsPort}`,
        servers: { kind: 'static', list: hops.map((h, i) => ({ name: `hop-${i}`, address: hostOf(h.url) })) },
        check: DEFAULT_CHECK,
        maxconn: 1_000,
      }),
    );
    servers.push(
      await startServer({
        name: 'haproxy',
        command: 'haproxy',
        args: ['-f', haproxyFile, '-db'],
        logFile: join(dir.path, 'haproxy.log'),
        ready: httpReady(`http://127.0.0.1:${statsPort}/metrics`),
        readyTimeoutMs: 15_000,
      }),
    );
    balancer = `http://127.0.0.1:${port}`;

    // The canary, created through the balancer; it redirects once both Hops are in rotation.
    const created = await until(
      'the canary link created through the balancer',
      20_000,
      () =>
        fetch(`${balancer}/api/v1/links`, {
          method: 'POST',
          headers: auth,
          body: JSON.stringify({ url: 'https://example.com/canary-target', alias: 'canary' }),
        }).then((r) => r.status),
      (s) => s === 201 || s === 409,
    );
    assert.equal(created, 201);

    servers.push(
      await startServer({
        name: 'blackbox',
        command: 'prometheus-blackbox-exporter',
        args: [
          `--config.file=${join(DEPLOY, 'blackbox.yml')}`,
          `--web.listen-address=127.0.0.1:${blackboxPort}`,
        ],
        logFile: join(dir.path, 'blackbox.log'),
        ready: httpReady(`http://127.0.0.1:${blackboxPort}/-/healthy`),
        readyTimeoutMs: 15_000,
      }),
    );

    // deploy/prometheus.yml with its targets replaced by these processes, every second.
    const config = readYaml<PromConfig>(PROMETHEUS_CONFIG);
    const targets: Record<string, string[]> = {
      hop: hops.map((h) => hostOf(h.url)),
      'hop-worker': [hostOf(worker.url)],
      haproxy: [`127.0.0.1:${statsPort}`],
      'blackbox-canary': [`${balancer}/canary`],
    };
    const jobs: ScrapeConfig[] = [];
    for (const job of config.scrape_configs) {
      if (ABSENT[job.job_name] !== undefined) {
        skipped.push(`${job.job_name}: ${ABSENT[job.job_name]}`);
        continue;
      }
      const list = targets[job.job_name];
      assert.ok(
        list,
        `deploy/prometheus.yml's job ${job.job_name} is new: give it a target here, or say why not`,
      );
      const { dns_sd_configs: _dns, file_sd_configs: _file, ...rest } = job;
      const rewritten: ScrapeConfig = { ...rest, static_configs: [{ targets: list }] };
      if (job.job_name === 'blackbox-canary') {
        const address = rewritten.relabel_configs?.find((r) => r.target_label === '__address__');
        assert.ok(address, 'the blackbox job sends its scrape to the exporter');
        address.replacement = `127.0.0.1:${blackboxPort}`;
      }
      jobs.push(rewritten);
    }
    const { alerting: _alerting, ...kept } = config;
    const rewritten: PromConfig = {
      ...kept,
      global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
      rule_files: [join(RULES_DIR, '*.yml')],
      scrape_configs: jobs,
    };
    const configFile = join(dir.path, 'prometheus.yml');
    writeFileSync(configFile, stringify(rewritten));
    servers.push(
      await startServer({
        name: 'prometheus',
        command: 'prometheus',
        args: [
          `--config.file=${configFile}`,
          `--storage.tsdb.path=${join(dir.path, 'tsdb')}`,
          `--web.listen-address=127.0.0.1:${prometheusPort}`,
        ],
        logFile: join(dir.path, 'prometheus.log'),
        ready: httpReady(`http://127.0.0.1:${prometheusPort}/-/ready`),
        readyTimeoutMs: 30_000,
      }),
    );
    prometheus = `http://127.0.0.1:${prometheusPort}`;
    // Traffic only once every target has been scraped: counts that are already in a target's first
    // sample are no increase to rate().
    await everyTargetUp();

    // Traffic through the balancer: creates, redirects (counted clicks, which the worker writes),
    // unknown codes, link reads.
    const codes: string[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await fetch(`${balancer}/api/v1/links`, {
        method: 'POST',
        headers: auth,
        body: JSON.stringify({ url: `https://example.com/${i}` }),
      });
      assert.equal(r.status, 201, await r.clone().text());
      codes.push(((await r.json()) as { code: string }).code);
    }
    for (let round = 0; round < 20; round++) {
      await Promise.all(
        codes.map(async (c) => {
          const r = await fetch(`${balancer}/${c}`, { redirect: 'manual' });
          assert.equal(r.status, 302);
        }),
      );
    }
    for (let i = 0; i < 5; i++) assert.equal((await fetch(`${balancer}/nosuchcode${i}`)).status, 404);
    for (const c of codes)
      assert.equal((await fetch(`${balancer}/api/v1/links/${c}`, { headers: auth })).status, 200);
    // The worker has written the clicks when the links count them.
    await until(
      'clicks counted in the rollups',
      30_000,
      async () => {
        const r = await fetch(`${balancer}/api/v1/links/${codes[0]}`, { headers: auth });
        return ((await r.json()) as { clicks: number }).clicks;
      },
      (n) => n === 20,
    );
  },
  { timeout: 240_000 },
);

after(
  async () => {
    for (const s of servers.reverse()) await stopServer(s, { graceMs: 10_000 });
    await Promise.all([...hops, ...(worker ? [worker] : [])].map((p) => p.stop()));
    await Promise.all([pg ? stopCluster(pg) : null, redis ? stopRedis(redis) : null]);
    dir?.remove();
  },
  { timeout: 120_000 },
);

async function api<T>(path: string): Promise<T> {
  const r = await fetch(`${prometheus}${path}`);
  const body = (await r.json()) as { status: string; data: T; error?: string };
  assert.equal(body.status, 'success', `${path}: ${body.error}`);
  return body.data;
}

type Targets = {
  activeTargets: { labels: { job: string; instance: string }; health: string; lastError: string }[];
};

/** Every active target scraped, and up. */
const everyTargetUp = () =>
  until(
    'every target up',
    30_000,
    () => api<Targets>('/api/v1/targets?state=active'),
    (d) => d.activeTargets?.length === 5 && d.activeTargets.every((x) => x.health === 'up'),
  );

const query = (q: string) =>
  api<{ result: { metric: Record<string, string>; value: [number, string] }[] }>(
    `/api/v1/query?query=${encodeURIComponent(q)}`,
  ).then((d) => d.result);

describe("Prometheus with deploy/'s configuration on a live fleet", () => {
  test('jobs without an exporter here are left out by name', (t) => {
    for (const s of skipped) t.diagnostic(`skipped job ${s}`);
    assert.deepEqual(
      skipped.map((s) => s.split(':')[0]),
      Object.keys(ABSENT),
    );
  });

  test('every target is up: both Hops, the worker, HAProxy and the canary probe', async () => {
    const up = await everyTargetUp();
    const jobs = up.activeTargets.map((x) => x.labels.job).sort();
    assert.deepEqual(jobs, ['blackbox-canary', 'haproxy', 'hop', 'hop', 'hop-worker']);
  });

  test('the canary short link answers the probe through the balancer with a redirect', async () => {
    const [success] = await until(
      'a successful probe',
      30_000,
      () => query('probe_success{job="blackbox-canary"}'),
      (r) => r[0]?.value[1] === '1',
    );
    assert.equal(success?.metric.instance, `${balancer}/canary`);
    const [status] = await query('probe_http_status_code{job="blackbox-canary"}');
    assert.equal(status?.value[1], '302');
    // HEAD counts no click: the canary stays out of the analytics.
    const r = await fetch(`${balancer}/api/v1/links/canary`, { headers: auth });
    assert.equal(((await r.json()) as { clicks: number }).clicks, 0);
  });

  test('every rule evaluates without error, and every recording rule produces a series', async () => {
    type Rules = {
      groups: {
        name: string;
        rules: { name: string; type: 'recording' | 'alerting'; health: string; lastError?: string }[];
      }[];
    };
    const defined = allRules();
    const recordNames = defined.flatMap((r) => (r.record === undefined ? [] : [r.record]));
    const missing = await until(
      'every recording rule with a series',
      60_000,
      async () => {
        const { groups } = await api<Rules>('/api/v1/rules');
        const loaded = groups.flatMap((g) => g.rules);
        assert.equal(
          loaded.length,
          defined.length,
          'Prometheus loaded every rule of deploy/prometheus/rules',
        );
        const unhealthy = loaded
          .filter((r) => r.health !== 'ok')
          .map((r) => `${r.name}: ${r.health} ${r.lastError ?? ''}`);
        const empty: string[] = [];
        for (const name of recordNames) if ((await query(name)).length === 0) empty.push(name);
        return [...unhealthy, ...empty];
      },
      (m) => Array.isArray(m) && m.length === 0,
    );
    assert.deepEqual(missing, []);
    assert.ok(recordNames.length >= 29);
    // A real value, not only NaN, where this traffic gives one: no redirect failed. It is NaN
    // (no redirects yet) until a rule evaluation follows the scrape that saw the traffic, which
    // on a slow machine can come after this point.
    const [errors] = await until(
      'a redirect error ratio that is a number',
      30_000,
      () => query('hop:redirect_errors:ratio_rate5m'),
      (r) => Array.isArray(r) && r[0] !== undefined && r[0].value[1] !== 'NaN',
    );
    assert.equal(errors?.value[1], '0');
  });

  test('the blackbox and HAProxy metric names the rules and dashboards read exist', async () => {
    const names = new Set(await api<string[]>('/api/v1/label/__name__/values'));
    const used = new Set(
      [
        ...allRules().map((r) => r.expr),
        ...dashboardQueries().map((q) => withoutGrafanaVariables(q.expr)),
      ].flatMap((e) => [...metricNames(e)].filter((n) => n.startsWith('probe_') || n.startsWith('haproxy_'))),
    );
    assert.ok(used.size > 5);
    assert.deepEqual(
      [...used].filter((n) => !names.has(n)),
      [],
      'names no exporter here exposes',
    );
  });
});
