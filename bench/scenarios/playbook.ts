// The playbook scenario: the same redirect workload against every scaling stage that can run yet,
// each a real Hop of its own, and why the others cannot, so the report always shows the whole ladder.
// Per stage: capacity from a closed-loop probe, then latency from an open-loop run at one fixed rate
// shared by all stages, so that a stage below that rate shows its queue instead of a flattering p99.
import { cp, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { cpuQuotaUnavailable } from '../../scripts/lib/cpu-cgroup.ts';
import { type ImportResult, importLinks } from '../lib/hop-process.ts';
import { type Distribution, randomApiKey } from '../lib/links.ts';
import type { RunResult } from '../lib/recorder.ts';
import { fmtInt, fmtMs, newReport, runsTable, type ScenarioReport, type Table } from '../lib/report.ts';
import {
  executionOrder,
  PLAYBOOK_STAGES,
  type PlaybookStage,
  RATE_REFERENCE_STAGE,
  type StageEnv,
} from '../playbook.ts';
import { type BenchContext, Cleanup, closedLoop, openLoop, seedLinksFile, warmServer } from './common.ts';
import { noteTrouble, redirectRequests } from './redirect.ts';

export interface PlaybookOptions {
  links: number;
  dist: Distribution;
  /** Seconds of each stage's open-loop run (its drain after that is bounded by the request timeout). */
  durationS: number;
  /** Seconds of each stage's closed-loop capacity probe. */
  probeS: number;
  /** The fixed open-loop rate; by default half the capacity of RATE_REFERENCE_STAGE. */
  rate: number | null;
  /** Stage numbers to run; null for all. */
  stages: number[] | null;
  /** CPU budget per Hop process in cores (cgroup v1 CFS quota); null for none. */
  cpuQuota: number | null;
  /** CPU budget per PostgreSQL server of stages 3, 5 and 6, in cores; null for none. */
  dbCpuQuota: number | null;
}

/** What became of one stage. */
export interface StageOutcome {
  stage: PlaybookStage;
  status: 'measured' | 'not available yet' | 'not selected' | 'failed';
  /** The reason for anything but 'measured'. */
  reason: string | null;
  probe: RunResult | null;
  open: RunResult | null;
  details: Table[];
  notes: string[];
}

export async function runPlaybook(ctx: BenchContext, o: PlaybookOptions): Promise<ScenarioReport> {
  const report = newReport('playbook', {
    links: o.links,
    dist: o.dist,
    probeS: o.probeS,
    durationS: o.durationS,
    connections: ctx.connections,
    warmupS: ctx.warmupS,
    serverWarmupS: ctx.serverWarmupS,
    stages: o.stages === null ? 'all' : o.stages.join(','),
    cpuQuota: o.cpuQuota === null ? 'none' : `${o.cpuQuota} cores per Hop`,
    dbCpuQuota: o.dbCpuQuota === null ? 'none' : `${o.dbCpuQuota} cores per PostgreSQL server`,
  });
  const selected = (s: PlaybookStage) => o.stages === null || o.stages.includes(s.stage);
  const outcomes = new Map<number, StageOutcome>();
  for (const s of PLAYBOOK_STAGES) {
    outcomes.set(s.stage, {
      stage: s,
      status: !selected(s) ? 'not selected' : s.start === undefined ? 'not available yet' : 'failed',
      reason: !selected(s) ? null : s.start === undefined ? (s.unavailable ?? 'no runner') : 'did not run',
      probe: null,
      open: null,
      details: [],
      notes: [],
    });
  }
  const runnable = PLAYBOOK_STAGES.filter((s) => s.start !== undefined && selected(s));
  let rate = o.rate;
  let rateSource = o.rate === null ? '' : '--rate';

  let cpuQuota = o.cpuQuota;
  if (cpuQuota !== null) {
    const why = await cpuQuotaUnavailable();
    if (why !== null) {
      const msg = `CPU quota of ${cpuQuota} cores NOT applied: ${why}. Hop runs without a CPU budget.`;
      ctx.log(msg);
      report.notes.push(msg);
      report.settings.cpuQuota = `${cpuQuota} cores requested, not applied`;
      cpuQuota = null;
    }
  }

  const cleanup = new Cleanup();
  try {
    if (runnable.length > 0) {
      const { dir, codes, linksFile } = await seedLinksFile(cleanup, o.links);
      const apiKey = randomApiKey();
      // One import into the embedded store, copied for each embedded stage: they then serve identical
      // data, and a copy of a closed data directory costs far less than importing again. Made when
      // the first stage asks for it (the PostgreSQL stages import the same file into their clusters).
      const seedDir = join(dir, 'seed');
      let seeded: Promise<void> | null = null;
      const seed = () => {
        seeded ??= (async () => {
          ctx.log(`importing ${fmtInt(o.links)} links into Hop`);
          let imported: ImportResult;
          try {
            imported = await importLinks(
              { dataDir: seedDir, apiKey, env: ctx.hopEnv, verbose: ctx.verbose },
              linksFile,
              o.links,
            );
          } catch (err) {
            throw new Error(`hop import failed: ${err instanceof Error ? err.message : String(err)}`);
          }
          report.data.import = imported;
          ctx.log(`imported in ${(imported.ms / 1000).toFixed(1)} s (${fmtInt(imported.linksPerS)} links/s)`);
        })();
        return seeded;
      };
      const request = redirectRequests(codes, o.dist);

      let serial = 0;
      for (const s of executionOrder(runnable, rate === null ? RATE_REFERENCE_STAGE : null)) {
        const outcome = outcomes.get(s.stage)!;
        const stageDirs: string[] = [];
        const env: StageEnv = {
          codes,
          apiKey,
          linksFile,
          cpuQuota,
          dbCpuQuota: o.dbCpuQuota,
          async freshDataDir(name) {
            await seed();
            const d = join(dir, `stage-${s.stage}-${name}-${++serial}`);
            // A lock file left by a killed importer would make Hop think the copy is in use.
            await cp(seedDir, d, { recursive: true, filter: (src) => !src.endsWith('hop.lock') });
            stageDirs.push(d);
            return d;
          },
          async emptyDir(name) {
            const d = join(dir, `stage-${s.stage}-${name}-${++serial}`);
            await mkdir(d);
            stageDirs.push(d);
            return d;
          },
        };
        ctx.log(`playbook stage ${s.stage}: ${s.name}`);
        try {
          const running = await s.start!(ctx, env);
          outcome.details = running.details;
          try {
            const sut = running.sut;
            await warmServer(ctx, sut, request);
            await running.beforeProbe?.();
            const probe = label(await closedLoop(ctx, sut, request, o.probeS), s);
            await running.afterProbe?.();
            outcome.probe = probe;
            if (rate === null) {
              rate = Math.max(1, Math.floor(probe.achievedRate / 2));
              rateSource = `half of stage ${s.stage}'s max`;
              ctx.log(`fixed open-loop rate for every stage: ${fmtInt(rate)}/s (${rateSource})`);
            }
            // Below the rate, the per-run warm-up would only build a queue that takes the request
            // timeout to drain; the server is warm from the probe it just had.
            const overloaded = probe.achievedRate < rate;
            if (overloaded) {
              running.notes.push(
                `capacity ${fmtInt(probe.achievedRate)}/s is below the fixed rate ${fmtInt(rate)}/s: ` +
                  'the open-loop run overloads it on purpose (no per-run warm-up)',
              );
            }
            await running.beforeRun?.();
            const open = label(
              await openLoop(overloaded ? { ...ctx, warmupS: 0 } : ctx, sut, request, rate, o.durationS),
              s,
            );
            await running.afterRun?.();
            outcome.open = open;
            outcome.status = 'measured';
            outcome.reason = null;
          } finally {
            await running.stop();
            outcome.notes.push(...running.notes);
          }
        } catch (err) {
          outcome.status = 'failed';
          outcome.reason = err instanceof Error ? err.message : String(err);
          ctx.log(`stage ${s.stage} failed: ${outcome.reason}`);
        } finally {
          for (const d of stageDirs) await rm(d, { recursive: true, force: true });
        }
      }
    }
  } finally {
    await cleanup.run();
  }
  return finishReport(report, outcomes, rate, rateSource);
}

/** Tables, runs, notes and data in the playbook's stage order, whatever order the stages ran in. */
function finishReport(
  report: ScenarioReport,
  outcomes: Map<number, StageOutcome>,
  rate: number | null,
  rateSource: string,
): ScenarioReport {
  const ordered = PLAYBOOK_STAGES.map((s) => outcomes.get(s.stage)!);
  for (const out of ordered) {
    if (out.status === 'failed') report.notes.push(`stage ${out.stage.stage} failed: ${out.reason}`);
    report.notes.push(...out.notes.map((n) => `stage ${out.stage.stage}: ${n}`));
  }
  if (rate !== null) {
    report.settings.rate = rate;
    report.settings.rateSource = rateSource;
  }
  report.tables.push(stagesTable(ordered));
  report.tables.push(resultsTable(ordered, rate, rateSource));
  for (const out of ordered) {
    report.tables.push(
      ...out.details.map((t) => ({
        ...t,
        title: `Stage ${out.stage.stage} (${out.stage.name}): ${t.title}`,
      })),
    );
  }
  for (const out of ordered) {
    if (out.probe !== null) report.runs.push(out.probe);
    if (out.open !== null) report.runs.push(out.open);
  }
  if (report.runs.length > 0) report.tables.push(runsTable(report.runs));
  for (const r of report.runs) noteTrouble(report, r);
  report.data.stages = ordered.map((out) => ({
    stage: out.stage.stage,
    name: out.stage.name,
    change: out.stage.change,
    status: out.status,
    reason: out.reason,
    maxRate: out.probe?.achievedRate ?? null,
    openLoop: out.open === null ? null : openLoopFigures(out.open),
    details: out.details.map((t) => ({ title: t.title, lines: t.rows.map((r) => r.join(' ')) })),
  }));
  return report;
}

function label(r: RunResult, s: PlaybookStage): RunResult {
  r.label = `stage ${s.stage} ${r.label}`;
  return r;
}

function openLoopFigures(r: RunResult) {
  return {
    targetRate: r.targetRate,
    achievedRate: r.achievedRate,
    scheduled: r.scheduled,
    completed: r.completed,
    p50: r.latency.p50,
    p99: r.latency.p99,
    p999: r.latency.p999,
    errorRate: errorRate(r),
    unfinished: r.unfinished,
  };
}

/**
 * Failed and wrong answers over the requests the schedule called for. Requests still unanswered at
 * the deadline are not in it: they are reported as unfinished, a different failure (the server was
 * too slow, not wrong).
 */
export function errorRate(r: RunResult): number {
  return r.scheduled > 0 ? (r.errorCount - r.unfinished + r.unexpected) / r.scheduled : 0;
}

export function fmtShare(x: number): string {
  if (x === 0) return '0%';
  if (x < 0.0001) return '<0.01%';
  return `${(x * 100).toFixed(x < 0.1 ? 2 : 1)}%`;
}

export function stagesTable(outcomes: readonly StageOutcome[]): Table {
  return {
    title: 'Scaling playbook stages',
    head: ['stage', 'name', 'what changes', 'status'],
    align: 'rlll',
    rows: outcomes.map((o) => [
      String(o.stage.stage),
      o.stage.name,
      o.stage.change,
      o.reason === null || o.status === 'not selected' ? o.status : `${o.status}: ${o.reason}`,
    ]),
  };
}

/** The one comparison across stages: capacity, then latency and losses at the shared fixed rate. */
export function resultsTable(
  outcomes: readonly StageOutcome[],
  rate: number | null,
  rateSource: string,
): Table {
  const rows = outcomes
    .filter((o) => o.status !== 'not selected')
    .map((o) => {
      const p = o.probe;
      const r = o.open;
      if (r === null) {
        return [
          String(o.stage.stage),
          o.stage.name,
          p === null ? '-' : fmtInt(p.achievedRate),
          '-',
          '-',
          '-',
          '-',
          '-',
          '-',
          o.status,
        ];
      }
      return [
        String(o.stage.stage),
        o.stage.name,
        p === null ? '-' : fmtInt(p.achievedRate),
        fmtMs(r.latency.p50),
        fmtMs(r.latency.p99),
        fmtMs(r.latency.p999),
        fmtShare(errorRate(r)),
        r.unfinished === 0 ? '0' : `${fmtInt(r.unfinished)} (${fmtShare(r.unfinished / r.scheduled)})`,
        fmtInt(r.achievedRate),
        o.status,
      ];
    });
  const at =
    rate === null ? 'a fixed rate' : `${fmtInt(rate)}/s${rateSource === '' ? '' : ` (${rateSource})`}`;
  return {
    title: `Redirects per stage: capacity (closed-loop) and latency at ${at} (open-loop)`,
    head: [
      'stage',
      'name',
      'max req/s',
      'p50 ms',
      'p99 ms',
      'p99.9 ms',
      'error rate',
      'unfinished',
      'achieved/s',
      'status',
    ],
    align: 'rlrrrrrrrl',
    rows,
    note:
      'max req/s is the closed-loop capacity; the percentiles, error rate, unfinished and achieved rate come ' +
      'from one open-loop run per stage at the same fixed rate, latency counted from the intended send time. ' +
      'Percentiles cover answered requests only; unfinished requests were still queued or in flight when the ' +
      "run's deadline passed (its duration plus the 10 s request timeout and 1 s) and count as neither answer nor error.",
  };
}
