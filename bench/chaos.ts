// `npm run chaos -- [--faults a,b,…] [--rounds N] [--shards N] [--cpu-quota C] [--sync-cost S]`:
// starts the HA system (bench/chaos/system.ts), runs each fault under a steady mixed load N times,
// and prints one row per fault (medians over the rounds; lost, wrong and duplicates summed). Then
// re-reads every link acknowledged in any round, and, unless --sync-cost 0, measures creates with
// synchronous replication on and off on the same cluster, alternating.
import { chmod, cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { FAULTS, type FaultTimings, FULL_TIMINGS, faultsNamed, QUICK_TIMINGS } from './chaos/faults.ts';
import { checkAcknowledged } from './chaos/load.ts';
import { type ChaosRow, runRound } from './chaos/round.ts';
import { measureSyncCost, type SyncCost } from './chaos/sync-cost.ts';
import { startChaosSystem, stopChaosSystem } from './chaos/system.ts';

const USAGE = `Usage: npm run chaos -- [options]

Faults (each on its own, in this order unless --faults picks some):
${FAULTS.map((f) => `  ${f.name.padEnd(14)} ${f.what}`).join('\n')}

Options:
  --faults a,b       which faults (default: all)
  --rounds N         rounds of each fault (3); RTO and p99 are medians over them
  --shards N         shards of the HA cluster (1); faults strike shard 0
  --cpu-quota C      cores per server and per Hop process (cgroup v1 quota; default unconfined)
  --rate R           creates a second (20); redirects 5R, clicks 2R
  --sync-cost S      seconds per side of the sync on/off create measurement (10; 0 skips it)
  --quick            short stretches (the zombie stopped 20 s, etcd down 10 s), for a first look
  --json             print the rows as JSON too`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: process.argv.slice(2).filter((a) => a !== '--'),
    options: {
      faults: { type: 'string' },
      rounds: { type: 'string' },
      shards: { type: 'string' },
      'cpu-quota': { type: 'string' },
      rate: { type: 'string' },
      'sync-cost': { type: 'string' },
      quick: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const faults = faultsNamed(values.faults === undefined ? null : values.faults.split(','));
  const rounds = whole('--rounds', values.rounds ?? '3', 1);
  const rate = whole('--rate', values.rate ?? '20', 1);
  const syncCostS = whole('--sync-cost', values['sync-cost'] ?? '10', 0);
  const cpuQuota = values['cpu-quota'] === undefined ? null : Number(values['cpu-quota']);
  const timings: FaultTimings = values.quick ? QUICK_TIMINGS : FULL_TIMINGS;
  const dir = await mkdtemp(join(tmpdir(), 'hop-chaos-'));
  // The servers run as postgres, inside it.
  await chmod(dir, 0o755);
  const log = (line: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
  // startChaosSystem stops what it started when it fails; the directory goes here.
  const sys = await startChaosSystem({
    dir,
    shards: whole('--shards', values.shards ?? '1', 1),
    cpuQuota,
    log,
  }).catch(async (err: unknown) => {
    await rm(dir, { recursive: true, force: true });
    throw err;
  });
  const rows: ChaosRow[][] = faults.map(() => []);
  let cost: SyncCost | null = null;
  let recheck = { lost: [] as string[], wrong: [] as string[] };
  try {
    for (let r = 0; r < rounds; r++) {
      for (const [i, fault] of faults.entries()) {
        log(`round ${r + 1}/${rounds}: ${fault.name}`);
        const row = await runRound(sys, fault, {
          rates: { creates: rate, redirects: rate * 5, clicks: rate * 2 },
          timings,
          steadyMs: values.quick ? 2_000 : 5_000,
          afterMs: values.quick ? 3_000 : 5_000,
          round: `r${r}-${i}-${fault.name}`,
        });
        rows[i]!.push(row);
        log(
          `${fault.name}: ${row.acknowledged} acknowledged, ${row.lost} lost, ${row.wrong} wrong, RTO ${row.rtoMs} ms; ` +
            `failed creates answered ${row.writeErrorStatuses || '-'}, failed redirects ${row.redirectErrorStatuses || '-'}`,
        );
      }
    }
    // Every link acknowledged in any round, once more after all the faults: a zombie's or a
    // rewound node's divergence would show here.
    recheck = await checkAcknowledged(
      sys.fleet.balancer.url,
      rows.flat().flatMap((r) => r.links),
    );
    if (syncCostS > 0) cost = await measureSyncCost(sys, syncCostS * 1000, log);
  } catch (err) {
    // What the servers logged is the evidence: kept beside the system's directory before it goes.
    const kept = `${dir}-logs`;
    await cp(dir, kept, {
      recursive: true,
      filter: (src) => !/\/(data|etcd)(\/|$)|\.s\.PGSQL/.test(src),
    });
    log(`logs kept in ${kept}`);
    throw err;
  } finally {
    await stopChaosSystem(sys);
    await rm(dir, { recursive: true, force: true });
  }
  process.stdout.write(`\n${renderTable(rows, rounds, cpuQuota)}\n`);
  process.stdout.write(
    `\nafter every fault: ${rows.flat().reduce((n, r) => n + r.links.length, 0)} acknowledged links read back, ` +
      `${recheck.lost.length} lost, ${recheck.wrong.length} wrong\n`,
  );
  if (cost !== null) process.stdout.write(`\n${renderSyncCost(cost)}\n`);
  if (values.json) process.stdout.write(`${JSON.stringify({ rows, recheck, cost }, null, 2)}\n`);
  const bad = rows.flat().some((r) => r.lost + r.wrong + r.duplicates + r.wrongRedirects > 0);
  return bad || recheck.lost.length + recheck.wrong.length > 0 ? 1 : 0;
}

function renderTable(rows: ChaosRow[][], rounds: number, cpuQuota: number | null): string {
  const head = [
    'fault',
    'acked',
    'lost/wrong',
    'dup',
    'redirect err',
    'wrong redir',
    'write err',
    'RTO ms (median)',
    'redirect p99 ms',
    'clicks served/counted',
  ];
  const body = rows.map((rs) => {
    const sum = (f: (r: ChaosRow) => number) => rs.reduce((n, r) => n + f(r), 0);
    return [
      rs[0]!.fault,
      String(sum((r) => r.acknowledged)),
      `${sum((r) => r.lost)}/${sum((r) => r.wrong)}`,
      String(sum((r) => r.duplicates)),
      `${sum((r) => r.redirectErrors)}/${sum((r) => r.redirects)}`,
      String(sum((r) => r.wrongRedirects)),
      String(sum((r) => r.writeErrors)),
      `${median(rs.map((r) => r.rtoMs))} (${rs.map((r) => r.rtoMs).join(', ')})`,
      median(rs.map((r) => r.redirectP99Ms)).toFixed(1),
      `${sum((r) => r.clicksServed)}/${sum((r) => r.clicksCounted)}`,
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  return [
    `chaos: ${rounds} round(s) per fault, ${cpuQuota === null ? 'unconfined' : `${cpuQuota} core(s) per process`}`,
    line(head),
    ...body.map(line),
  ].join('\n');
}

function renderSyncCost(c: SyncCost): string {
  const pct = (c.on.createsPerS / c.off.createsPerS) * 100;
  return [
    `synchronous replication on creates (same cluster, alternating, ${c.concurrency} concurrent, ${c.seconds} s per side):`,
    `  sync on:  ${c.on.createsPerS.toFixed(0)} creates/s, p50 ${c.on.p50Ms.toFixed(1)} ms, p99 ${c.on.p99Ms.toFixed(1)} ms`,
    `  sync off: ${c.off.createsPerS.toFixed(0)} creates/s, p50 ${c.off.p50Ms.toFixed(1)} ms, p99 ${c.off.p99Ms.toFixed(1)} ms`,
    `  on/off: ${pct.toFixed(0)}% of the throughput`,
  ].join('\n');
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)] ?? 0;
}

function whole(flag: string, text: string, min: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min)
    throw new Error(`${flag} needs a whole number ≥ ${min}, got '${text}'`);
  return n;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`chaos: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 2;
  },
);
