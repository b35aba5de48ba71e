// The move-store scenario: the cut-over from the embedded database to a PostgreSQL cluster, timed.
// An embedded data directory of N links with click history (bench/lib/embedded-seed.ts) is served by
// a Hop; the cut-over then stops that Hop, runs `hop move-store` into a fresh two-shard cluster (copy
// by bucket, then verification), and starts Hop on the cluster until /readyz answers. Downtime is
// from the stop signal to that answer; the table splits it by phase (move-store's own phases as it
// printed them) and gives links moved per second. Runbook: docs/runbooks/move-store.md.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startBenchCluster } from '../lib/bench-cluster.ts';
import { seedEmbeddedData } from '../lib/embedded-seed.ts';
import { ensureHopBundle, makeTempDir, REPO_ROOT, removeDir, startHop } from '../lib/hop-process.ts';
import { requestOnce } from '../lib/http-client.ts';
import { fmtInt, newReport, type ScenarioReport } from '../lib/report.ts';
import { type BenchContext, Cleanup } from './common.ts';

export interface MoveStoreBenchOptions {
  links: number;
}

const SHARDS = 2;

/** `hop move-store` as an operator runs it; its stdout, and how long the process took. */
function runMoveStore(
  ctx: BenchContext,
  dataDir: string,
  urls: string,
): Promise<{ code: number; stdout: string; seconds: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [join(REPO_ROOT, 'bin', 'hop.js'), 'move-store', '--to', urls],
      {
        cwd: REPO_ROOT,
        env: { ...process.env, HOP_DATA_DIR: dataDir, HOP_LOG_LEVEL: 'warn' },
        maxBuffer: 64 * 1024 * 1024,
        timeout: 3_600_000,
      },
      (error, stdout, stderr) => {
        if (stderr.trim() !== '') ctx.log(`move-store stderr: ${stderr.trim()}`);
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, seconds: (performance.now() - t0) / 1000 });
      },
    );
    child.stdout?.on('data', (d: Buffer) => {
      for (const line of d.toString().split('\n')) if (/^(copy|verify): /.test(line)) ctx.log(line);
    });
  });
}

export async function runMoveStoreBench(
  ctx: BenchContext,
  o: MoveStoreBenchOptions,
): Promise<ScenarioReport> {
  const report = newReport('move-store', { links: o.links, shards: SHARDS });
  const cleanup = new Cleanup();
  try {
    const bundle = ensureHopBundle();
    if (bundle !== null) report.notes.push(bundle);
    const dir = await makeTempDir('hop-bench-move');
    cleanup.add(() => removeDir(dir));
    const dataDir = join(dir, 'embedded');
    const clickedLinks = Math.max(10, Math.round(o.links / 100));
    ctx.log(
      `building the embedded data directory: ${fmtInt(o.links)} links, clicks on ${fmtInt(clickedLinks)}`,
    );
    const built = performance.now();
    const seed = await seedEmbeddedData(dataDir, {
      links: o.links,
      clickedLinks,
      clicksPerLink: 8,
      deletes: Math.round(o.links / 100),
      updates: 300,
      log: ctx.log,
    });
    ctx.log(`built in ${((performance.now() - built) / 1000).toFixed(0)} s`);
    const bc = await startBenchCluster({
      shards: SHARDS,
      replicas: 0,
      cpuQuota: null,
      verbose: ctx.verbose,
      log: ctx.log,
    });
    cleanup.add(() => bc.stop());
    report.notes.push(...bc.notes);

    ctx.log('starting Hop on the embedded database');
    const embedded = await startHop({
      dataDir,
      apiKey: seed.apiKey,
      verbose: ctx.verbose,
      readyPath: '/readyz',
    });
    cleanup.add(() => embedded.stop());
    // A few redirects: their clicks are held when the stop comes, and must reach the cluster.
    const sample = seed.clicked.filter((k) => !k.includes('/')).slice(0, 200);
    const answers = async (target: typeof embedded.target) => {
      const out: string[] = [];
      for (const code of sample) {
        const res = await requestOnce(target, { method: 'GET', path: `/${code}` });
        out.push(`${res.status} ${res.headers?.location ?? ''}`);
      }
      return out;
    };
    const before = await answers(embedded.target);

    ctx.log('cut-over: stop the embedded Hop, move, verify, start Hop on the cluster');
    const t0 = performance.now();
    // The data directory is free once Hop has closed its database (its lock file goes); the
    // process itself may take longer to exit, and an operator waits for that.
    const free: { s: number | null } = { s: null };
    const lock = join(dataDir, 'hop.lock');
    const watch = setInterval(() => {
      if (free.s === null && !existsSync(lock)) free.s = (performance.now() - t0) / 1000;
    }, 20);
    await embedded.child.stop(60_000);
    clearInterval(watch);
    const stoppedS = (performance.now() - t0) / 1000;
    const move = await runMoveStore(ctx, dataDir, bc.urls);
    if (move.code !== 0)
      throw new Error(`hop move-store failed (exit ${move.code}):\n${move.stdout.slice(-4000)}`);
    const t1 = performance.now();
    const clusterDir = join(dir, 'cluster-hop');
    const onCluster = await startHop(
      {
        dataDir: clusterDir,
        apiKey: seed.apiKey,
        env: { HOP_DATABASE_URLS: bc.urls },
        verbose: ctx.verbose,
        readyPath: '/readyz',
      },
      120_000,
    );
    cleanup.add(() => onCluster.stop());
    const startS = (performance.now() - t1) / 1000;
    const downtimeS = (performance.now() - t0) / 1000;

    const after = await answers(onCluster.target);
    const redirects = after.filter((a, i) => a === before[i]).length;
    if (redirects !== sample.length)
      report.notes.push(
        `only ${redirects} of ${sample.length} sampled links answer on the cluster as they did before`,
      );
    const freeS = free.s;
    if (freeS !== null && stoppedS - freeS > 1)
      report.notes.push(
        `the embedded Hop released its data directory ${freeS.toFixed(1)} s after SIGTERM but exited only after ${stoppedS.toFixed(1)} s: ` +
          `the cut-over could start move-store ${(stoppedS - freeS).toFixed(1)} s sooner`,
      );

    const moved =
      /^Moved ([\d,]+) links in ([\d.]+) s \(([\d,]+) links\/s copying, ([\d,]+) links\/s overall\): prepare ([\d.]+) s, copy ([\d.]+) s, verify ([\d.]+) s; ([\d,]+) rows written/m.exec(
        move.stdout,
      );
    if (moved === null) throw new Error(`move-store printed no summary:\n${move.stdout.slice(-4000)}`);
    const num = (i: number) => Number(moved[i]!.replaceAll(',', ''));
    const [links, inS, , , prepareS, copyS, verifyS, rows] = [1, 2, 3, 4, 5, 6, 7, 8].map(num) as number[];
    const processS = move.seconds - inS!;
    report.data.moveStore = {
      links,
      downtimeS,
      stopS: stoppedS,
      moveS: move.seconds,
      prepareS,
      copyS,
      verifyS,
      startS,
      rowsWritten: rows,
      redirects,
    };
    report.tables.push({
      title: `Cut-over downtime: ${fmtInt(links!)} links from the embedded database to ${SHARDS} PostgreSQL shards`,
      head: ['phase', 'seconds', 'share'],
      rows: (
        [
          ['stop the embedded Hop (SIGTERM until it exits; it folds the clicks it holds)', stoppedS],
          ['move-store: open, fold and split clicks, claim the cluster', prepareS!],
          ['move-store: copy by bucket, shard 0 rows, change stream', copyS!],
          ['move-store: verify (per bucket and per table)', verifyS!],
          ['move-store: process start and exit', processS],
          ['start Hop on the cluster (until /readyz)', startS],
          ['downtime in all', downtimeS],
        ] as const
      ).map(([phase, x]) => [phase, x.toFixed(1), `${((100 * x) / downtimeS).toFixed(0)}%`]),
      note:
        `Links moved per second: ${fmtInt(links! / copyS!)} while copying, ${fmtInt(links! / move.seconds)} over the whole ` +
        `move-store (${fmtInt(rows!)} rows written: links with tombstones, click packs and visit rows, the change stream); ` +
        `${fmtInt(seed.clicks)} clicks on ${fmtInt(clickedLinks)} links; ${redirects}/${sample.length} sampled links answer on ` +
        'the cluster as they did before. One cluster of local PostgreSQL 15 servers (fsync off, no CPU budgets), Hop and move-store on ' +
        'the same machine.',
    });
    const compared = move.stdout.split('\n').filter((l) => l.startsWith('  '));
    report.notes.push(`move-store compared:\n${compared.join('\n')}`);
    return report;
  } finally {
    await cleanup.run();
  }
}
