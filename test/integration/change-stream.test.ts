// The replayable change stream on real PostgreSQL shards and real Redis (issue "Events at
// scale"): the outbox relay in `hop worker` SIGKILLed mid-stream and started again loses, repeats
// and reorders nothing; a shard database dropped and restored from a base copy plus `hop replay`
// redirects every link again, as its latest change left it; `hop replay --into cache` warms a
// cold cache.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { type RedisServers, startRedis, stopRedis } from '../../scripts/cluster/redis-servers.ts';
import { ChangeStreamInvalidator } from '../../src/cache/change-stream-invalidator.ts';
import { loadConfig } from '../../src/config.ts';
import { changeStreamKey, lastPublishedSeq, readChangeStream } from '../../src/events/change-stream.ts';
import { createLogger } from '../../src/logger.ts';
import { connectRedis } from '../../src/redis/connect-redis.ts';
import { TEST_KEY } from '../support/harness.ts';
import { type HopProcess, runHop, startHop, startWorker, tempDir } from '../support/hop-process.ts';
import {
  type Cluster,
  freshDatabases,
  primaryOf,
  stopCluster,
  testCluster,
  withClient,
} from '../support/pg-cluster.ts';

const run = promisify(execFile);
const PG_BIN = '/usr/lib/postgresql/15/bin';

let pg: Cluster;
let redis: RedisServers;
let client: Redis;
before(async () => {
  [pg, redis] = await Promise.all([testCluster(2, 0), startRedis({ mode: 'single' })]);
  client = new Redis(redis.url);
});
after(async () => {
  client.disconnect();
  await Promise.all([stopCluster(pg), stopRedis(redis)]);
});

const auth = { authorization: `Bearer ${TEST_KEY}` };

function env(urls: string): Record<string, string> {
  return {
    HOP_DATABASE_URLS: urls,
    HOP_REDIS_URL: redis.url,
    HOP_INITIAL_API_KEY: TEST_KEY,
    HOP_RATE_LIMITS: 'off',
  };
}

async function api(hop: HopProcess, method: string, path: string, body?: unknown): Promise<Response> {
  const init: RequestInit = { method, headers: auth };
  if (body !== undefined) {
    init.headers = { ...auth, 'content-type': 'application/json' };
    init.body = JSON.stringify(body);
  }
  return fetch(`${hop.url}${path}`, init);
}

async function create(hop: HopProcess, url: string): Promise<string> {
  const res = await api(hop, 'POST', '/api/v1/links', { url });
  const text = await res.text();
  assert.equal(res.status, 201, text);
  return (JSON.parse(text) as { code: string }).code;
}

async function outboxSeqs(url: string): Promise<number[]> {
  return withClient(url, async (c) =>
    (await c.query<{ s: string }>('SELECT seq::text AS s FROM outbox ORDER BY outbox.seq')).rows.map((r) =>
      Number(r.s),
    ),
  );
}

async function until(what: string, ok: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Every shard's change stream holds its whole outbox. */
async function caughtUp(db: { url(s: never): string }): Promise<boolean> {
  for (let s = 0; s < pg.shards; s++) {
    const seqs = await outboxSeqs(db.url(primaryOf(pg, s) as never));
    if ((await lastPublishedSeq(client, s)) !== (seqs.at(-1) ?? 0)) return false;
  }
  return true;
}

describe('the change stream', () => {
  test('every process drops its copy of a changed link from the stream, even without pub/sub', async (t) => {
    const forgotten: string[] = [];
    const target = loadConfig({}, { HOP_REDIS_URL: redis.url }).redis!;
    const tail = new ChangeStreamInvalidator(
      () => connectRedis(target, { name: 'test-tail', commandTimeoutMs: 5_000, blocking: true }),
      2,
      (code) => forgotten.push(code),
      createLogger('silent'),
    );
    tail.start();
    t.after(() => tail.stop());
    await tail.started; // it reads from the streams' ends as they were then
    const change = (code: string) =>
      JSON.stringify({ kind: 'link.updated', at: new Date().toISOString(), link: { code } });
    await client.xadd(changeStreamKey(1), '*', 'seq', '900001', 'change', change('tailA'));
    await client.xadd(changeStreamKey(0), '*', 'seq', '900002', 'change', change('tailB'));
    await client.xadd(changeStreamKey(1), '*', 'seq', '900003', 'change', change('tailC'));
    await until('all three seen', async () => forgotten.length >= 3, 5_000);
    assert.deepEqual([...forgotten].sort(), ['tailA', 'tailB', 'tailC']);
  });

  test('a relay SIGKILLed mid-stream and started again: every change once, in per-shard order', async (t) => {
    await client.flushall();
    const db = await freshDatabases(pg);
    const hop = await startHop(env(db.urls));
    let worker = await startWorker(env(db.urls));
    t.after(async () => {
      await Promise.all([hop.stop(), worker.stop()]);
    });
    // Concurrent writers on both shards while the relay runs: commit order must be seq order.
    const codes: string[] = [];
    const burst = async (n: number) => {
      const made = await Promise.all(
        Array.from({ length: n }, (_, i) => create(hop, `https://example.com/${i}`)),
      );
      codes.push(...made);
      await Promise.all(
        made
          .slice(0, 10)
          .map((c) => api(hop, 'PATCH', `/api/v1/links/${c}`, { url: `https://example.org/${c}` })),
      );
    };
    await burst(80);
    await until('some changes relayed', async () => (await client.xlen(changeStreamKey(0))) > 0, 10_000);
    worker.child.kill('SIGKILL');
    await worker.stop();
    await burst(80);
    await api(hop, 'DELETE', `/api/v1/links/${codes[0]}`);
    worker = await startWorker(env(db.urls));
    // The dead relay's lease (10 s) runs out, then the new one resumes where the stream ends.
    await until('caught up', () => caughtUp(db), 30_000).catch((err) => {
      throw new Error(`${err}\nworker: ${worker.stderr()}`);
    });
    for (let s = 0; s < pg.shards; s++) {
      const url = db.url(primaryOf(pg, s) as never);
      const published: number[] = [];
      for await (const c of readChangeStream(client, s, { afterSeq: 0 })) published.push(c.seq);
      assert.deepEqual(published, await outboxSeqs(url), `shard ${s}: the stream is the outbox, in order`);
      const unmarked = await withClient(url, (c) =>
        c.query('SELECT 1 FROM outbox WHERE published_at IS NULL'),
      );
      assert.equal(unmarked.rows.length, 0);
    }
  });

  test('a dropped shard restored from a base copy plus hop replay redirects every link again; replay warms a cold cache', async (t) => {
    await client.flushall();
    const db = await freshDatabases(pg);
    const hop = await startHop(env(db.urls));
    const worker = await startWorker(env(db.urls));
    const dir = tempDir();
    t.after(async () => {
      await Promise.all([hop.stop(), worker.stop()]);
      dir.remove();
    });
    const shard1 = db.url(primaryOf(pg, 1) as never);
    const want = new Map<string, string | null>();
    for (let i = 0; i < 60; i++)
      want.set(await create(hop, `https://example.com/before/${i}`), `https://example.com/before/${i}`);
    const dump = `${dir.path}/shard1.sql`;
    await run(`${PG_BIN}/pg_dump`, ['--no-owner', '-f', dump, shard1]);
    // After the base copy: new links, changed links (old and new), a deleted one.
    for (let i = 0; i < 60; i++)
      want.set(await create(hop, `https://example.com/after/${i}`), `https://example.com/after/${i}`);
    const all = [...want.keys()];
    for (const code of [all[0]!, all[1]!, all[70]!]) {
      const res = await api(hop, 'PATCH', `/api/v1/links/${code}`, { url: `https://example.net/${code}` });
      assert.equal(res.status, 200);
      want.set(code, `https://example.net/${code}`);
    }
    assert.equal((await api(hop, 'DELETE', `/api/v1/links/${all[2]}`)).status, 204);
    want.set(all[2]!, null);
    await until('caught up', () => caughtUp(db), 30_000);
    await Promise.all([hop.stop(), worker.stop()]);

    // Lose shard 1's database, then restore it: the base copy, then the changes since.
    const name = new URL(shard1).pathname.slice(1);
    const admin = new URL(shard1);
    admin.pathname = '/postgres';
    await withClient(admin.href, async (c) => {
      await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [name]);
      await c.query(`DROP DATABASE ${name}`);
      await c.query(`CREATE DATABASE ${name}`);
    });
    await run(`${PG_BIN}/psql`, ['-q', '-v', 'ON_ERROR_STOP=1', '-f', dump, shard1]);
    const replayed = await runHop(['replay', '--into', shard1, '--shard', '1'], env(db.urls));
    assert.equal(replayed.code, 0, replayed.stderr);
    assert.match(replayed.stdout, /Replayed shard 1's changes after seq \d+: [1-9]\d* read/);

    const again = await startHop(env(db.urls));
    t.after(() => again.stop());
    for (const [code, url] of want) {
      const res = await fetch(`${again.url}/${code}`, { redirect: 'manual' });
      if (url === null) assert.equal(res.status, 404, code);
      else assert.equal(res.headers.get('location'), url, code);
    }
    // New links after the restore take seqs after the replayed ones, and the relay carries on.
    const relayAgain = await startWorker(env(db.urls));
    t.after(() => relayAgain.stop());
    want.set(await create(again, 'https://example.com/after-restore'), 'https://example.com/after-restore');
    await until('caught up after the restore', () => caughtUp(db), 30_000);

    // A cold cache warmed from the stream holds every link, the deleted one as a tombstone.
    const cached = await client.keys('hop:link:*');
    if (cached.length > 0) await client.del(...cached);
    const warmed = await runHop(['replay', '--into', 'cache'], env(db.urls));
    assert.equal(warmed.code, 0, warmed.stderr);
    assert.match(warmed.stdout, /Warmed the cache with 121 links/);
    for (const code of want.keys()) assert.equal(await client.exists(`hop:link:${code}`), 1, code);
  });
});
