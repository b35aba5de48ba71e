// The replay scenario (issue "Events at scale"): how fast changes move through the change stream.
// One PostgreSQL primary and one Redis, no CPU budgets. `hop import` writes N links, so N outbox
// rows; then (1) a `hop worker`'s relay appends them to the change stream, timed until the stream's
// last seq is the outbox's; (2) `hop replay --into cache` warms an empty cache from the stream;
// (3) `hop replay --into <database>` rebuilds the links of a database that has only the schema and
// the shard's identity (a base copy taken before the first link), the worst case of a restore.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { startRedis, stopRedis } from '../../scripts/cluster/redis-servers.ts';
import { lastPublishedSeq } from '../../src/events/change-stream.ts';
import { importIntoCluster } from '../lib/bench-cluster.ts';
import { makeTempDir, REPO_ROOT, removeDir, startHop } from '../lib/hop-process.ts';
import { randomApiKey } from '../lib/links.ts';
import { fmtInt, newReport, type ScenarioReport } from '../lib/report.ts';
import { type BenchContext, Cleanup, oneShardCluster, seedLinksFile } from './common.ts';

const run = promisify(execFile);
const PG_BIN = '/usr/lib/postgresql/15/bin';

export interface ReplayOptions {
  links: number;
}

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(sql)).rows;
  } finally {
    await c.end();
  }
}

const onDatabase = (url: string, db: string) => {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.href;
};

async function hop(args: string[], env: Record<string, string>): Promise<{ out: string; seconds: number }> {
  const t0 = performance.now();
  const { stdout } = await run(process.execPath, [join(REPO_ROOT, 'bin', 'hop.js'), ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, HOP_LOG_LEVEL: 'warn', ...env },
    maxBuffer: 16 * 1024 * 1024,
    timeout: 600_000,
  });
  return { out: stdout.trim(), seconds: (performance.now() - t0) / 1000 };
}

export async function runReplayBench(ctx: BenchContext, o: ReplayOptions): Promise<ScenarioReport> {
  const report = newReport('replay', { links: o.links });
  const cleanup = new Cleanup();
  try {
    const { linksFile } = await seedLinksFile(cleanup, o.links);
    const apiKey = randomApiKey();
    const bc = await oneShardCluster(ctx, cleanup);
    const primary = bc.urls.split(',')[0]!;
    // The empty copy: schema and identity, taken before any link exists.
    const dir = await makeTempDir('hop-bench-replay');
    cleanup.add(() => removeDir(dir));
    ctx.log('starting one Redis server');
    const redis = await startRedis({ mode: 'single' });
    cleanup.add(() => stopRedis(redis));
    const admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    admin.on('error', () => {});
    cleanup.add(async () => admin.disconnect());
    const env = { HOP_DATABASE_URLS: bc.urls, HOP_REDIS_URL: redis.url };
    await hop(['migrate'], env);
    const base = join(dir, 'base.sql');
    await run(`${PG_BIN}/pg_dump`, ['--no-owner', '-f', base, primary]);

    ctx.log(`importing ${fmtInt(o.links)} links (one outbox row each)`);
    await importIntoCluster(bc, { dataDir: dir, apiKey, env: {}, verbose: ctx.verbose }, linksFile, o.links);
    const [{ seq }] = (await query<{ seq: string }>(primary, 'SELECT max(seq)::text AS seq FROM outbox')) as [
      { seq: string },
    ];
    const top = Number(seq);

    ctx.log('relaying the outbox to the change stream with one hop worker');
    const started = performance.now();
    const worker = await startHop({ dataDir: dir, apiKey, env, verbose: ctx.verbose }, 60_000, 'worker');
    cleanup.add(() => worker.stop());
    const deadline = started + 600_000;
    while ((await lastPublishedSeq(admin, 0)) < top && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const relayS = (performance.now() - started) / 1000;
    await worker.stop();
    const relayed = await lastPublishedSeq(admin, 0);

    ctx.log('hop replay --into cache');
    const cache = await hop(['replay', '--into', 'cache'], env);
    ctx.log(cache.out);

    ctx.log('hop replay into a database holding only the schema and identity');
    await query(onDatabase(primary, 'postgres'), 'CREATE DATABASE hop_replayed');
    const target = onDatabase(primary, 'hop_replayed');
    await run(`${PG_BIN}/psql`, ['-q', '-v', 'ON_ERROR_STOP=1', '-f', base, target]);
    const db = await hop(['replay', '--into', target, '--shard', '0'], env);
    ctx.log(db.out);
    const [{ n }] = (await query<{ n: string }>(target, 'SELECT count(*)::text AS n FROM links')) as [
      { n: string },
    ];

    report.data.replay = {
      changes: top,
      relayS,
      relayed,
      cacheS: cache.seconds,
      dbS: db.seconds,
      restored: Number(n),
    };
    const rate = (s: number) => fmtInt(top / s);
    report.tables.push({
      title: 'Replay rate: changes per second through the change stream',
      head: ['step', 'changes', 'seconds', 'changes/s', 'what Hop printed'],
      rows: [
        [
          'outbox → change stream (relay in hop worker)',
          fmtInt(relayed),
          relayS.toFixed(1),
          rate(relayS),
          '-',
        ],
        [
          'change stream → Redis cache (hop replay --into cache)',
          fmtInt(top),
          cache.seconds.toFixed(1),
          rate(cache.seconds),
          cache.out,
        ],
        [
          'change stream → empty shard database (hop replay --into URL)',
          fmtInt(top),
          db.seconds.toFixed(1),
          rate(db.seconds),
          db.out,
        ],
      ],
      note:
        `${fmtInt(o.links)} links imported with hop import, one outbox row (link.created) each; links in the rebuilt database ` +
        `afterwards: ${fmtInt(Number(n))}. Seconds include starting the process (about 1 s); relay: from starting the worker ` +
        'until the stream holds the last outbox seq (polled every 50 ms). No CPU budgets; PostgreSQL and Redis on this machine.',
    });
    return report;
  } finally {
    await cleanup.run();
  }
}
