// The click stream on real Redis Streams and real PostgreSQL shards (issue "Events at scale"):
// two Hop processes append, two `hop worker` processes write rollups, one of them is SIGKILLed
// mid-run, and every click is counted exactly once; a poison entry is dead-lettered after its
// deliveries without holding up the others, and `hop dlq replay` after the fix counts it once.
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { type RedisServers, startRedis, stopRedis } from '../../scripts/cluster/redis-servers.ts';
import { DEAD_LETTER_KEY, entryFields, partitionKey, partitionOf } from '../../src/events/click-stream.ts';
import { uuid7 } from '../../src/events/uuid7.ts';
import { TEST_KEY } from '../support/harness.ts';
import { type HopProcess, runHop, startHop, startWorker } from '../support/hop-process.ts';
import {
  type Cluster,
  freshDatabases,
  primaryOf,
  stopCluster,
  testCluster,
  withClient,
} from '../support/pg-cluster.ts';

let pg: Cluster;
let redis: RedisServers;
before(async () => {
  [pg, redis] = await Promise.all([testCluster(2, 0), startRedis({ mode: 'single' })]);
});
after(async () => {
  await Promise.all([stopCluster(pg), stopRedis(redis)]);
});

const auth = { authorization: `Bearer ${TEST_KEY}` };
const PARTITIONS = 4;

function streamEnv(urls: string): Record<string, string> {
  return {
    HOP_DATABASE_URLS: urls,
    HOP_REDIS_URL: redis.url,
    HOP_CLICK_PIPELINE: 'stream',
    HOP_CLICK_STREAM_PARTITIONS: String(PARTITIONS),
    HOP_CLICK_FLUSH_MS: '100',
    HOP_INITIAL_API_KEY: TEST_KEY,
    HOP_RATE_LIMITS: 'off',
  };
}

async function createLink(hop: HopProcess, url: string): Promise<string> {
  const res = await fetch(`${hop.url}/api/v1/links`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ url }),
  });
  const body = await res.text();
  assert.equal(res.status, 201, body);
  return (JSON.parse(body) as { code: string }).code;
}

async function linkClicks(hop: HopProcess, code: string): Promise<number> {
  const res = await fetch(`${hop.url}/api/v1/links/${code}`, { headers: auth });
  assert.equal(res.status, 200);
  return ((await res.json()) as { clicks: number }).clicks;
}

/** GETs each path once, `concurrency` at a time per target, over keep-alive connections. */
async function redirects(
  jobs: { base: string; path: string }[],
  concurrency: number,
  onProgress?: (n: number) => void,
) {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  let next = 0;
  let done = 0;
  const one = (j: { base: string; path: string }) =>
    new Promise<number>((resolve, reject) => {
      const req = request(`${j.base}${j.path}`, { agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    });
  const lanes = Array.from({ length: concurrency }, async () => {
    while (next < jobs.length) {
      const j = jobs[next++]!;
      const status = await one(j);
      assert.equal(status, 302);
      onProgress?.(++done);
    }
  });
  await Promise.all(lanes);
  agent.destroy();
}

async function until<T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(v)} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('the click stream on Redis Streams with hop worker', () => {
  test('100,000 clicks through two Hops and two workers, one SIGKILLed mid-run, are counted exactly', async (t) => {
    const db = await freshDatabases(pg);
    const env = streamEnv(db.urls);
    const hops = [await startHop(env), await startHop(env)];
    const workerEnv = { ...env, HOP_WORKER_CLAIM_IDLE_MS: '1500' };
    const workers = [await startWorker(workerEnv), await startWorker(workerEnv)];
    t.after(async () => {
      await Promise.all([...hops, ...workers].map((p) => p.stop()));
    });
    const codes: string[] = [];
    for (let i = 0; i < 40; i++) codes.push(await createLink(hops[0]!, `https://example.com/${i}`));
    const TOTAL = 100_000;
    const sent = new Map<string, number>();
    const jobs = Array.from({ length: TOTAL }, (_, i) => {
      // Uneven on purpose: a few hot links, many cold ones, on both shards and every partition.
      const code = codes[((i * i + i) % 97) % codes.length]!;
      sent.set(code, (sent.get(code) ?? 0) + 1);
      return { base: hops[i % 2]!.url, path: `/${code}` };
    });
    let killed = false;
    await redirects(jobs, 32, (n) => {
      if (!killed && n >= TOTAL * 0.3) {
        killed = true;
        workers[0]!.child.kill('SIGKILL');
      }
    });
    assert.ok(killed);
    // Hops append within their flush interval; the survivor takes over the dead worker's entries.
    const total = async () => {
      let n = 0;
      for (const c of codes) n += await linkClicks(hops[1]!, c);
      return n;
    };
    await until('clicks counted', total, (n) => n >= TOTAL, 90_000);
    await new Promise((r) => setTimeout(r, 2_000)); // anything late would now show as too many
    assert.equal(await total(), TOTAL);
    for (const c of codes) assert.equal(await linkClicks(hops[0]!, c), sent.get(c) ?? 0, c);
    const stats = await fetch(`${hops[0]!.url}/api/v1/stats?includeBots=true`, { headers: auth });
    const body = (await stats.json()) as { totals: { clicks: number } };
    assert.equal(body.totals.clicks, TOTAL);
    const metrics = await (await fetch(`${workers[1]!.url}/metrics`)).text();
    assert.match(metrics, /hop_click_stream_lag\{partition="0"\} 0/);
    assert.match(metrics, /hop_click_to_rollup_seconds_count \d+/);
  });

  test('a poison entry is dead-lettered after its deliveries, others pass it, and a replay after the fix counts once', async (t) => {
    const db = await freshDatabases(pg);
    const env = streamEnv(db.urls);
    const hop = await startHop(env);
    const worker = await startWorker({
      ...env,
      HOP_WORKER_CLAIM_IDLE_MS: '300',
      HOP_WORKER_MAX_DELIVERIES: '3',
    });
    const client = new Redis(redis.url);
    t.after(async () => {
      await Promise.all([hop.stop(), worker.stop()]);
      await client.del(DEAD_LETTER_KEY);
      client.disconnect();
    });
    const poisoned = await createLink(hop, 'https://example.com/poisoned');
    const healthy = await createLink(hop, 'https://example.com/healthy');
    // A defect on the database side: writes of the poisoned link's clicks fail until it is fixed.
    for (let s = 0; s < pg.shards; s++) {
      await withClient(db.url(primaryOf(pg, s)), (c) =>
        c.query(`
          CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN IF NEW.code = '${poisoned}' THEN RAISE EXCEPTION 'simulated defect'; END IF; RETURN NEW; END $$;
          CREATE TRIGGER poison BEFORE INSERT OR UPDATE ON click_packs FOR EACH ROW EXECUTE FUNCTION poison();`),
      );
    }
    const click = (code: string) => ({
      id: uuid7(),
      code,
      at: Date.now(),
      referrerHost: null,
      country: 'NL',
      browser: 'Firefox',
      os: 'Linux',
      device: 'desktop',
      bot: false,
      visitor: '0123456789abcdef',
    });
    const poisonKey = partitionKey(partitionOf(poisoned, PARTITIONS));
    // Garbage too: it can never be written, and must not block what follows it.
    await client.xadd(poisonKey, '*', 'b', 'not-a-batch-id', 'e', '{');
    await client.xadd(poisonKey, '*', ...entryFields(uuid7(), [click(poisoned), click(poisoned)]));
    await client.xadd(poisonKey, '*', ...entryFields(uuid7(), [click(healthy)]));
    const healthyKey = partitionKey(partitionOf(healthy, PARTITIONS));
    if (healthyKey !== poisonKey)
      await client.xadd(healthyKey, '*', ...entryFields(uuid7(), [click(healthy)]));
    const expectHealthy = healthyKey === poisonKey ? 1 : 2;
    await until(
      'healthy clicks',
      () => linkClicks(hop, healthy),
      (n) => n === expectHealthy,
      20_000,
    );
    await until(
      'dead letters',
      () => client.xlen(DEAD_LETTER_KEY),
      (n) => n === 2,
      30_000,
    );
    const listed = await runHop(['dlq', 'list'], env);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /2 dead letter\(s\)/);
    assert.match(listed.stdout, /simulated defect/);
    assert.match(listed.stdout, /3 deliveries/);
    assert.match(listed.stdout, /undecodable|not a click batch/);
    assert.equal(await linkClicks(hop, poisoned), 0);

    // The fix, then the replay: the two clicks count once, and the garbage lands back in the DLQ.
    for (let s = 0; s < pg.shards; s++) {
      await withClient(db.url(primaryOf(pg, s)), (c) => c.query('DROP TRIGGER poison ON click_packs'));
    }
    const replayed = await runHop(['dlq', 'replay', '--all'], env);
    assert.equal(replayed.code, 0, replayed.stderr);
    assert.match(replayed.stdout, /Replayed 2/);
    await until(
      'replayed clicks',
      () => linkClicks(hop, poisoned),
      (n) => n === 2,
      20_000,
    );
    await until(
      'garbage back in the DLQ',
      () => client.xlen(DEAD_LETTER_KEY),
      (n) => n === 1,
      30_000,
    );
    await new Promise((r) => setTimeout(r, 1_000));
    assert.equal(await linkClicks(hop, poisoned), 2);
    const purged = await runHop(['dlq', 'purge', '--all'], env);
    assert.equal(purged.code, 0, purged.stderr);
    assert.equal(await client.xlen(DEAD_LETTER_KEY), 0);
  });
});
