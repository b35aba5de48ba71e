// The scaled-out store on a real cluster this file starts (two shards, a streaming replica each):
// placement, exactness across processes, read-your-writes under replication delay, and what
// happens when a replica dies, a primary stops or a pool runs dry.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { killServer, setApplyDelay, startServer, stopServer } from '../../scripts/cluster/pg-cluster.ts';
import { bucketOf } from '../../src/domain/bucket.ts';
import { initialShardMap, ownerOf } from '../../src/domain/shard-map.ts';
import { CONSISTENCY_HEADER } from '../../src/storage/consistency.ts';
import { PgPool } from '../../src/storage/postgres/pg-pool.ts';
import { loadShardMap, verifyShardIdentities } from '../../src/storage/postgres/shard-catalog.ts';
import type { ShardedStore } from '../../src/storage/postgres/sharded-store.ts';
import { migrate } from '../../src/storage/sql/migrate.ts';
import { migrationNames } from '../support/fixtures.ts';
import { type Harness, startHarness, TEST_KEY } from '../support/harness.ts';
import { runHop, startHop } from '../support/hop-process.ts';
import {
  type Cluster,
  freshDatabases,
  primaryOf,
  replicasOf,
  stopCluster,
  testCluster,
  withClient,
} from '../support/pg-cluster.ts';

const SHARDS = 2;
const map = initialShardMap(SHARDS);
const shardOf = (code: string) => ownerOf(map, bucketOf(code));

/** Aliases with a prefix that the initial map places on `shard`. */
function aliasesOn(shard: number, prefix: string, n: number): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < n; i++) if (shardOf(`${prefix}-${i}`) === shard) out.push(`${prefix}-${i}`);
  return out;
}

let cluster: Cluster;
before(async () => {
  cluster = await testCluster(SHARDS, 1);
});
after(async () => {
  await stopCluster(cluster);
});

const json = { 'content-type': 'application/json' };

async function create(h: Harness, body: unknown, headers: Record<string, string> = {}) {
  return h.app.inject({
    method: 'POST',
    url: '/api/v1/links',
    headers: { ...h.auth, ...json, ...headers },
    payload: JSON.stringify(body),
  });
}

/** Runs `n` jobs with at most `width` at once. */
async function pooled<T>(n: number, width: number, job: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await job(i);
      }
    }),
  );
  return out;
}

const store = (h: Harness) => h.deps.store as ShardedStore;

/** Hop on fresh databases of the cluster, its cache and click recording off unless asked: reads reach the store. */
async function hopOnCluster(env: Record<string, string> = {}, opts: { replicas?: boolean } = {}) {
  const dbs = await freshDatabases(cluster, opts);
  const h = await startHarness({
    HOP_DATABASE_URLS: dbs.urls,
    HOP_CACHE_SIZE: '0',
    HOP_CLICK_RECORDING: 'off',
    ...env,
  });
  return { dbs, h };
}

async function untilInRotation(h: Harness, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const t = store(h).topology();
    if (t.shards.every((s) => s.replicas.every((r) => r.inRotation))) return;
    if (Date.now() > deadline) throw new Error(`replicas not back in rotation: ${JSON.stringify(t)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('placement', () => {
  test('10,000 links created through the API spread evenly over the shards and all redirect', async () => {
    const { dbs, h } = await hopOnCluster();
    try {
      const n = 10_000;
      const made = await pooled(n, 64, async (i) => {
        const res = await create(h, { url: `https://spread.example/${i}` });
        assert.equal(res.statusCode, 201, res.body);
        return res.json() as { code: string; url: string };
      });
      const perShard = await Promise.all(
        [0, 1].map((s) =>
          withClient(dbs.url(primaryOf(cluster, s)), async (c) => {
            const r = await c.query<{ n: number; wrong: number }>(
              'SELECT count(*)::int AS n, count(*) FILTER (WHERE bucket <> ALL($1::smallint[]))::int AS wrong FROM links',
              [map.owners.flatMap((o, b) => (o === s ? [b] : []))],
            );
            return r.rows[0]!;
          }),
        ),
      );
      for (const s of perShard) {
        assert.equal(s.wrong, 0, 'every row sits on the shard that owns its bucket');
        assert.ok(
          Math.abs(s.n - n / SHARDS) <= (0.1 * n) / SHARDS,
          `shard counts ${perShard.map((x) => x.n)}`,
        );
      }
      assert.equal(perShard[0]!.n + perShard[1]!.n, n);
      // Within the primary-fallback bound, so a replica a moment behind never makes this flaky.
      await pooled(n, 16, async (i) => {
        const res = await h.app.inject({ url: `/${made[i]!.code}` });
        assert.equal(res.statusCode, 302);
        assert.equal(res.headers.location, made[i]!.url);
      });
    } finally {
      await h.close();
    }
  });

  test('a reordered HOP_DATABASE_URLS is refused at boot instead of misrouting codes', async () => {
    const dbs = await freshDatabases(cluster, { replicas: false });
    const h = await startHarness({ HOP_DATABASE_URLS: dbs.urls });
    await h.close();
    const swapped = dbs.urls.split(';').reverse().join(';');
    await assert.rejects(
      startHarness({ HOP_DATABASE_URLS: swapped }),
      /does not match the databases it names/,
    );
  });

  test('runners racing on a new database (a fleet booting at once) each succeed, and apply it once', async () => {
    const dbs = await freshDatabases(cluster, { replicas: false });
    const url = dbs.urls.split(';')[0]!;
    const opts = { size: 2, maxWaiting: 10, acquireTimeoutMs: 10_000, statementTimeoutMs: 30_000 };
    const pools = Array.from({ length: 6 }, (_, i) => new PgPool(`racer-${i}`, url, opts));
    try {
      const reports = await Promise.all(pools.map((p) => migrate(p)));
      const all = migrationNames();
      assert.deepEqual(
        reports.flatMap((r) => r.applied).sort(),
        [...all].sort(),
        'each migration applied by one',
      );
      for (const r of reports) assert.equal(r.applied.length + r.alreadyApplied.length, all.length);
    } finally {
      await Promise.all(pools.map((p) => p.close()));
    }
  });

  test('processes claiming a new cluster at once (a fleet booting together) all succeed, on one identity and one map', async () => {
    const dbs = await freshDatabases(cluster, { replicas: false });
    const urls = dbs.urls.split(';');
    const opts = { size: 2, maxWaiting: 10, acquireTimeoutMs: 10_000, statementTimeoutMs: 30_000 };
    // Each racer with pools of its own, as separate processes have.
    const racers = Array.from({ length: 8 }, (_, r) =>
      urls.map((u, i) => new PgPool(`racer-${r}-${i}`, u, opts)),
    );
    try {
      await Promise.all(racers[0]!.map((p) => migrate(p)));
      const identities = await Promise.all(racers.map((pools) => verifyShardIdentities(pools)));
      assert.equal(new Set(identities).size, 1);
      // Another process's first write of the map, held uncommitted: the racers see no map, write
      // version 1 too and wait on its key until that commits.
      const held = new pg.Client({ connectionString: urls[0] });
      await held.connect();
      let claimed: PromiseSettledResult<unknown>[];
      try {
        const first = initialShardMap(urls.length);
        await held.query('BEGIN');
        await held.query(
          'INSERT INTO shard_map (version, shard_count, owners) VALUES ($1, $2, $3::smallint[])',
          [first.version, first.shardCount, first.owners],
        );
        const racing = Promise.allSettled(racers.map((pools) => loadShardMap(pools)));
        await new Promise((r) => setTimeout(r, 300));
        await held.query('COMMIT');
        claimed = await racing;
      } finally {
        await held.end();
      }
      assert.deepEqual(
        claimed.flatMap((c) => (c.status === 'rejected' ? [String(c.reason)] : [])),
        [],
      );
      for (const pool of racers[0]!) {
        const maps = await pool.query<{ n: string }>('SELECT count(*)::text AS n FROM shard_map');
        const ids = await pool.query<{ n: string }>('SELECT count(*)::text AS n FROM shard_identity');
        assert.deepEqual([maps.rows[0]?.n, ids.rows[0]?.n], ['1', '1']);
      }
    } finally {
      await Promise.all(racers.flat().map((p) => p.close()));
    }
  });

  test('hop migrate applies the schema to every shard and reports each; running it again changes nothing', async () => {
    const dbs = await freshDatabases(cluster, { replicas: false });
    const first = await runHop(['migrate'], { HOP_DATABASE_URLS: dbs.urls });
    assert.equal(first.code, 0, first.stderr);
    const all = migrationNames();
    for (const shard of [0, 1])
      assert.ok(first.stdout.includes(`shard ${shard}: applied ${all.join(', ')}`), first.stdout);
    const again = await runHop(['migrate'], { HOP_DATABASE_URLS: dbs.urls });
    assert.equal(again.code, 0, again.stderr);
    for (const shard of [0, 1])
      assert.match(
        again.stdout,
        new RegExp(`shard ${shard}: applied nothing new; already applied: ${all.length}\\b`),
      );
  });
});

describe('two Hop processes on one cluster', () => {
  test('maxClicks, alias uniqueness and idempotency keys stay exact', async () => {
    const dbs = await freshDatabases(cluster);
    const env = { HOP_DATABASE_URLS: dbs.urls, HOP_INITIAL_API_KEY: TEST_KEY, HOP_RATE_LIMITS: 'off' };
    const a = await startHop(env);
    const b = await startHop(env);
    const hops = [a, b];
    const auth = { authorization: `Bearer ${TEST_KEY}`, ...json };
    try {
      const post = (i: number, body: unknown, headers: Record<string, string> = {}) =>
        fetch(`${hops[i % 2]!.url}/api/v1/links`, {
          method: 'POST',
          headers: { ...auth, ...headers },
          body: JSON.stringify(body),
        });

      const limited = (await (await post(0, { url: 'https://limited.example/', maxClicks: 30 })).json()) as {
        code: string;
      };
      const statuses = await Promise.all(
        Array.from({ length: 120 }, (_, i) =>
          fetch(`${hops[i % 2]!.url}/${limited.code}`, { redirect: 'manual' }).then((r) => r.status),
        ),
      );
      assert.equal(statuses.filter((s) => s === 302).length, 30);
      assert.equal(statuses.filter((s) => s === 410).length, 90);

      const aliasTries = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          post(i, { url: `https://twin.example/${i}`, alias: 'twin-proc' }),
        ),
      );
      assert.equal(aliasTries.filter((r) => r.status === 201).length, 1);
      assert.equal(aliasTries.filter((r) => r.status === 409).length, 39);

      const keyed = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          post(i, { url: 'https://once.example/' }, { 'idempotency-key': 'same-key-1' }).then(async (r) => ({
            status: r.status,
            code: ((await r.json()) as { code: string }).code,
          })),
        ),
      );
      assert.ok(keyed.every((k) => k.status === 201));
      assert.equal(new Set(keyed.map((k) => k.code)).size, 1, 'every retry gets the first answer');
      const rows = await Promise.all(
        [0, 1].map((s) =>
          withClient(dbs.url(primaryOf(cluster, s)), (c) =>
            c.query("SELECT code FROM links WHERE url = 'https://once.example/'"),
          ),
        ),
      );
      assert.equal(rows[0]!.rows.length + rows[1]!.rows.length, 1, 'one link was created');
    } finally {
      await Promise.all(hops.map((h) => h.stop()));
    }
  });
});

describe('read replicas', () => {
  test('metrics and the system figures show every pool, replica and shard', async () => {
    const dbs = await freshDatabases(cluster);
    const h = await startHarness({ HOP_DATABASE_URLS: dbs.urls });
    try {
      await untilInRotation(h);
      const sys = (await h.app.inject({ url: '/api/v1/system', headers: h.auth })).json();
      assert.equal(sys.store.kind, 'postgres');
      assert.deepEqual(
        sys.pool.servers.map((s: { name: string }) => s.name),
        ['shard0-primary', 'shard0-replica1', 'shard1-primary', 'shard1-replica1'],
      );
      assert.deepEqual(
        sys.replicas.servers.map((s: { inRotation: boolean }) => s.inRotation),
        [true, true],
      );
      assert.deepEqual(sys.shards, {
        inUse: true,
        mapVersion: 1,
        shards: [
          { shard: 0, buckets: 512, primaryUp: true },
          { shard: 1, buckets: 512, primaryUp: true },
        ],
      });
      const metrics = (await h.app.inject({ url: '/metrics' })).body;
      assert.match(metrics, /hop_db_pool_connections\{server="shard1-replica1",state="max"\} \d+/);
      assert.match(metrics, /hop_db_replica_in_rotation\{server="shard0-replica1"\} 1/);
      assert.match(metrics, /hop_db_replica_lag_seconds\{server="shard0-replica1"\} [\d.]+/);
      assert.match(metrics, /hop_db_pool_acquire_seconds_count\{server="shard0-primary"\} [1-9]/);
    } finally {
      await h.close();
    }
  });

  test('with replication delayed, a new link never 404s and the consistency token reads its own writes', async () => {
    const { dbs, h } = await hopOnCluster({
      // Keep the delayed replicas in rotation: this test is about reads that go to them.
      HOP_REPLICA_MAX_LAG_MS: '600000',
      HOP_REPLICA_MAX_LAG_BYTES: '1000000000',
    });
    const replicas = [...replicasOf(cluster, 0), ...replicasOf(cluster, 1)];
    try {
      // A link every replica has, to be edited while replication is held back.
      const edited = (await create(h, { url: 'https://edited.example/', title: 'before' })).json() as {
        code: string;
      };
      await untilInRotation(h);
      for (const r of replicasOf(cluster, shardOf(edited.code))) {
        const deadline = Date.now() + 10_000;
        for (let seen = false; !seen; await new Promise((res) => setTimeout(res, 50))) {
          assert.ok(Date.now() < deadline, 'the replica never received the link');
          seen = await withClient(
            dbs.url(r),
            async (c) =>
              (await c.query('SELECT 1 FROM links WHERE code = $1', [edited.code])).rows.length > 0,
          );
        }
      }
      for (const r of replicas) await setApplyDelay(cluster, r.name, 3_000);
      const made: { code: string; url: string; token: string }[] = [];
      for (let i = 0; i < 20; i++) {
        const res = await create(h, { url: `https://fresh.example/${i}`, title: 'before' });
        assert.equal(res.statusCode, 201);
        const token = String(res.headers[CONSISTENCY_HEADER]);
        assert.match(String(res.headers['set-cookie']), /hop_ct=/);
        made.push({ ...(res.json() as { code: string; url: string }), token });
        const redirect = await h.app.inject({ url: `/${made[i]!.code}` });
        assert.equal(redirect.statusCode, 302, 'the replica has not replayed it; the primary answers');
        assert.equal(redirect.headers.location, `https://fresh.example/${i}`);
      }
      const metrics = (await h.app.inject({ url: '/metrics' })).body;
      assert.match(metrics, /hop_db_primary_fallbacks_total\{result="found"\} (2\d|[3-9]\d)/);

      // An edit, then reads with and without the token while the replica is still 3 s behind.
      const { code } = edited;
      const patched = await h.app.inject({
        method: 'PATCH',
        url: `/api/v1/links/${code}`,
        headers: { ...h.auth, ...json },
        payload: JSON.stringify({ title: 'after' }),
      });
      assert.equal(patched.statusCode, 200);
      const token = String(patched.headers[CONSISTENCY_HEADER]);
      const withToken = await h.app.inject({
        url: `/api/v1/links/${code}`,
        headers: { ...h.auth, [CONSISTENCY_HEADER]: token },
      });
      assert.equal(withToken.json().title, 'after');
      const withCookie = await h.app.inject({
        url: `/api/v1/links/${code}`,
        headers: { ...h.auth, cookie: `hop_ct=${token}` },
      });
      assert.equal(withCookie.json().title, 'after');
      const withoutToken = await h.app.inject({ url: `/api/v1/links/${code}`, headers: h.auth });
      assert.equal(withoutToken.json().title, 'before', 'without the token a lagging replica may answer');
    } finally {
      for (const r of replicas) await setApplyDelay(cluster, r.name, 0);
      await h.close();
    }
  });

  test('killing a replica mid-load costs no redirect; it rejoins when restarted', async () => {
    const { h } = await hopOnCluster();
    try {
      const codes = await pooled(
        40,
        8,
        async (i) => (await create(h, { url: `https://load.example/${i}` })).json().code as string,
      );
      await untilInRotation(h);
      const victim = replicasOf(cluster, 0)[0]!;
      const statuses = new Map<number, number>();
      let sent = 0;
      const until = Date.now() + 3_000;
      const killer = (async () => {
        await new Promise((r) => setTimeout(r, 1_000));
        await killServer(cluster, victim.name);
      })();
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (Date.now() < until) {
            const res = await h.app.inject({ url: `/${codes[sent++ % codes.length]}` });
            statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
          }
        }),
      );
      await killer;
      assert.deepEqual([...statuses.keys()], [302], `answers: ${JSON.stringify([...statuses])}`);
      assert.ok(sent > 100, `only ${sent} redirects were sent`);
      const out = store(h).topology().shards[0]!.replicas[0]!;
      assert.equal(out.inRotation, false);
      await startServer(cluster, victim.name);
      await untilInRotation(h);
    } finally {
      await h.close();
    }
  });

  test("a shard's primary stopped: its creates fail fast with 503, its links still redirect, the other shard is unaffected", async () => {
    const { h } = await hopOnCluster();
    const down = primaryOf(cluster, 1);
    try {
      const [on1, later1] = aliasesOn(1, 'down', 2) as [string, string];
      const [on0, later0] = aliasesOn(0, 'up', 2) as [string, string];
      assert.equal((await create(h, { url: 'https://one.example/', alias: on1 })).statusCode, 201);
      assert.equal((await create(h, { url: 'https://zero.example/', alias: on0 })).statusCode, 201);
      await untilInRotation(h);
      await stopServer(cluster, down.name, 'fast');

      const started = performance.now();
      const refused = await create(h, { url: 'https://one.example/later', alias: later1 });
      const ms = performance.now() - started;
      assert.equal(refused.statusCode, 503, refused.body);
      assert.equal(refused.json().code, 'unavailable');
      assert.equal(refused.headers['retry-after'], '1');
      assert.ok(ms < 1_000, `took ${ms} ms`);

      for (let i = 0; i < 20; i++) {
        const r1 = await h.app.inject({ url: `/${on1}` });
        assert.equal(r1.statusCode, 302, 'served by the stopped shard’s replica');
        assert.equal((await h.app.inject({ url: `/${on0}` })).statusCode, 302);
      }
      assert.equal((await create(h, { url: 'https://zero.example/later', alias: later0 })).statusCode, 201);
      assert.equal((await h.app.inject({ url: `/${later0}` })).statusCode, 302);
      assert.equal((await h.app.inject({ url: '/readyz' })).statusCode, 200, 'reads still work everywhere');

      await startServer(cluster, down.name);
      const deadline = Date.now() + 15_000;
      let back = await create(h, { url: 'https://one.example/later', alias: later1 });
      while (back.statusCode === 503 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        back = await create(h, { url: 'https://one.example/later', alias: later1 });
      }
      assert.equal(back.statusCode, 201, 'creates resume once the primary is back');
    } finally {
      await startServer(cluster, down.name).catch(() => {});
      await h.close();
    }
  });
});

describe('pooling and back-pressure', () => {
  test('an exhausted pool answers 503 with Retry-After within the acquire timeout and recovers by itself', async () => {
    const { dbs, h } = await hopOnCluster(
      {
        HOP_PG_POOL_SIZE: '2',
        HOP_PG_POOL_QUEUE: '2',
        HOP_PG_ACQUIRE_TIMEOUT_MS: '300',
      },
      { replicas: false },
    );
    // Distinct codes: lookups of one code share a single query, which would not fill the pool.
    const codes = aliasesOn(0, 'slow', 13);
    for (const code of codes.slice(0, 2)) {
      assert.equal((await create(h, { url: 'https://slow.example/', alias: code })).statusCode, 201);
    }
    const locker = await import('pg').then(
      (pg) => new pg.default.Client({ connectionString: dbs.url(primaryOf(cluster, 0)) }),
    );
    await locker.connect();
    try {
      // Every lookup on shard 0 now waits for this lock: a stand-in for slow queries.
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE links IN ACCESS EXCLUSIVE MODE');
      const stuck = codes.slice(0, 2).map((code) => h.app.inject({ url: `/${code}` }));
      await new Promise((r) => setTimeout(r, 200));
      const timed = await Promise.all(
        codes.slice(2, 12).map(async (code) => {
          const t = performance.now();
          const res = await h.app.inject({ url: `/${code}` });
          return { res, ms: performance.now() - t };
        }),
      );
      for (const { res, ms } of timed) {
        assert.equal(res.statusCode, 503);
        assert.equal(res.json().code, 'unavailable');
        assert.equal(res.headers['retry-after'], '1');
        assert.ok(ms < 300 + 250, `refused after ${ms} ms`);
      }
      const metrics = (await h.app.inject({ url: '/metrics' })).body;
      assert.match(metrics, /hop_db_pool_refused_total\{server="shard0-primary",reason="queue_full"\} [1-9]/);
      assert.match(metrics, /hop_db_pool_refused_total\{server="shard0-primary",reason="timeout"\} [1-9]/);
      await locker.query('ROLLBACK');
      for (const r of await Promise.all(stuck)) assert.equal(r.statusCode, 302);
      assert.equal((await h.app.inject({ url: `/${codes[0]}` })).statusCode, 302, 'recovered');
      assert.equal((await h.app.inject({ url: `/${codes[12]}` })).statusCode, 404, 'recovered');
    } finally {
      await locker.end();
      await h.close();
    }
  });
});
