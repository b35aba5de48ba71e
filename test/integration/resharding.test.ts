// Online resharding on real servers (issue "Reshard online"): two Hop processes, a click worker and
// Redis keep taking creates, edits, keyed creates, redirects, limited links and clicks while
// `hop shards add` and `hop shards rebalance` grow the cluster from 2 shards to 3 — with the mover
// SIGKILLed mid-move and run again. Then an abort leaves the old placement serving, and `remove`
// drains a shard onto the others.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import pgDriver from 'pg';
import { type RedisServers, startRedis, stopRedis } from '../../scripts/cluster/redis-servers.ts';
import { bucketOf } from '../../src/domain/bucket.ts';
import { bucketOfKey } from '../../src/domain/domains.ts';
import { planMove } from '../../src/domain/reshard-plan.ts';
import { syncBucket } from '../../src/resharding/bucket-sync.ts';
import { abortMoves, runMoves } from '../../src/resharding/mover.ts';
import {
  closeReshardCluster,
  newestMap,
  openReshardCluster,
  POOL,
} from '../../src/resharding/reshard-cluster.ts';
import { PgPool } from '../../src/storage/postgres/pg-pool.ts';
import { recordClickPart } from '../../src/storage/sql/click-sql.ts';
import { migrate } from '../../src/storage/sql/migrate.ts';
import { TEST_KEY } from '../support/harness.ts';
import { type HopProcess, runHop, startHop, startWorker } from '../support/hop-process.ts';
import { type Cluster, freshDatabases, stopCluster, testCluster, withClient } from '../support/pg-cluster.ts';

const BIN = join(fileURLToPath(new URL('../../', import.meta.url)), 'bin/hop.js');
const auth = { authorization: `Bearer ${TEST_KEY}` };
const json = { ...auth, 'content-type': 'application/json' };

let pg: Cluster;
let redis: RedisServers;
let shardUrls: string[];
let env: Record<string, string>;
let hops: HopProcess[] = [];
let worker: HopProcess | null = null;

before(async () => {
  [pg, redis] = await Promise.all([testCluster(3, 0), startRedis({ mode: 'single' })]);
  const dbs = await freshDatabases(pg, { replicas: false });
  shardUrls = dbs.urls.split(';');
  env = {
    HOP_DATABASE_URLS: shardUrls.slice(0, 2).join(';'),
    HOP_REDIS_URL: redis.url,
    HOP_CLICK_PIPELINE: 'stream',
    HOP_CLICK_FLUSH_MS: '100',
    HOP_INITIAL_API_KEY: TEST_KEY,
    HOP_RATE_LIMITS: 'off',
    HOP_SHARD_MAP_POLL_MS: '500',
  };
});
after(async () => {
  await Promise.all([...hops, ...(worker === null ? [] : [worker])].map((h) => h.stop('SIGKILL')));
  await Promise.all([stopCluster(pg), stopRedis(redis)]);
});

async function post(hop: HopProcess, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${hop.url}/api/v1/links`, {
    method: 'POST',
    headers: { ...json, ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as { code: string; url: string } };
}

async function redirect(hop: HopProcess, code: string) {
  const res = await fetch(`${hop.url}/${code}`, { redirect: 'manual' });
  await res.arrayBuffer();
  return { status: res.status, location: res.headers.get('location') };
}

async function linkOf(hop: HopProcess, code: string) {
  const res = await fetch(`${hop.url}/api/v1/links/${code}`, { headers: auth });
  return { status: res.status, body: (await res.json()) as { url: string; clicks: number } };
}

async function onShard(shard: number, sql: string, params: unknown[] = []) {
  return withClient(shardUrls[shard]!, (c) => c.query(sql, params));
}

describe('online resharding', { concurrency: false }, () => {
  const current = new Map<string, string>(); // every acknowledged link: code → url
  const stable: string[] = []; // never edited: their redirects are checked and counted
  const redirected = new Map<string, number>();

  test('2 → 3 shards: add, rebalance under load with the mover killed and run again; nothing lost', async (t) => {
    hops = [await startHop(env), await startHop(env)];
    worker = await startWorker(env);
    for (let i = 0; i < 200; i++) {
      const r = await post(hops[i % 2]!, { url: `https://stable.example/${i}` });
      assert.equal(r.status, 201);
      current.set(r.body.code, r.body.url);
      stable.push(r.body.code);
    }
    const limited = await post(hops[0]!, { url: 'https://limited.example/', maxClicks: 40 });
    assert.equal(limited.status, 201);
    current.set(limited.body.code, limited.body.url);

    const added = await runHop(['shards', 'add', shardUrls[2]!], env);
    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stdout, /shard 2 is part of the cluster/);

    // The load, through both processes, until the moves are done.
    let running = true;
    const failures: string[] = [];
    let limitedOk = 0;
    const keyed = new Map<string, Set<string>>();
    const load = async (w: number) => {
      for (let i = 0; running; i++) {
        const hop = hops[(w + i) % 2]!;
        const op = i % 6;
        try {
          if (op === 0) {
            const r = await post(hop, { url: `https://new.example/${w}/${i}` });
            if (r.status === 201) current.set(r.body.code, r.body.url);
            else failures.push(`create ${r.status}`);
          } else if (op === 1) {
            // One key, sent through both processes at once: one link.
            const key = `k-${w}-${i}`;
            const rs = await Promise.all(
              hops.map((h) => post(h, { url: `https://keyed.example/${key}` }, { 'idempotency-key': key })),
            );
            const codes = new Set<string>();
            for (const r of rs) {
              if (r.status === 201 || r.status === 200) codes.add(r.body.code);
              else if (r.status !== 409) failures.push(`keyed create ${r.status}`);
            }
            keyed.set(key, codes);
            for (const c of codes) current.set(c, `https://keyed.example/${key}`);
          } else if (op === 2) {
            const code = [...current.keys()].find((c) => !stable.includes(c) && c !== limited.body.code);
            if (code !== undefined) {
              const url = `https://edited.example/${w}/${i}`;
              const res = await fetch(`${hop.url}/api/v1/links/${code}`, {
                method: 'PATCH',
                headers: json,
                body: JSON.stringify({ url }),
              });
              const text = await res.text();
              if (res.status === 200) current.set(code, url);
              else failures.push(`edit ${res.status} ${text.slice(0, 200)}`);
            }
          } else if (op === 3) {
            const r = await redirect(hop, limited.body.code);
            if (r.status === 302) limitedOk++;
          } else {
            const code = stable[(i * 7 + w) % stable.length]!;
            const r = await redirect(hop, code);
            if (r.status !== 302 || r.location !== current.get(code)) {
              failures.push(`redirect ${code}: ${r.status} ${r.location}`);
            } else redirected.set(code, (redirected.get(code) ?? 0) + 1);
          }
        } catch (err) {
          failures.push(`request failed: ${String(err)}`);
        }
      }
    };
    const loads = [load(0), load(1), load(2)];

    // The mover, killed once it has moved some buckets, then run again to the end.
    const first = spawn(process.execPath, [BIN, 'shards', 'rebalance'], {
      env: { ...process.env, ...env, HOP_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let firstOut = '';
    first.stdout.on('data', (d) => {
      firstOut += d;
    });
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 20_000);
      first.stdout.on('data', () => {
        if (/moves: \d+\//.test(firstOut)) {
          clearTimeout(t);
          resolve();
        }
      });
    });
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    const midway = await runHop(['shards', 'status', '--json'], env);
    assert.equal(midway.code, 0, midway.stderr);
    const mid = JSON.parse(midway.stdout) as { movesDone: number; mapVersion: number };
    assert.ok(mid.movesDone > 0, 'the first mover moved some buckets before it was killed');

    const second = await runHop(['shards', 'rebalance'], env);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /write fence per bucket: p50/);
    t.diagnostic(`first mover (killed): ${firstOut.trim().split('\n').at(-1)}`);
    for (const line of second.stdout.trim().split('\n').slice(-2)) t.diagnostic(`second mover: ${line}`);
    await new Promise((r) => setTimeout(r, 1_000));
    running = false;
    await Promise.all(loads);

    const status = JSON.parse((await runHop(['shards', 'status', '--json'], env)).stdout) as {
      shards: { buckets: number }[];
      movesInProgress: unknown[];
    };
    assert.deepEqual(
      status.shards.map((s) => s.buckets),
      [342, 341, 341],
    );
    assert.equal(status.movesInProgress.length, 0);
    assert.deepEqual(
      failures.slice(0, 10),
      [],
      `${failures.length} failed requests during the move; ${hops
        .flatMap((h) => `${h.stdout()}\n${h.stderr()}`.split('\n').filter((l) => /error|"level":50/i.test(l)))
        .slice(0, 5)
        .join('\n')}`,
    );

    // Every acknowledged link, right, through both processes.
    for (const [code, url] of current) {
      for (const hop of hops) {
        const got = await linkOf(hop, code);
        assert.equal(got.status, 200, `${code} after the move`);
        assert.equal(got.body.url, url, `${code} after the move`);
      }
    }
    // Each row is on its owner alone, and nothing is left staged.
    const map = await (async () => {
      const c = await openReshardCluster(shardUrls.map((u) => ({ primary: u, replicas: [] })));
      try {
        return await newestMap(c.primaries);
      } finally {
        await closeReshardCluster(c);
      }
    })();
    for (let s = 0; s < 3; s++) {
      const rows = await onShard(s, 'SELECT code FROM links');
      for (const r of rows.rows as { code: string }[]) assert.equal(map.owners[bucketOf(r.code)], s, r.code);
      const staged = await onShard(s, 'SELECT count(*)::int AS n FROM hop_staging.links');
      assert.equal((staged.rows[0] as { n: number }).n, 0);
    }
    const total = await Promise.all([0, 1, 2].map((s) => onShard(s, 'SELECT count(*)::int AS n FROM links')));
    assert.equal(
      total.reduce((n, r) => n + (r.rows[0] as { n: number }).n, 0),
      current.size,
    );
    // One key, one link.
    for (const [key, codes] of keyed) assert.ok(codes.size <= 1, `${key} made ${codes.size} links`);
    // maxClicks exact.
    assert.equal(limitedOk, 40);
    // Clicks exact, through the stream and the worker, across the move.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const wrong: string[] = [];
      for (const [code, n] of redirected) {
        const got = await linkOf(hops[0]!, code);
        if (got.body.clicks !== n) wrong.push(`${code}: ${got.body.clicks} ≠ ${n}`);
      }
      if (wrong.length === 0) break;
      if (Date.now() > deadline) assert.fail(`click totals differ: ${wrong.slice(0, 5).join('; ')}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    // Visits too: each is listed once, by the shard that owns its link now. Raw batches hold visits
    // of many buckets and stay where they were written, so the mover splits them into per-link
    // rows before each bucket's copy is final; a visit left raw on the old owner would be missing.
    const wrongVisits: string[] = [];
    for (const [code, n] of redirected) {
      const res = await fetch(`${hops[0]!.url}/rest/v3/short-urls/${code}/visits?itemsPerPage=1`, {
        headers: { 'x-api-key': TEST_KEY },
      });
      const page = (await res.json()) as { visits?: { pagination: { totalItems: number } } };
      const listed = page.visits?.pagination.totalItems;
      if (listed !== n) wrongVisits.push(`${code} (bucket ${bucketOf(code)}): ${listed} listed ≠ ${n}`);
    }
    assert.deepEqual(wrongVisits.slice(0, 5), [], `${wrongVisits.length} links list the wrong visits`);
    for (let s = 0; s < 3; s++) {
      // A row's code is a link's key, or a bucket's tail row (#bucket) for links with few visits.
      const rows = await onShard(s, 'SELECT DISTINCT code FROM click_visits');
      for (const { code } of rows.rows as { code: string }[]) {
        const b = code.startsWith('#') ? Number(code.slice(1)) : bucketOfKey(code);
        assert.equal(map.owners[b], s, `visit rows of ${code} on shard ${s}`);
      }
    }
    // A Hop started with the old list is refused, with what to name.
    const old = await runHop(['serve'], { ...env, PORT: '0' });
    assert.notEqual(old.code, 0);
    assert.match(old.stderr, /resharded/);
  });

  test('an aborted move leaves the old placement serving, untouched', async () => {
    const c = await openReshardCluster(shardUrls.map((u) => ({ primary: u, replicas: [] })));
    try {
      const before = await newestMap(c.primaries);
      const code = stable.find((s) => before.owners[bucketOf(s)] === 0)!;
      const b = bucketOf(code);
      await assert.rejects(
        runMoves(c, planMove(before, { first: b, last: b }, 1), {
          log: () => {},
          afterStep: (step) => {
            if (step === 'copied') throw new Error('mover stopped here');
          },
        }),
        /mover stopped here/,
      );
      const staged = await onShard(1, 'SELECT count(*)::int AS n FROM hop_staging.links WHERE bucket = $1', [
        b,
      ]);
      assert.ok((staged.rows[0] as { n: number }).n > 0, 'the copy was staged');
      const r = await abortMoves(c);
      assert.equal(r.aborted, 1);
      assert.equal(r.cleaned, true);
      const afterMap = await newestMap(c.primaries);
      assert.equal(afterMap.version, before.version);
      const left = await onShard(1, 'SELECT count(*)::int AS n FROM hop_staging.links WHERE bucket = $1', [
        b,
      ]);
      assert.equal((left.rows[0] as { n: number }).n, 0);
      const got = await redirect(hops[1]!, code);
      assert.equal(got.status, 302);
      assert.equal(got.location, current.get(code));
      const edit = await fetch(`${hops[0]!.url}/api/v1/links/${code}`, {
        method: 'PATCH',
        headers: json,
        body: JSON.stringify({ title: 'still writable' }),
      });
      assert.equal(edit.status, 200);
    } finally {
      await closeReshardCluster(c);
    }
  });

  test('a writer holding a row of the bucket when the fence takes its lock neither deadlocks nor fails', async () => {
    // An edit locks its row before its row trigger asks for the moving bucket's lock. The fence,
    // once it holds that lock, would wait for the row to delete it: a cycle PostgreSQL breaks by
    // failing one side after a second (seen once under the load test: an edit answered 500).
    const c = await openReshardCluster(shardUrls.map((u) => ({ primary: u, replicas: [] })));
    const holder = new pgDriver.Client({ connectionString: shardUrls[0] });
    const writer = new pgDriver.Client({ connectionString: shardUrls[0] });
    await holder.connect();
    await writer.connect();
    try {
      const before = await newestMap(c.primaries);
      const code = stable.find((x) => before.owners[bucketOf(x)] === 0 && x !== stable[0])!;
      const b = bucketOf(code);
      // A session's shared hold on the bucket's lock keeps the fence trying (not a transaction, so
      // the mover does not wait it out first).
      await holder.query('SELECT pg_advisory_lock_shared(7243003, $1)', [b]);
      const moving = runMoves(c, planMove(before, { first: b, last: b }, 1), {
        log: () => {},
        fenceLockTimeoutMs: 30_000,
      });
      const failed = moving.then(
        () => null,
        (err: unknown) => err,
      );
      // Until the fence is asking for the lock (so the writer below is newer than the mover's wait).
      const deadline = Date.now() + 20_000;
      for (;;) {
        const asking = await holder.query(
          `SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = 7243003 AND objid = $1
             AND mode = 'ExclusiveLock' AND NOT granted`,
          [b],
        );
        if (asking.rows.length > 0) break;
        assert.ok(Date.now() < deadline, 'the fence never asked for the bucket lock');
        await new Promise((r) => setTimeout(r, 5));
      }
      await writer.query('BEGIN');
      await writer.query('SELECT 1 FROM links WHERE code = $1 FOR UPDATE', [code]);
      await holder.query('SELECT pg_advisory_unlock_shared(7243003, $1)', [b]);
      await new Promise((r) => setTimeout(r, 300));
      // The row trigger now asks for the bucket's lock while this transaction holds the row.
      await writer.query(`UPDATE links SET title = 'edited in the fence' WHERE code = $1`, [code]);
      await writer.query('COMMIT');
      assert.equal(await failed, null, 'the move went through');
      const after = await newestMap(c.primaries);
      assert.equal(after.owners[b], 1);
      const got = await linkOf(hops[1]!, code);
      assert.equal(got.status, 200);
      assert.equal((got.body as { title?: string }).title, 'edited in the fence');
    } finally {
      await writer.end();
      await holder.end();
      await closeReshardCluster(c);
    }
  });

  test('the click ledger moves with its bucket: a batch replayed after a move counts each bucket once', async () => {
    const dbs = await freshDatabases(pg, { replicas: false });
    const [S, T] = dbs.urls.split(';').map((u, i) => new PgPool(`ledger${i}`, u, POOL));
    try {
      for (const db of [S!, T!]) await migrate(db);
      const [x, y] = ['ledger-x', 'ledger-y'];
      assert.notEqual(bucketOf(x!), bucketOf(y!));
      for (const code of [x, y]) {
        await S!.query(
          `INSERT INTO links (code, bucket, url, created_at, updated_at) VALUES ($1, $2, 'https://l.example/', now(), now())`,
          [code, bucketOf(code!)],
        );
      }
      const hour = Math.floor(Date.now() / 3_600_000) * 3_600_000;
      const batch = {
        id: '01900000-0000-7000-8000-000000000001',
        events: [],
        visitors: [],
        rollups: [x!, y!].map((code) => ({
          code,
          hour,
          bot: false,
          dim: 'country' as const,
          value: '',
          clicks: 3,
        })),
      };
      const sum = async (db: PgPool, code: string) =>
        Number(
          (
            await db.query<{ n: string | null }>('SELECT sum(clicks) AS n FROM click_packs WHERE code = $1', [
              code,
            ])
          ).rows[0]?.n ?? 0,
        );
      assert.equal(await recordClickPart(S!, batch), 'applied');
      assert.equal(await recordClickPart(S!, batch), 'duplicate');
      // x's bucket moves to T with its rollups and its ledger entry.
      const moved = await syncBucket(S!, T!, bucketOf(x!));
      assert.equal(moved.ledger, 1);
      assert.equal(await sum(T!, x!), 3);
      // The whole batch replayed at T: only the bucket T has not applied (y's) is written.
      assert.equal(await recordClickPart(T!, batch), 'applied');
      assert.equal(await sum(T!, x!), 3);
      assert.equal(await sum(T!, y!), 3);
      assert.equal(await recordClickPart(T!, batch), 'duplicate');
      // The all-links rows count what was applied, once.
      assert.equal(await sum(T!, ''), 3);
      // A bucket marked gone refuses the whole part, applying nothing.
      await T!.query('INSERT INTO buckets_gone (bucket, to_shard, map_version) VALUES ($1, 0, 1)', [
        bucketOf(y!),
      ]);
      await assert.rejects(
        recordClickPart(T!, { ...batch, id: '01900000-0000-7000-8000-000000000002' }),
        (err: unknown) => (err as { code?: string }).code === 'HB001',
      );
      assert.equal(await sum(T!, x!), 3);
    } finally {
      await Promise.all([S!.close(), T!.close()]);
    }
  });

  test('remove drains a shard onto the others, links intact', async () => {
    const removed = await runHop(['shards', 'remove', '2'], env);
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(removed.stdout, /out of the map/);
    const left = await onShard(2, 'SELECT count(*)::int AS n FROM links');
    assert.equal((left.rows[0] as { n: number }).n, 0);
    for (const [code, url] of current) {
      const got = await linkOf(hops[1]!, code);
      assert.equal(got.status, 200, code);
      assert.equal(got.body.url, url);
    }
    const status = JSON.parse((await runHop(['shards', 'status', '--json'], env)).stdout) as {
      shards: { buckets: number }[];
    };
    assert.deepEqual(
      status.shards.map((s) => s.buckets),
      [512, 512],
    );
  });
});
