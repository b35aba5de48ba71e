// What Hop and `hop worker` serve on /metrics passes `promtool check metrics` (Prometheus's own
// linter: names, suffixes, units, help) once traffic has made their series exist. promtool comes
// from Debian's prometheus package, which the test command installs (scripts/ensure-debian.sh):
// without it these tests fail rather than skip.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { type RedisServers, startRedis, stopRedis } from '../../scripts/cluster/redis-servers.ts';
import { baseUrl, startHarness, TEST_KEY } from '../support/harness.ts';
import { type HopProcess, startHop, startWorker } from '../support/hop-process.ts';
import { type Cluster, freshDatabases, stopCluster, testCluster } from '../support/pg-cluster.ts';

const auth = { authorization: `Bearer ${TEST_KEY}` };

/** Feeds an exposition to `promtool check metrics` on stdin; its exit code and everything it printed. */
function promtoolCheck(exposition: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => {
      output += d;
    });
    child.stderr.on('data', (d) => {
      output += d;
    });
    child.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'ENOENT'
          ? new Error(
              'promtool is not on PATH: run `bash scripts/ensure-debian.sh promtool=prometheus` (npm test does)',
            )
          : err,
      ),
    );
    child.once('close', (code) => resolve({ code, output }));
    child.stdin.end(exposition);
  });
}

async function assertPromtoolClean(exposition: string): Promise<void> {
  const { code, output } = await promtoolCheck(exposition);
  assert.equal(output, '', 'promtool check metrics reports nothing');
  assert.equal(code, 0);
}

async function scrape(url: string): Promise<string> {
  const res = await fetch(`${url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return res.text();
}

/** Creates a link and follows it `clicks` times; returns its code. */
async function createAndFollow(url: string, clicks: number): Promise<string> {
  const res = await fetch(`${url}/api/v1/links`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ url: 'https://example.com/promtool' }),
  });
  const body = await res.text();
  assert.equal(res.status, 201, body);
  const { code } = JSON.parse(body) as { code: string };
  for (let i = 0; i < clicks; i++) {
    const r = await fetch(`${url}/${code}`, { redirect: 'manual' });
    assert.equal(r.status, 302);
  }
  assert.equal((await fetch(`${url}/no-such-code`, { redirect: 'manual' })).status, 404);
  return code;
}

async function until(what: string, read: () => Promise<string>, ok: RegExp, ms = 30_000): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    const text = await read();
    if (ok.test(text)) return text;
    if (Date.now() > deadline) throw new Error(`${what}: no ${ok} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('/metrics passes promtool check metrics', { timeout: 120_000 }, () => {
  test('the embedded Hop, after a create and a redirect', async (t) => {
    const h = await startHarness({}, { listen: true });
    t.after(() => h.close());
    const url = baseUrl(h.app);
    await createAndFollow(url, 1);
    const text = await scrape(url);
    assert.match(text, /^hop_redirects_total\{outcome="redirect"\} 1$/m);
    assert.match(text, /^hop_links_created_total 1$/m);
    assert.match(text, /^hop_process_nodejs_active_handles_all_types \d+$/m);
    assert.doesNotMatch(text, /^hop_process_nodejs_active_\w+_total/m, 'gauges carry no _total');
    await assertPromtoolClean(text);
  });

  describe('on PostgreSQL and Redis, with a hop worker', () => {
    let pg: Cluster;
    let redis: RedisServers;
    before(async () => {
      // A replica, so the replica gauges (lag, rotation) are in the exposition too.
      [pg, redis] = await Promise.all([testCluster(1, 1), startRedis({ mode: 'single' })]);
    });
    after(async () => {
      await Promise.all([pg && stopCluster(pg), redis && stopRedis(redis)]);
    });

    test("Hop's and the worker's, after clicks have gone through the stream", async (t) => {
      const db = await freshDatabases(pg);
      const env = {
        HOP_DATABASE_URLS: db.urls,
        HOP_REDIS_URL: redis.url,
        HOP_CLICK_PIPELINE: 'stream',
        HOP_CLICK_FLUSH_MS: '100',
        HOP_INITIAL_API_KEY: TEST_KEY,
        HOP_RATE_LIMITS: 'off',
      };
      const started: HopProcess[] = [];
      t.after(() => Promise.all(started.map((p) => p.stop())));
      const hop = await startHop(env);
      started.push(hop);
      const worker = await startWorker(env);
      started.push(worker);
      await createAndFollow(hop.url, 3);

      const hopText = await scrape(hop.url);
      assert.match(hopText, /^hop_redirects_total\{outcome="redirect"\} 3$/m);
      assert.match(hopText, /^hop_db_server_up\{server="[^"]+",role="replica",shard="0"\} [01]$/m);
      assert.match(hopText, /^hop_redis_command_seconds_count\{/m);
      await assertPromtoolClean(hopText);

      const workerText = await until(
        "the worker's rollup of the 3 clicks",
        () => scrape(worker.url),
        /^hop_worker_clicks_total\{partition="\d+",result="written"\} 3$/m,
      );
      assert.match(workerText, /^hop_click_to_rollup_seconds_count 3$/m);
      assert.match(workerText, /^hop_click_stream_lag\{partition="0"\} \d+$/m);
      assert.match(workerText, /^hop_process_nodejs_active_resources_all_types \d+$/m);
      await assertPromtoolClean(workerText);
    });
  });
});
