// "A write never lies" (DESIGN §12) on a real primary with a streaming replica that this file
// starts: a create is answered 201 only once its commit is confirmed (on the synchronous standby
// too, when one is configured); a commit whose outcome is unknown answers 503 write_in_doubt and
// the retry with the same Idempotency-Key returns the one true outcome; a dead, stalled or
// read-only primary answers 503 with Retry-After, within milliseconds once its breaker is open.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { killServer, startServer, stopServer } from '../../scripts/cluster/pg-cluster.ts';
import { HopError } from '../../src/domain/errors.ts';
import { PgPool } from '../../src/storage/postgres/pg-pool.ts';
import { type Harness, startHarness } from '../support/harness.ts';
import {
  type Cluster,
  type ClusterServer,
  freshDatabases,
  primaryOf,
  replicasOf,
  stopCluster,
  testCluster,
  withClient,
} from '../support/pg-cluster.ts';

let cluster: Cluster;
let primary: ClusterServer;
let replica: ClusterServer;
before(async () => {
  cluster = await testCluster(1, 1);
  primary = primaryOf(cluster, 0);
  replica = replicasOf(cluster, 0)[0]!;
});
after(async () => {
  await stopCluster(cluster);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Hop on a fresh database of the primary alone; nothing writes in the background. */
async function hop(env: Record<string, string>) {
  const dbs = await freshDatabases(cluster, { replicas: false });
  const h = await startHarness({
    HOP_DATABASE_URLS: dbs.urls,
    HOP_CACHE_SIZE: '0',
    HOP_CLICK_RECORDING: 'off',
    ...env,
  });
  const sql = <T extends Record<string, unknown>>(text: string, params: unknown[] = []) =>
    withClient(dbs.url(primary), async (c) => (await c.query<T>(text, params)).rows);
  return { h, dbs, sql };
}

function create(h: Harness, body: object, key?: string) {
  return h.app.inject({
    method: 'POST',
    url: '/api/v1/links',
    headers: {
      ...h.auth,
      'content-type': 'application/json',
      ...(key === undefined ? {} : { 'idempotency-key': key }),
    },
    payload: JSON.stringify(body),
  });
}

async function timed<T>(fn: () => Promise<T>): Promise<{ out: T; ms: number }> {
  const t = performance.now();
  const out = await fn();
  return { out, ms: performance.now() - t };
}

/** The primary's synchronous_standby_names ('' turns synchronous replication off), reloaded. */
async function syncStandbys(names: string): Promise<void> {
  await withClient(primary.url, async (c) => {
    await c.query(
      names === ''
        ? 'ALTER SYSTEM RESET synchronous_standby_names'
        : `ALTER SYSTEM SET synchronous_standby_names = '${names}'`,
    );
    await c.query('SELECT pg_reload_conf()');
  });
  const deadline = Date.now() + 10_000;
  for (;;) {
    const [row] = await withClient(
      primary.url,
      async (c) => (await c.query('SHOW synchronous_standby_names')).rows,
    );
    const applied = row?.synchronous_standby_names === names;
    // With the standby named and up, wait until the primary counts it as synchronous.
    const ready =
      applied &&
      (names !== '*' ||
        (
          await withClient(primary.url, (c) =>
            c.query("SELECT 1 FROM pg_stat_replication WHERE sync_state = 'sync'"),
          )
        ).rows.length > 0);
    if (ready) return;
    if (Date.now() > deadline) throw new Error(`synchronous_standby_names did not become '${names}'`);
    await sleep(50);
  }
}

/** Hop's backends on the database that wait for the synchronous standby. */
async function syncWaiters(db: string): Promise<number[]> {
  return withClient(primary.url, async (c) => {
    const res = await c.query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = 'hop' AND wait_event = 'SyncRep'",
      [db],
    );
    return res.rows.map((r) => r.pid);
  });
}

const dbName = (url: string) => new URL(url).pathname.slice(1);

function assertInDoubt(res: {
  statusCode: number;
  headers: Record<string, unknown>;
  json(): unknown;
  body: string;
}) {
  assert.equal(res.statusCode, 503, res.body);
  const doc = res.json() as { code: string; detail: string };
  assert.equal(doc.code, 'write_in_doubt');
  assert.match(doc.detail, /same Idempotency-Key/);
  assert.equal(res.headers['retry-after'], '1');
}

async function until<T>(
  what: string,
  boundMs: number,
  fn: () => Promise<T | null>,
): Promise<{ out: T; ms: number }> {
  const t = performance.now();
  for (;;) {
    const out = await fn();
    if (out !== null) return { out, ms: performance.now() - t };
    if (performance.now() - t > boundMs) throw new Error(`${what}: not within ${boundMs} ms`);
    await sleep(50);
  }
}

describe('a commit whose outcome is unknown is never acknowledged', () => {
  test('a create without a key (one autocommit statement) waiting for the standby answers write_in_doubt, not 201', async () => {
    const { h, dbs, sql } = await hop({ HOP_PG_STATEMENT_TIMEOUT_MS: '300' });
    const url = 'https://doubt.example/autocommit';
    try {
      await syncStandbys('nobody');
      const { out, ms } = await timed(() => create(h, { url }));
      assertInDoubt(out);
      assert.ok(ms < 300 + 1_000 + 1_000, `answered after ${ms} ms`);
      assert.equal((await syncWaiters(dbName(dbs.url(primary)))).length, 1, 'its commit still waits');
      await syncStandbys('');
      // In doubt meant exactly that: once the standby question is settled, the link is there.
      await until('the commit to finish', 5_000, async () =>
        (await sql('SELECT 1 FROM links WHERE url = $1', [url])).length === 1 ? true : null,
      );
    } finally {
      await syncStandbys('');
      await h.close();
    }
  });

  test('with the synchronous standby stopped, a create answers write_in_doubt (never 201) and its retry returns the one link', async () => {
    // A statement timeout far shorter than the wait: it must not cancel the commit's wait.
    const { h, dbs, sql } = await hop({ HOP_PG_STATEMENT_TIMEOUT_MS: '300' });
    const db = dbName(dbs.url(primary));
    const url = 'https://doubt.example/standby-away';
    try {
      await syncStandbys('*');
      await stopServer(cluster, replica.name, 'fast');

      const first = await timed(() => create(h, { url }, 'key-away'));
      assertInDoubt(first.out);
      assert.ok(first.ms < 300 + 1_000 + 1_000, `answered after ${first.ms} ms`);
      // The commit was not cancelled (that would make a change the standby lacks visible): it waits.
      assert.equal((await syncWaiters(db)).length, 1, 'the commit still waits for the standby');
      assert.equal((await sql('SELECT 1 FROM links WHERE url = $1', [url])).length, 0);

      // Other changes queue behind it for the outbox's order lock until their statement timeout:
      // rolled back, so a plain 503 unavailable, never a 201.
      const behind = await create(h, { url: `${url}/behind` });
      assert.equal(behind.statusCode, 503, behind.body);
      assert.equal((behind.json() as { code: string }).code, 'unavailable');

      const early = await create(h, { url }, 'key-away');
      assert.equal(early.statusCode, 503, 'a retry before the standby is back is not acknowledged either');

      await startServer(cluster, replica.name);
      const { out: retried } = await until('the retry to succeed', 10_000, async () => {
        const r = await create(h, { url }, 'key-away');
        return r.statusCode === 503 ? null : r;
      });
      assert.equal(retried.statusCode, 201, retried.body);
      assert.equal(retried.headers['idempotent-replayed'], 'true', 'the first create committed: its answer');
      const rows = await sql<{ code: string }>('SELECT code FROM links WHERE url = $1', [url]);
      assert.deepEqual(
        rows.map((r) => r.code),
        [(retried.json() as { code: string }).code],
        'stored once',
      );
      assert.equal((await sql("SELECT 1 FROM outbox WHERE payload->>'url' = $1", [url])).length, 1);
    } finally {
      await startServer(cluster, replica.name);
      await syncStandbys('');
      await h.close();
    }
  });

  test('a connection terminated in a commit’s synchronous wait answers write_in_doubt; a replay waits for the standby too', async () => {
    const { h, dbs, sql } = await hop({ HOP_PG_STATEMENT_TIMEOUT_MS: '500' });
    const db = dbName(dbs.url(primary));
    const url = 'https://doubt.example/terminated';
    try {
      // A standby name nobody has: every commit waits.
      await syncStandbys('nobody');
      const pending = timed(() => create(h, { url }, 'key-terminated'));
      const { out: pids } = await until('the commit to wait', 5_000, async () => {
        const p = await syncWaiters(db);
        return p.length > 0 ? p : null;
      });
      await withClient(primary.url, (c) => c.query('SELECT pg_terminate_backend($1)', [pids[0]]));
      const first = await pending;
      assertInDoubt(first.out);
      assert.match((first.out.json() as { detail: string }).detail, /synchronous standby|connection .* lost/);
      // PostgreSQL had committed it locally and said so in a warning: a 201 would have been a lie.
      assert.equal((await sql('SELECT 1 FROM links WHERE url = $1', [url])).length, 1);

      // Its stored answer is not repeated before it is durable: replaying waits for the standby.
      assertInDoubt(await create(h, { url }, 'key-terminated'));

      await syncStandbys('');
      const { out: retried } = await until('the replay', 10_000, async () => {
        const r = await create(h, { url }, 'key-terminated');
        return r.statusCode === 503 ? null : r;
      });
      assert.equal(retried.statusCode, 201, retried.body);
      assert.equal(retried.headers['idempotent-replayed'], 'true');
      assert.equal((await sql('SELECT 1 FROM links WHERE url = $1', [url])).length, 1, 'stored once');
    } finally {
      await syncStandbys('');
      await h.close();
    }
  });
});

/** The postmaster of `s` and all its children, found through /proc. */
function serverFamily(s: ClusterServer): number[] {
  const title = `hop-${cluster.id}-${s.name}`;
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes(`${title}:`) || cmdline.includes(`${s.dataDir}\0`)) out.push(Number(entry));
    } catch {
      // Gone while we looked.
    }
  }
  return out;
}

async function breakerState(h: Harness): Promise<string | undefined> {
  const body = (await h.app.inject({ url: '/metrics' })).body;
  return /hop_circuit_breaker_state\{breaker="postgres_shard0-primary"\} (\d)/.exec(body)?.[1];
}

describe('a primary that fails costs milliseconds once its breaker is open', () => {
  test('a killed primary: 503 with Retry-After at once, the breaker opens, writes resume within its bound after a restart', async () => {
    const { h } = await hop({ HOP_PG_ACQUIRE_TIMEOUT_MS: '3000', HOP_PG_STATEMENT_TIMEOUT_MS: '1000' });
    try {
      assert.equal((await create(h, { url: 'https://killed.example/before' })).statusCode, 201);
      await killServer(cluster, primary.name, 'SIGKILL');
      for (let i = 0; i < 10; i++) {
        const { out: res, ms } = await timed(() => create(h, { url: `https://killed.example/${i}` }));
        assert.equal(res.statusCode, 503, res.body);
        assert.equal((res.json() as { code: string }).code, 'unavailable');
        assert.match(String(res.headers['retry-after']), /^[1-9]\d*$/);
        assert.ok(ms < 250, `request ${i} took ${ms} ms (the acquire timeout is 3 s)`);
      }
      assert.equal(await breakerState(h), '2', 'open');
      const metrics = (await h.app.inject({ url: '/metrics' })).body;
      assert.match(
        metrics,
        /hop_db_pool_refused_total\{server="shard0-primary",reason="breaker_open"\} [1-9]/,
      );

      await startServer(cluster, primary.name);
      const { ms } = await until('a create after the restart', 8_000, async () => {
        const r = await create(h, { url: 'https://killed.example/after' });
        return r.statusCode === 201 ? r : null;
      });
      assert.ok(
        ms < 5_000 + 1_000,
        `writes resumed ${ms} ms after the restart (cool-downs are capped at 5 s)`,
      );
      assert.equal(await breakerState(h), '0', 'closed');
    } finally {
      await startServer(cluster, primary.name);
      await h.close();
    }
  });

  test('a primary that stops answering costs the timeout only until the breaker opens', async () => {
    const { h } = await hop({ HOP_PG_ACQUIRE_TIMEOUT_MS: '500', HOP_PG_STATEMENT_TIMEOUT_MS: '200' });
    let family: number[] = [];
    try {
      assert.equal((await create(h, { url: 'https://stalled.example/before' })).statusCode, 201);
      // Every process of the server, Hop's backends included: nothing of it answers any more.
      family = serverFamily(primary);
      assert.ok(family.length > 1, 'the postmaster and its children');
      for (const pid of family) process.kill(pid, 'SIGSTOP');
      // The first failures each wait out a bound (a commit unanswered, a connect timeout)...
      const { out: slow } = await until('the breaker to open', 10_000, async () => {
        const r = await create(h, { url: 'https://stalled.example/slow' });
        assert.equal(r.statusCode, 503, r.body);
        return (await breakerState(h)) === '2' ? r : null;
      });
      assert.ok(slow.headers['retry-after'] !== undefined);
      // ...then the breaker answers at once; its probes run in the background, never in a request.
      for (let i = 0; i < 10; i++) {
        const { out: res, ms } = await timed(() => create(h, { url: `https://stalled.example/${i}` }));
        assert.equal(res.statusCode, 503, res.body);
        assert.equal((res.json() as { code: string }).code, 'unavailable');
        assert.match(String(res.headers['retry-after']), /^[1-9]\d*$/);
        assert.ok(ms < 100, `request ${i} took ${ms} ms (the acquire timeout is 500 ms)`);
        await sleep(100);
      }
      for (const pid of family) process.kill(pid, 'SIGCONT');
      await until('a create after the primary answers again', 8_000, async () => {
        const r = await create(h, { url: 'https://stalled.example/after' });
        return r.statusCode === 201 ? r : null;
      });
    } finally {
      for (const pid of family) {
        try {
          process.kill(pid, 'SIGCONT');
        } catch {
          // Already gone.
        }
      }
      await h.close();
    }
  });
});

describe('a server that cannot take writes answers 503 unavailable', () => {
  test('a read-only primary (25006): creates answer 503 with Retry-After, and work again once it is writable', async () => {
    const { h } = await hop({});
    const setReadOnly = (on: boolean) =>
      withClient(primary.url, async (c) => {
        await c.query(
          on
            ? 'ALTER SYSTEM SET default_transaction_read_only = on'
            : 'ALTER SYSTEM RESET default_transaction_read_only',
        );
        await c.query('SELECT pg_reload_conf()');
      });
    try {
      await setReadOnly(true);
      await sleep(200);
      for (const key of [undefined, 'key-read-only']) {
        const res = await create(h, { url: 'https://read-only.example/' }, key);
        assert.equal(res.statusCode, 503, res.body);
        assert.equal((res.json() as { code: string }).code, 'unavailable');
        assert.equal(res.headers['retry-after'] !== undefined, true);
      }
      await setReadOnly(false);
      await until('a create once writable', 8_000, async () => {
        const r = await create(h, { url: 'https://read-only.example/' }, 'key-read-only');
        return r.statusCode === 201 ? r : null;
      });
    } finally {
      await setReadOnly(false);
      await h.close();
    }
  });

  test('a write sent to a standby is refused as unavailable, not as a bug', async () => {
    const dbs = await freshDatabases(cluster);
    const opts = { size: 2, maxWaiting: 2, acquireTimeoutMs: 1_000, statementTimeoutMs: 1_000 };
    const standby = new PgPool('standby', dbs.url(replica), opts);
    try {
      for (const write of [
        () => standby.query('CREATE TABLE t (id int)'),
        () => standby.transaction((tx) => tx.query('SELECT txid_current()')),
      ]) {
        await assert.rejects(write(), (err: unknown) => {
          assert.ok(err instanceof HopError, String(err));
          assert.equal(err.code, 'unavailable');
          assert.match(err.detail, /read-only/);
          assert.equal(err.headers['retry-after'], '1');
          return true;
        });
      }
    } finally {
      await standby.close();
    }
  });
});

describe('a process paused inside a transaction holds the others up for a bounded time', () => {
  // A paused process is played by a body that sleeps: the server cannot tell the difference. It
  // ends the session after idleInTransactionTimeoutMs; the lock the body held (as a create holds
  // the change stream's commit-order lock to COMMIT) is released, and the body runs again.
  const opts = { size: 2, maxWaiting: 10, acquireTimeoutMs: 2_000, statementTimeoutMs: 5_000 };
  const PAUSE_MS = 3_000;

  for (const where of ['between two statements', 'between its last statement and COMMIT'] as const) {
    test(`paused ${where}: the others wait about the bound, not the pause; it runs again and applies once`, async () => {
      const dbs = await freshDatabases(cluster, { replicas: false });
      const url = dbs.url(primary);
      const paused = new PgPool('paused', url, { ...opts, idleInTransactionTimeoutMs: 1_000 });
      const other = new PgPool('other', url, opts);
      try {
        await other.exec('CREATE TABLE held (id int PRIMARY KEY, run int NOT NULL)');
        let runs = 0;
        const first = paused.transaction(async (tx) => {
          const run = ++runs;
          await tx.query('SELECT pg_advisory_xact_lock(42)');
          if (run === 1 && where === 'between two statements') await sleep(PAUSE_MS);
          await tx.query('INSERT INTO held VALUES (1, $1)', [run]);
          if (run === 1 && where !== 'between two statements') await sleep(PAUSE_MS);
          return run;
        });
        await sleep(200);
        const waited = await timed(() =>
          other.transaction((tx) => tx.query('SELECT pg_advisory_xact_lock(42)')),
        );
        // Without the bound the other would wait out the whole pause (about 2.8 s).
        assert.ok(waited.ms < 2_000, `the other waited ${Math.round(waited.ms)} ms for the lock`);
        assert.equal(await first, 2, 'the body ran again once');
        const rows = (await other.query<{ id: number; run: number }>('SELECT id, run FROM held')).rows;
        assert.deepEqual(rows, [{ id: 1, run: 2 }], 'only the second run applied');
        assert.equal(paused.breakerState, 'closed', 'a session ended for idling is not a server failure');
      } finally {
        await paused.close();
        await other.close();
      }
    });
  }

  test('a transaction ended for idling on its second run too answers 503 unavailable, saying why', async () => {
    const dbs = await freshDatabases(cluster, { replicas: false });
    const paused = new PgPool('paused', dbs.url(primary), { ...opts, idleInTransactionTimeoutMs: 1_000 });
    try {
      let runs = 0;
      await assert.rejects(
        paused.transaction(async (tx) => {
          runs++;
          await tx.query('SELECT 1');
          await sleep(1_800);
          await tx.query('SELECT 2');
        }),
        (err: unknown) => {
          assert.ok(err instanceof HopError, String(err));
          assert.equal(err.code, 'unavailable');
          assert.match(err.detail, /sat idle longer than 1000 ms/);
          assert.equal(err.headers['retry-after'], '1');
          return true;
        },
      );
      assert.equal(runs, 2);
      assert.equal(paused.breakerState, 'closed');
    } finally {
      await paused.close();
    }
  });
});
