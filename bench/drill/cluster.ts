// The restore drill on PostgreSQL shards: a local cluster with WAL archived by pgBackRest (a short
// archive_timeout), Redis holding the change stream that `hop worker` relays, Hop on the shards.
// The disaster strikes shard 0; recovery is a pgBackRest restore (to the end of the archive, or to
// a point in time), then `hop replay` from the stream, or `hop recover-links` from a side copy.
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import {
  archiveNow,
  backupShard,
  enableBackups,
  PGBACKREST,
  type RestoreResult,
  restoreShard,
  stopRestored,
} from '../../scripts/cluster/backups.ts';
import {
  type Cluster,
  databaseUrls,
  killServer,
  ownDir,
  postgresUnavailable,
  primaryOf,
  startCluster,
  stopCluster,
  withClient,
} from '../../scripts/cluster/pg-cluster.ts';
import { type RedisServers, startRedis, stopRedis } from '../../scripts/cluster/redis-servers.ts';
import { type HopProcess, importLinks, makeTempDir, removeDir, startHop } from '../lib/hop-process.ts';
import { linkUrl, randomCodes, writeLinksJsonl } from '../lib/links.ts';
import {
  clickSome,
  createWebhook,
  DRILL_KEY,
  type DrillOptions,
  type DrillResult,
  keyAndWebhook,
  mustRun,
  rpoOf,
  sleep,
  splitUndone,
  urlOf,
} from './common.ts';
import { Ledger, type LinkState, redirectLookup } from './ledger.ts';
import { eachLimit, startWrites, type WriteCounts } from './writes.ts';

/** Why the cluster drill cannot run here, or null. */
export async function clusterDrillUnavailable(): Promise<string | null> {
  return (await postgresUnavailable()) ?? (existsSync(PGBACKREST) ? null : `${PGBACKREST} is not installed`);
}

/** Every link row's state on these servers, by code (a code with no row reads as not found). */
async function statesOn(ports: number[], codes: string[]): Promise<Map<string, LinkState>> {
  const states = new Map<string, LinkState>();
  for (const port of ports) {
    await withClient(port, 'hop', async (client) => {
      const { rows } = await client.query<{ code: string; url: string; deleted_at: Date | null }>(
        'SELECT code, url, deleted_at FROM links WHERE code = ANY($1)',
        [codes],
      );
      for (const r of rows) states.set(r.code, r.deleted_at === null ? r.url : null);
    });
  }
  return states;
}

/** Rows in every table of the restored database: what the restore brought back. */
async function rowsOn(port: number): Promise<number> {
  return withClient(port, 'hop', async (client) => {
    const { rows } = await client.query<{ t: string }>(
      "SELECT quote_ident(tablename) AS t FROM pg_tables WHERE schemaname = 'public'",
    );
    let n = 0;
    for (const { t } of rows) n += Number((await client.query(`SELECT count(*) AS n FROM ${t}`)).rows[0].n);
    return n;
  });
}

/** The newest seq of shard N's change stream in Redis, and of its outbox. */
async function relayLag(
  c: Cluster,
  redis: Redis,
  shard: number,
): Promise<{ stream: number; outbox: number }> {
  const entries = (await redis.xrevrange(`hop:changes:{${shard}}`, '+', '-', 'COUNT', 1)) as [
    string,
    string[],
  ][];
  const fields = entries[0]?.[1] ?? [];
  const stream = Number(fields[fields.indexOf('seq') + 1] ?? 0);
  const outbox = await withClient(primaryOf(c, shard).port, 'hop', async (client) =>
    Number((await client.query('SELECT coalesce(max(seq), 0) AS s FROM outbox')).rows[0].s),
  );
  return { stream, outbox };
}

export async function runClusterDrill(o: DrillOptions): Promise<DrillResult> {
  const why = await clusterDrillUnavailable();
  if (why !== null) throw new Error(`the cluster drill cannot run here: ${why}`);
  const log = o.log ?? (() => {});
  const writeMs = o.writeMs ?? 3_000;
  const archiveTimeoutS = o.archiveTimeoutS ?? 2;
  const base = await makeTempDir('hop-drill-cluster');
  let c: Cluster | null = null;
  let r: RedisServers | null = null;
  let redis: Redis | null = null;
  const procs = new Set<HopProcess>();
  const notes: string[] = [
    `cluster: ${o.shards ?? 2} shards × ${o.replicas ?? 1} replicas, archive_timeout ${archiveTimeoutS} s; the disaster strikes shard 0`,
  ];
  const ledger = new Ledger();
  try {
    [c, r] = await Promise.all([
      startCluster({ shards: o.shards ?? 2, replicas: o.replicas ?? 1, archiving: true }),
      startRedis({ mode: 'single' }),
    ]);
    const cluster = c;
    await enableBackups(cluster, { archiveTimeoutS });
    redis = new Redis(r.url);
    const env = { HOP_DATABASE_URLS: databaseUrls(cluster), HOP_REDIS_URL: r.url };
    const setup = { dataDir: join(base, 'unused'), apiKey: DRILL_KEY, env };
    const start = async (command: 'serve' | 'worker') => {
      const p = await startHop(setup, 120_000, command);
      procs.add(p);
      return p;
    };
    const stop = async (p: HopProcess) => {
      await p.stop();
      procs.delete(p);
    };

    const codes = randomCodes(o.links, 8, 21);
    for (const [i, code] of codes.entries()) ledger.seed(code, linkUrl(i));
    const jsonl = join(base, 'seed.jsonl');
    await writeLinksJsonl(jsonl, codes);
    const seed = await importLinks(setup, jsonl, o.links);
    log(`seeded ${o.links} links in ${(seed.ms / 1000).toFixed(1)} s`);
    let worker = await start('worker');
    let hop = await start('serve');
    const webhookId = await createWebhook(urlOf(hop));
    const clicks = await clickSome(urlOf(hop), codes.slice(0, Math.min(o.links, 5_000)));

    // A full backup of every shard (pgBackRest, then verify), WAL archived from then on.
    let backupS = 0;
    let backupBytes = 0;
    for (let shard = 0; shard < cluster.shards; shard++) {
      const b = await backupShard(cluster, shard, 'full');
      backupS += b.seconds;
      backupBytes += b.repoBytes;
    }
    log(`backup: ${backupBytes} bytes in ${backupS.toFixed(2)} s`);

    const isVictim = (i: number) => o.disaster === 'mass-delete' && i % 10 === 9;
    const victims = codes.filter((_, i) => isVictim(i));
    const writes = startWrites({
      baseUrl: urlOf(hop),
      apiKey: DRILL_KEY,
      ledger,
      seeded: codes.filter((_, i) => !isVictim(i)),
    });
    await sleep(writeMs);

    const primary = primaryOf(cluster, 0);
    let disasterAt: number;
    let counts: WriteCounts;
    let target: Date | null = null;
    let mistakeEnd = 0;
    if (o.disaster === 'lose-data-dir') {
      // Writes stop; once the change stream holds every acknowledged change (the relay polls every
      // 200 ms), shard 0's servers are killed and its primary's data directory deleted.
      counts = await writes.stop();
      const waited = performance.now();
      for (;;) {
        const lag = await relayLag(cluster, redis, 0);
        if (lag.stream >= lag.outbox) break;
        if (performance.now() - waited > 15_000) {
          notes.push(`the relay had not caught up after 15 s (stream ${lag.stream}, outbox ${lag.outbox})`);
          break;
        }
        await sleep(50);
      }
      notes.push(
        `writes paused ${((performance.now() - waited) / 1000).toFixed(2)} s for the change stream to catch up before the kill ` +
          '(a kill inside the relay poll loses those changes from the stream too)',
      );
      const wal = await withClient(primary.port, 'hop', async (client) => {
        const { rows } = await client.query<{ now: string; archived: string | null }>(
          'SELECT pg_walfile_name(pg_current_wal_lsn()) AS now, last_archived_wal AS archived FROM pg_stat_archiver',
        );
        return rows[0]!;
      });
      notes.push(
        `at the kill, shard 0 wrote WAL segment ${wal.now}; the archive held up to ${wal.archived ?? 'none'}`,
      );
      disasterAt = Date.now();
      for (const s of cluster.servers.filter((x) => x.shard === 0)) await killServer(cluster, s.name);
      await rm(primary.dataDir, { recursive: true, force: true });
    } else if (o.disaster === 'drop-table') {
      target = new Date();
      disasterAt = target.getTime();
      await withClient(primary.port, 'hop', (client) => client.query('DROP TABLE links CASCADE'));
      await sleep(writeMs / 3);
      counts = await writes.stop();
      await archiveNow(cluster, 0);
    } else {
      await sleep(200);
      target = new Date();
      disasterAt = target.getTime();
      await sleep(200);
      const bearer = { authorization: `Bearer ${DRILL_KEY}` };
      let deleted = 0;
      await eachLimit(victims, 16, async (code) => {
        const res = await fetch(`${urlOf(hop)}/api/v1/links/${code}`, { method: 'DELETE', headers: bearer });
        await res.arrayBuffer();
        if (res.status === 204) deleted++;
      });
      mistakeEnd = Date.now();
      notes.push(`the mistake: ${deleted} links deleted through the API at ${target.toISOString()}`);
      log(`mass delete: ${deleted} of ${victims.length}`);
      await sleep(writeMs / 2);
      counts = await writes.stop();
      for (let shard = 0; shard < cluster.shards; shard++) await archiveNow(cluster, shard);
    }
    log(`disaster ${o.disaster}; ${ledger.codes().length} acknowledged codes to check`);
    const allCodes = ledger.codes();
    const otherPorts = (except: number[]) =>
      Array.from({ length: cluster.shards }, (_, s) => s)
        .filter((s) => !except.includes(s))
        .map((s) => primaryOf(cluster, s).port);

    let restoreS = 0;
    let rows = 0;
    let replayS = 0;
    let said: string;
    let withoutMeans: string;
    let without: Awaited<ReturnType<Ledger['check']>>;
    const t0 = performance.now();
    if (o.disaster !== 'mass-delete') {
      // Runbook: stop writes to the shard (Hop and the worker), restore, replay, start again.
      await stop(hop);
      await stop(worker);
      const r0 = performance.now();
      if (o.disaster === 'lose-data-dir') {
        await mkdir(primary.dataDir, { recursive: true });
        await ownDir(primary.dataDir);
      }
      const restored = await restoreShard(cluster, 0, { time: target, into: null });
      restoreS = (performance.now() - r0) / 1000;
      rows = await rowsOn(restored.port);
      log(`restore: ${rows} rows in ${restoreS.toFixed(2)} s`);
      // Without replay: what the archive alone gives (read from the databases, Hop stays stopped).
      const pause = performance.now();
      const states = await statesOn([restored.port, ...otherPorts([0])], allCodes);
      without = await ledger.check(async (code) => states.get(code) ?? null, 1);
      const pauseS = (performance.now() - pause) / 1000;
      withoutMeans =
        o.disaster === 'lose-data-dir'
          ? 'shard 0 restored to the end of its WAL archive, no change-stream replay'
          : 'shard 0 restored to just before the DROP, no change-stream replay';
      const replay = await mustRun(['replay', '--into', restored.url, '--shard', '0'], {
        HOP_REDIS_URL: r.url,
      });
      replayS = replay.seconds;
      said = replay.stdout.trim().split('\n').at(-1) ?? '';
      worker = await start('worker');
      hop = await start('serve');
      notes.push(`RTO leaves out the drill's own look at the archive-only data (${pauseS.toFixed(2)} s)`);
      const rtoS = (performance.now() - r0) / 1000 - pauseS;
      return await finish(rtoS);
    }
    // Mass delete: each shard restored beside itself to just before the mistake; Hop keeps serving,
    // and recover-links puts back the links deleted since, keeping every later write.
    const sides: RestoreResult[] = [];
    for (let shard = 0; shard < cluster.shards; shard++) {
      const side = join(cluster.dir, `drill-side-${shard}`);
      sides.push(await restoreShard(cluster, shard, { time: target, into: side }));
    }
    restoreS = (performance.now() - t0) / 1000;
    for (const side of sides) rows += await rowsOn(side.port);
    const pause = performance.now();
    const states = await statesOn(
      sides.map((s) => s.port),
      allCodes,
    );
    without = await ledger.check(async (code) => states.get(code) ?? null, 1);
    const pauseS = (performance.now() - pause) / 1000;
    withoutMeans =
      'the copies from just before the mistake alone (a point-in-time restore in place): later writes lost';
    const recovered: string[] = [];
    const rp = performance.now();
    for (const side of sides) {
      const run = await mustRun(
        [
          ...['recover-links', '--from', side.url, '--since', target!.toISOString()],
          ...['--until', new Date(mistakeEnd).toISOString()],
        ],
        env,
      );
      recovered.push(run.stdout.trim().split('\n').at(-1) ?? '');
    }
    replayS = (performance.now() - rp) / 1000;
    said = `hop recover-links per shard: ${recovered.join(' | ')}`;
    for (const side of sides) await stopRestored(cluster, side.dataDir);
    const rtoS = (performance.now() - t0) / 1000 - pauseS;
    return await finish(rtoS);

    async function finish(rtoS: number): Promise<DrillResult> {
      const withReplay = await ledger.check(redirectLookup(urlOf(hop)));
      const extras = await keyAndWebhook(urlOf(hop), webhookId);
      const split = splitUndone(
        withReplay,
        o.disaster === 'mass-delete' ? { from: disasterAt, to: mistakeEnd } : null,
      );
      const rpoWithReplay = rpoOf(split.check, disasterAt);
      return {
        shape: 'cluster',
        disaster: o.disaster,
        links: o.links,
        seedS: seed.ms / 1000,
        clicks,
        backup: {
          seconds: backupS,
          bytes: backupBytes,
          note: `pgBackRest full backup + verify of ${cluster.shards} shards, compressed size in the repository`,
        },
        writes: { ...counts, acknowledgedCodes: allCodes.length },
        restore: { seconds: restoreS, rows, rowsPerS: rows / restoreS },
        replay: { seconds: replayS, said },
        rtoS,
        withoutReplayMeans: withoutMeans,
        rpoWithoutReplay: rpoOf(without, disasterAt),
        rpoWithReplay,
        undoneDeletes: split.undone,
        checked: withReplay.checked,
        ...extras,
        notes,
        ok: rpoWithReplay.lost === 0 && extras.apiKeyOk && extras.webhookOk,
      };
    }
  } finally {
    for (const p of procs) await p.stop().catch(() => {});
    redis?.disconnect();
    await Promise.all([
      c === null ? null : stopCluster(c).catch(() => {}),
      r === null ? null : stopRedis(r).catch(() => {}),
    ]);
    await removeDir(base);
  }
}
