// `hop move-store` on real servers: an embedded data directory of 100,000 links with click history
// (some of it raw and unfolded, as a killed Hop leaves it) moved into a two-shard PostgreSQL cluster
// by the CLI, SIGKILLed part way and run again: the cluster then answers every link and every stats
// query as the embedded database does, and a further run writes nothing and duplicates nothing.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type EmbeddedSeed, SEED_DOMAIN, seedEmbeddedData } from '../../bench/lib/embedded-seed.ts';
import { loadConfig } from '../../src/config.ts';
import { ALL_LINKS, DAY_MS, HOUR_MS } from '../../src/domain/clicks.ts';
import { linkKey } from '../../src/domain/domains.ts';
import type { Link } from '../../src/domain/link.ts';
import { openEmbeddedStore } from '../../src/storage/embedded/open-embedded-store.ts';
import type { ClickStats, StatsQuery, Store } from '../../src/storage/ports.ts';
import { openPostgresStore } from '../../src/storage/postgres/open-postgres-store.ts';
import { PgPool } from '../../src/storage/postgres/pg-pool.ts';
import { migrate } from '../../src/storage/sql/migrate.ts';
import { runHopSources } from '../support/hop-cli.ts';
import {
  type Cluster,
  freshDatabases,
  primaryOf,
  stopCluster,
  type TestDatabases,
  testCluster,
  withClient,
} from '../support/pg-cluster.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const LINKS = 100_000;

let cluster: Cluster;
let dataDir: string;
let seed: EmbeddedSeed;
let dbs: TestDatabases;

before(async () => {
  [cluster, dataDir] = await Promise.all([testCluster(2, 0), mkdtemp(join(tmpdir(), 'hop-move-store-'))]);
  seed = await seedEmbeddedData(join(dataDir, 'data'), {
    links: LINKS,
    clickedLinks: 3_000,
    clicksPerLink: 8,
    deletes: 1_000,
    updates: 300,
  });
  dbs = await freshDatabases(cluster, { replicas: false });
});
after(async () => {
  await stopCluster(cluster);
  await rm(dataDir, { recursive: true, force: true });
});

const moveStore = (dir: string, urls: string, extra: string[] = []) =>
  runHopSources(['move-store', '--to', urls, ...extra], { HOP_DATA_DIR: dir });

/** Runs the CLI and SIGKILLs it once it reports `buckets` buckets copied; what it printed till then. */
function killedPartWay(
  dir: string,
  urls: string,
  buckets: number,
): Promise<{ lines: string[]; signal: string | null }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'move-store', '--to', urls], {
    cwd: ROOT,
    env: { ...process.env, HOP_DATA_DIR: dir, HOP_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  let rest = '';
  child.stdout.on('data', (chunk: Buffer) => {
    const parts = (rest + chunk.toString()).split('\n');
    rest = parts.pop() ?? '';
    for (const line of parts) {
      lines.push(line);
      const m = /^copy: (\d+)\/1024 buckets/.exec(line);
      if (m !== null && Number(m[1]) >= buckets) child.kill('SIGKILL');
    }
  });
  return new Promise((done) => child.on('exit', (_code, signal) => done({ lines, signal })));
}

async function clusterCount(sql: string): Promise<number> {
  let n = 0;
  for (let s = 0; s < 2; s++) {
    n += await withClient(dbs.url(primaryOf(cluster, s)), async (c) =>
      Number((await c.query<{ n: string }>(sql)).rows[0]?.n ?? 0),
    );
  }
  return n;
}

const clickRows = () =>
  clusterCount(
    'SELECT (SELECT count(*) FROM click_packs) + (SELECT count(*) FROM click_packs_daily) + (SELECT count(*) FROM click_visits) AS n',
  );

async function exportAll(store: Store): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const l of store.exportLinks({ includeDeleted: true }) as AsyncIterable<Link>)
    out.set(linkKey(l.domain, l.code), JSON.stringify(l));
  return out;
}

/** Ties may come in another order from several shards: compared as sorted lists (every entry is kept). */
function normalized(s: ClickStats): unknown {
  const order = (xs: readonly { clicks: number }[]) =>
    [...xs].sort((a, b) => b.clicks - a.clicks || (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
  return {
    series: s.series,
    breakdowns: Object.fromEntries(Object.entries(s.breakdowns).map(([k, v]) => [k, order(v)])),
    visitorRegisters: [...s.visitorRegisters].sort((a, b) => a.reg - b.reg),
    topLinks: order(s.topLinks),
  };
}

function statsQueries(keys: readonly string[]): StatsQuery[] {
  const window = { from: seed.now - 4 * DAY_MS, to: seed.now + HOUR_MS, top: 100_000 };
  const qs: StatsQuery[] = [];
  for (const code of keys) {
    qs.push({ code, ...window, interval: 'hour', includeBots: true });
    qs.push({ code, ...window, interval: 'day', includeBots: false });
  }
  for (const interval of ['hour', 'day'] as const) {
    qs.push({ code: ALL_LINKS, ...window, interval, includeBots: true });
    qs.push({ code: ALL_LINKS, ...window, interval, includeBots: false });
  }
  qs.push({ code: ALL_LINKS, domain: SEED_DOMAIN, ...window, interval: 'day', includeBots: true });
  qs.push({ code: ALL_LINKS, domain: '', ...window, interval: 'hour', includeBots: true });
  return qs;
}

async function statsOf(store: Store, qs: readonly StatsQuery[]): Promise<unknown[]> {
  const out: unknown[] = [];
  for (const q of qs) out.push(normalized(await store.clickStats(q)));
  return out;
}

describe('hop move-store', () => {
  test('100,000 embedded links with click history: killed part way, run again, verified identical; a further run changes nothing', async () => {
    const dir = join(dataDir, 'data');
    const killed = await killedPartWay(dir, dbs.urls, 300);
    assert.equal(killed.signal, 'SIGKILL', killed.lines.join('\n'));
    assert.ok(!killed.lines.some((l) => l.startsWith('Verified')), 'killed before it verified');
    // What a killed embedded Hop left: clicks raw and unfolded; an idempotency record from before 013.
    assert.match(
      killed.lines[0] ?? '',
      /, [1-9][\d,]* clicks folded, .* 1 idempotency records given their bucket/,
    );
    const partial = await clusterCount('SELECT count(*) AS n FROM links');
    assert.ok(partial > 0 && partial < LINKS, `a part of the links was copied (${partial})`);
    process.stdout.write(`# killed after: ${killed.lines.filter((l) => l.startsWith('copy:')).at(-1)}\n`);

    const again = await moveStore(dir, dbs.urls);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.match(again.stdout, /Finishing the unfinished move of/);
    assert.match(again.stdout, /^ {2}links +100,001 +100,001 +1024 buckets +0$/m);
    for (const table of [
      'click_packs',
      'click_packs_daily',
      'click_visits',
      'webhook_deliveries',
      'outbox (change stream)',
    ])
      assert.match(
        again.stdout,
        new RegExp(`^  ${table.replace(/[()]/g, '\\$&')} +[\\d,]+ +[\\d,]+ +\\S+( \\w+)? +0$`, 'm'),
      );
    assert.match(again.stdout, /^Moved 100,001 links in [\d.]+ s \([\d,]+ links\/s copying/m);
    assert.match(again.stdout, /^Verified: the cluster holds exactly what the embedded database holds/m);
    process.stdout.write(`# re-run: ${/^Moved .*$/m.exec(again.stdout)?.[0]}\n`);

    const config = loadConfig({}, { HOP_DATABASE_URLS: dbs.urls });
    const embedded = await openEmbeddedStore({ dataDir: dir, codeLength: 7 });
    const pg = await openPostgresStore({ ...config, databaseUrls: config.databaseUrls! });
    const sampled = seed.clicked.filter((_, i) => i % 60 === 0);
    const queries = statsQueries(sampled);
    let stats: unknown[];
    try {
      const [mine, theirs] = [await exportAll(embedded), await exportAll(pg)];
      assert.equal(mine.size, LINKS + 1); // the imports, and the link made with an Idempotency-Key
      assert.equal(theirs.size, mine.size);
      for (const [key, json] of mine) assert.equal(theirs.get(key), json, key);
      assert.equal([...mine.values()].filter((j) => JSON.parse(j).deletedAt !== null).length, 1_000);

      stats = await statsOf(pg, queries);
      assert.deepEqual(stats, await statsOf(embedded, queries));
      const all = (await pg.clickStats(queries.at(-6)!)).series.reduce((n, p) => n + p.clicks, 0);
      assert.equal(all, seed.clicks, 'every click, the raw unfolded ones too, counts on the cluster');

      const visits = { keys: sampled.slice(0, 5), from: seed.now - 4 * DAY_MS, to: seed.now + HOUR_MS };
      const page = { ...visits, includeBots: true, offset: 0, limit: 500 };
      assert.deepEqual(await pg.visits(page), await embedded.visits(page));

      const keyHash = createHash('sha256').update(seed.apiKey).digest('hex');
      assert.equal((await pg.findApiKeyByHash(keyHash))?.id, 'seedkey');
      assert.deepEqual(await pg.listWebhooks(), await embedded.listWebhooks());
      assert.deepEqual(
        await pg.listDeliveries('wh_seed', 1_000),
        await embedded.listDeliveries('wh_seed', 1_000),
      );
      const idem = await pg.getIdempotency('seedkey', 'seed-idempotency-key', new Date(seed.now - DAY_MS));
      assert.equal(idem?.outcome.kind, 'created');
      assert.deepEqual(await pg.listDomains(), await embedded.listDomains());
    } finally {
      await Promise.all([embedded.close(), pg.close()]);
    }

    // Changes moved are history: published, and new changes follow them.
    assert.equal(await clusterCount('SELECT count(*) AS n FROM outbox WHERE published_at IS NULL'), 0);
    const packs = await clickRows();
    const third = await moveStore(dir, dbs.urls);
    assert.equal(third.code, 0, third.stdout + third.stderr);
    assert.match(third.stdout, /Moving .* again \(last verified/);
    assert.match(third.stdout, /; 0 rows written by this run\./);
    assert.equal(await clickRows(), packs, 'no pack or visit row duplicated');
    const pg2 = await openPostgresStore({ ...config, databaseUrls: config.databaseUrls! });
    try {
      assert.deepEqual(await statsOf(pg2, queries), stats);
    } finally {
      await pg2.close();
    }
  });

  test('refuses a running Hop, a cluster holding other data, and another data directory into a moved cluster', async () => {
    const moved = dbs.urls;
    // A live process holds the data directory (this one: lockDataDir honours a lock of a live pid).
    const other = join(dataDir, 'other');
    await (await openEmbeddedStore({ dataDir: other, codeLength: 7 })).close();
    await writeFile(join(other, 'hop.lock'), String(process.pid));
    const held = await moveStore(other, moved);
    assert.equal(held.code, 1);
    assert.match(held.stderr, /in use by process \d+\. move-store copies a stopped embedded database/);
    await rm(join(other, 'hop.lock'));

    const refused = await moveStore(other, moved);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /The cluster was filled from another embedded database \(.*data, move/);

    // Compared without copying: the empty database is not what the cluster holds.
    const compared = await moveStore(other, moved, ['--verify-only']);
    assert.equal(compared.code, 1, compared.stdout + compared.stderr);
    assert.match(compared.stdout, /^ {2}links +0 +100,001 +1024 buckets +\d+ \(bucket/m);
    assert.match(compared.stdout, /^NOT identical/m);

    const foreign = await freshDatabases(cluster, { replicas: false });
    const shard0 = new PgPool('t', foreign.url(primaryOf(cluster, 0)), {
      size: 1,
      maxWaiting: 1,
      acquireTimeoutMs: 5_000,
      statementTimeoutMs: 30_000,
    });
    try {
      await migrate(shard0);
      await shard0.query(
        "INSERT INTO api_keys (id, name, prefix, key_hash, created_at) VALUES ('k', 'k', 'p', 'h', now())",
      );
    } finally {
      await shard0.close();
    }
    const full = await moveStore(other, foreign.urls);
    assert.equal(full.code, 1);
    assert.match(
      full.stderr,
      /already holds data that is not from this embedded database \(shard 0: api_keys\)/,
    );
  });
});
