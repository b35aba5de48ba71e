// The fleet scenario: Hop processes behind the real HAProxy (scripts/fleet), each on the same CPU
// budget as separate machines of equal size would be. Three fleets run side by side (1, 2 and 3 Hop
// processes) and are probed closed-loop in alternating rounds: does redirect capacity grow with the
// processes (target ≥ 2.6× at three)? HAProxy's own CPU is shown beside the Hops'. Then, on the
// three-process fleet under a fixed open-loop rate of redirects and creates that two of them carry: failed requests across a
// rolling restart, and how long the balancer takes to route around a killed and a hung process.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  balancerView,
  type Fleet,
  restartHop,
  rollingRestart,
  startFleet,
  stopFleet,
} from '../../scripts/fleet/fleet.ts';
import { cpuQuotaUnavailable } from '../../scripts/lib/cpu-cgroup.ts';
import { importIntoCluster, withoutCpuBudget } from '../lib/bench-cluster.ts';
import { readCpuMs } from '../lib/child.ts';
import { makeTempDir, removeDir } from '../lib/hop-process.ts';
import { type Distribution, randomApiKey } from '../lib/links.ts';
import type { RequestFactory } from '../lib/load.ts';
import type { RunResult } from '../lib/recorder.ts';
import { fmtInt, fmtMs, newReport, runsTable, type ScenarioReport } from '../lib/report.ts';
import {
  alternateProbes,
  type BenchContext,
  best,
  Cleanup,
  oneShardCluster,
  openLoop,
  type Sut,
  seedLinksFile,
  touchEveryLink,
  warmServer,
} from './common.ts';
import { createRequests } from './create.ts';
import { redirectRequests } from './redirect.ts';

export interface FleetBenchOptions {
  links: number;
  dist: Distribution;
  probeS: number;
  rounds: number;
  /** Cores per Hop process; null for none. */
  hopQuota: number | null;
  /** Open-loop rate of the fault runs, as a share of the three-process fleet's max. */
  faultLoad: number;
  /** Seconds of each fault run (the rolling restart's runs until it is done). */
  faultS: number;
}

interface Member {
  readonly hops: number;
  readonly fleet: Fleet;
  readonly sut: Sut;
}

/** CPU each Hop process and the balancer used during a probe, in cores. */
interface CpuUse {
  hops: number;
  balancer: number;
}

export async function runFleet(ctx: BenchContext, o: FleetBenchOptions): Promise<ScenarioReport> {
  const report = newReport('fleet', {
    links: o.links,
    dist: o.dist,
    probeS: o.probeS,
    rounds: o.rounds,
    hopQuota: o.hopQuota === null ? 'none' : `${o.hopQuota} cores per Hop process`,
    connections: ctx.connections,
    faultLoad: `${Math.round(o.faultLoad * 100)}% of the 3-process max`,
  });
  let hopQuota = o.hopQuota;
  if (hopQuota !== null) {
    const why = await cpuQuotaUnavailable();
    if (why !== null) {
      report.notes.push(`CPU quota of ${hopQuota} cores NOT applied to Hop: ${why}`);
      hopQuota = null;
    }
  }
  const cleanup = new Cleanup();
  try {
    const { codes, linksFile } = await seedLinksFile(cleanup, o.links);
    const apiKey = randomApiKey();
    // One shard, unconfined: redirects are served from each process's cache, so the Hop tier is
    // what is measured. Clicks are not recorded (they would add the database's writes).
    const bc = await oneShardCluster(ctx, cleanup);
    const dataDir = await makeTempDir('hop-bench-fleet');
    cleanup.add(() => removeDir(dataDir));
    const env = {
      HOP_DATABASE_URLS: bc.urls,
      HOP_INITIAL_API_KEY: apiKey,
      HOP_RATE_LIMITS: 'off',
      HOP_CLICK_RECORDING: 'off',
      HOP_LOG_LEVEL: 'warn',
      ...ctx.hopEnv,
    };
    ctx.log(`importing ${fmtInt(o.links)} links`);
    await withoutCpuBudget(bc, () => importIntoCluster(bc, { dataDir, apiKey, env }, linksFile, o.links));
    report.notes.push(
      'Hop runs with HOP_CLICK_RECORDING=off: the Hop tier and the balancer are measured, not the database.',
    );

    const members: Member[] = [];
    for (const hops of [1, 2, 3]) {
      const dir = await mkdtemp(join(tmpdir(), `hop-bench-fleet-${hops}-`));
      ctx.log(
        `starting a fleet of ${hops} Hop process(es)${hopQuota === null ? '' : `, ${hopQuota} cores each`}`,
      );
      const fleet = await startFleet({
        dir,
        hops,
        env,
        cpuQuota: hopQuota,
        log: ctx.verbose ? ctx.log : () => {},
      });
      cleanup.add(async () => {
        await stopFleet(fleet);
        await rm(dir, { recursive: true, force: true });
      });
      const port = Number(new URL(fleet.balancer.url).port);
      const sut: Sut = {
        name: `${hops} Hop${hops > 1 ? 's' : ''}`,
        target: { host: '127.0.0.1', port },
        pid: fleet.balancer.pid,
        stop: async () => {},
      };
      members.push({ hops, fleet, sut });
    }
    const reads = redirectRequests(codes, o.dist);
    // Every process's own cache holds every link (as a long-running fleet's would), so that a
    // process's share of the misses does not depend on how many processes share the traffic.
    for (const m of members) {
      for (const h of m.fleet.hops) {
        await touchEveryLink(
          ctx,
          {
            name: `${m.sut.name}: ${h.name}`,
            target: { host: '127.0.0.1', port: h.port },
            pid: h.pid,
            stop: async () => {},
          },
          codes,
        );
      }
      await warmServer(ctx, m.sut, reads);
    }

    // Capacity, alternating rounds; each probe's CPU read per process.
    const cpu = new Map<string, CpuUse[]>();
    let before: { hops: (number | null)[]; balancer: number | null; at: number } | null = null;
    const memberOf = (sut: Sut) => members.find((m) => m.sut === sut);
    const probes = await alternateProbes(
      ctx,
      members.map((m) => m.sut),
      reads,
      { probeS: o.probeS, rounds: o.rounds },
      report,
      async (sut) => {
        const m = memberOf(sut);
        if (m === undefined || before === null) return;
        const s = (performance.now() - before.at) / 1000;
        const hops = m.fleet.hops.reduce(
          (sum, h, i) => sum + ((readCpuMs(h.pid) ?? 0) - (before?.hops[i] ?? 0)),
          0,
        );
        const bal = (readCpuMs(m.fleet.balancer.pid) ?? 0) - (before.balancer ?? 0);
        cpu.set(sut.name, [
          ...(cpu.get(sut.name) ?? []),
          { hops: hops / 1000 / s, balancer: bal / 1000 / s },
        ]);
      },
      async (sut) => {
        const m = memberOf(sut);
        if (m === undefined) return;
        before = {
          hops: m.fleet.hops.map((h) => readCpuMs(h.pid)),
          balancer: readCpuMs(m.fleet.balancer.pid),
          at: performance.now(),
        };
      },
    );
    const maxOf = (m: Member) => best(probes.get(m.sut.name) ?? [])?.achievedRate ?? 0;
    const one = members[0] === undefined ? 0 : maxOf(members[0]);
    const rows = members.map((m) => {
      const max = maxOf(m);
      const b = best(probes.get(m.sut.name) ?? []);
      const use = cpu.get(m.sut.name) ?? [];
      const avg = (f: (u: CpuUse) => number) =>
        use.length === 0 ? 0 : use.reduce((s, u) => s + f(u), 0) / use.length;
      return [
        m.sut.name,
        fmtInt(max),
        one > 0 ? `${(max / one).toFixed(2)}×` : '-',
        avg((u) => u.hops).toFixed(2),
        avg((u) => u.balancer).toFixed(2),
        b === undefined ? '-' : fmtMs(b.latency.p99),
        b === undefined ? '-' : fmtInt(b.errorCount + b.unexpected),
      ];
    });
    report.tables.push({
      title: `Redirect capacity behind HAProxy (closed-loop, ${ctx.connections} connections, best of ${o.rounds})`,
      head: [
        'fleet',
        'max req/s',
        'vs 1 Hop',
        'Hop CPU (cores, all)',
        'HAProxy CPU (cores)',
        'p99 at max',
        'errors',
      ],
      rows,
    });
    const three = members[2];
    if (three !== undefined && one > 0) {
      const ratio = maxOf(three) / one;
      report.notes.push(
        `3 Hops vs 1: ${ratio.toFixed(2)}× (target ≥ 2.6×: ${ratio >= 2.6 ? 'met' : 'NOT met'}).`,
      );
    }

    // Faults on the three-process fleet, under a fixed rate of redirects with a create in every hundred:
    // a rate two processes carry (a create costs many redirects), so what is measured is the fault.
    if (three !== undefined) {
      const rate = Math.max(50, Math.round(maxOf(three) * o.faultLoad));
      const mixed = mixedRequests(reads, createRequests(apiKey, 1_000_000_000));
      const faults: string[][] = [];
      const row = (name: string, r: RunResult, detail: string) =>
        faults.push([
          name,
          `${fmtInt(r.errorCount + r.unexpected)} of ${fmtInt(r.completed + r.errorCount)}`,
          fmtMs(r.latency.p99),
          fmtMs(r.latency.max),
          detail,
        ]);

      // A rolling restart, inside one open-loop run.
      ctx.log('rolling restart under load');
      let restartS = 0;
      const restarted = (async () => {
        await sleep(2_000);
        const t = performance.now();
        await rollingRestart(three.fleet);
        restartS = (performance.now() - t) / 1000;
      })();
      const during = await openLoop(ctx, three.sut, mixed, rate, Math.max(o.faultS, 25));
      await restarted;
      report.runs.push(during);
      row('rolling restart of 3', during, `done in ${restartS.toFixed(1)} s`);

      for (const fault of ['SIGKILL', 'SIGSTOP'] as const) {
        const victim = three.fleet.hops[2];
        if (victim === undefined) break;
        ctx.log(`${fault} of ${victim.name} under load`);
        let outMs = Number.NaN;
        const injected = (async () => {
          await sleep(2_000);
          const t = performance.now();
          process.kill(victim.pid, fault);
          while (performance.now() - t < 15_000) {
            const seen = await balancerView(three.fleet).catch(() => new Map<string, string>());
            if (seen.get(victim.name)?.startsWith('DOWN')) {
              outMs = performance.now() - t;
              break;
            }
            await sleep(20);
          }
          if (fault === 'SIGSTOP') {
            await sleep(Math.max(0, 5_000 - (performance.now() - t)));
            process.kill(victim.pid, 'SIGCONT');
          }
        })();
        const r = await openLoop(ctx, three.sut, mixed, rate, o.faultS);
        await injected;
        report.runs.push(r);
        const what = fault === 'SIGKILL' ? 'dead' : 'hung (SIGCONT after 5 s)';
        row(`${fault} of one (${what})`, r, `out of rotation after ${fmtMs(outMs)}`);
        // Back to three before the next fault.
        if (fault === 'SIGKILL') await restartHop(three.fleet, victim.name);
        else await sleep(3_000);
      }
      report.tables.push({
        title: `Faults on the 3-Hop fleet at ${fmtInt(rate)} req/s open-loop (1 create in 100), each its own run`,
        head: ['fault', 'failed requests', 'p99', 'max', 'balancer'],
        rows: faults,
      });
      report.notes.push(
        `Checks: /readyz every 1 s, 2 failures take a process out (scripts/fleet/haproxy-config.ts); a refused ` +
          `connection takes it out at once. A draining process keeps serving for HOP_DRAIN_DELAY_MS=${three.fleet.env.HOP_DRAIN_DELAY_MS} ms.`,
      );
    }
    report.tables.push(runsTable(report.runs));
  } catch (err) {
    report.notes.push(`the run stopped: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    await cleanup.run();
  }
  return report;
}

/** Ninety-nine redirects, then one create. */
function mixedRequests(reads: RequestFactory, creates: RequestFactory): RequestFactory {
  return (i) => (i % 100 === 99 ? creates(i) : reads(i));
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
