// The playbook stages that run on PostgreSQL servers: a fresh cluster per stage (each server under
// its own CPU budget), the playbook's links imported into it with `hop import`, and one Hop with its
// cache off in front of it. The notes and a table per stage say what each server did during the runs.

import type { CpuCgroup } from '../../scripts/lib/cpu-cgroup.ts';
import {
  type BenchCluster,
  type ClusterSample,
  type ClusterWindow,
  clusterWindow,
  explainOnCluster,
  fmtRefused,
  importIntoCluster,
  sampleCluster,
  serverWindowsTable,
  startBenchCluster,
  withoutCpuBudget,
} from '../lib/bench-cluster.ts';
import { type CacheCounts, cacheCountsDelta, readCacheCounts } from '../lib/hop-metrics.ts';
import { linkUrl } from '../lib/links.ts';
import { fmtInt, type Table } from '../lib/report.ts';
import type { RunningStage, StageEnv } from '../playbook.ts';
import {
  type BenchContext,
  checkRedirect,
  confineSut,
  type Sut,
  startHopSut,
  throttlingNote,
} from './common.ts';

export interface ClusterStageOptions {
  shards: number;
  /** Streaming replicas per shard. */
  replicas: number;
  /** HOP_PRIMARY_READS=on: each primary takes its turn in the read rotation beside its replicas. */
  primaryReads: boolean;
}

export function clusterStage(
  o: ClusterStageOptions,
): (ctx: BenchContext, env: StageEnv) => Promise<RunningStage> {
  return async (ctx, env) => {
    const name = `pg-${o.shards}s-${o.replicas}r`;
    const details: Table[] = [];
    const notes: string[] = [];
    let bc: BenchCluster | null = null;
    let hop: Sut | null = null;
    let group: CpuCgroup | null = null;
    const windows: { label: string; window: ClusterWindow }[] = [];
    let stopped = false;
    const stop = async () => {
      if (stopped) return;
      stopped = true;
      try {
        if (windows.length > 0) {
          details.push(serverWindowsTable('database servers during the runs', windows));
          for (const { label, window } of windows) {
            for (const s of window.servers) {
              const refused = fmtRefused(s.pool);
              if (refused !== '0' && refused !== 'n/a') {
                notes.push(`${label}: Hop was refused connections to ${s.name}: ${refused}`);
              }
            }
          }
        }
        if (group !== null) {
          const t = await throttlingNote(group, 'Hop');
          if (t !== null) notes.push(t);
        }
        if (hop !== null) await hop.stop();
        // Only once Hop has gone: a cgroup with a process in it cannot be removed.
        if (group !== null) await group.remove();
      } finally {
        // The cluster goes whatever failed before: it holds servers, cgroups and a directory.
        await bc?.stop();
      }
    };

    try {
      bc = await startBenchCluster({
        shards: o.shards,
        replicas: o.replicas,
        cpuQuota: env.dbCpuQuota,
        verbose: ctx.verbose,
        log: ctx.log,
      });
      notes.push(...bc.notes);
      const setup = {
        dataDir: await env.emptyDir(name),
        apiKey: env.apiKey,
        env: {
          HOP_DATABASE_URLS: bc.urls,
          HOP_CACHE_SIZE: '0',
          ...(o.primaryReads ? { HOP_PRIMARY_READS: 'on' } : {}),
          ...ctx.hopEnv,
        },
        verbose: ctx.verbose,
      };
      ctx.log(`importing ${fmtInt(env.codes.length)} links into the cluster with hop import`);
      const cluster = bc;
      // Seeding and explaining are setup: the servers' budgets apply from the first request on.
      const imported = await withoutCpuBudget(cluster, async () => {
        const result = await importIntoCluster(cluster, setup, env.linksFile, env.codes.length);
        ctx.log('analyzing and explaining the lookup on every server');
        details.push(...(await explainOnCluster(cluster, env.codes)));
        return result;
      });
      notes.push(
        `hop import into the cluster: ${fmtInt(env.codes.length)} links in ${(imported.ms / 1000).toFixed(1)} s ` +
          `(${fmtInt(imported.linksPerS)} links/s), the servers' CPU budgets lifted meanwhile`,
      );
      hop = await startHopSut(setup);
      group = await confineSut(ctx, hop, env.cpuQuota, `stage-${name}`, notes);
      const problem = await checkRedirect(hop, env.codes[0]!, linkUrl(0));
      if (problem !== null) throw new Error(problem);
      const budget = bc.cpuQuota === null ? 'no CPU budget' : `${bc.cpuQuota} cores each`;
      notes.push(
        `PostgreSQL 15: ${bc.cluster.servers.map((s) => s.name).join(', ')} (${budget}); Hop cache off` +
          (o.primaryReads ? ', HOP_PRIMARY_READS=on' : '') +
          // Hop's default, as in the other stages: every redirect's click is written to a primary.
          (ctx.hopEnv.HOP_CLICK_RECORDING === 'off'
            ? ''
            : '; click recording on, its writes go to the primary'),
      );
    } catch (err) {
      await stop();
      throw err;
    }

    const cluster = bc.cluster;
    const sut = hop;
    let sample: ClusterSample | null = null;
    let cacheBefore: CacheCounts | null = null;
    const open = async () => {
      sample = await sampleCluster(cluster, sut.target);
    };
    const close = async (label: string) => {
      if (sample === null) return;
      windows.push({
        label,
        window: clusterWindow(cluster, sample, await sampleCluster(cluster, sut.target)),
      });
      sample = null;
    };
    return {
      sut,
      details,
      notes,
      beforeProbe: open,
      afterProbe: () => close('closed-loop probe'),
      beforeRun: async () => {
        cacheBefore = await readCacheCounts(sut.target);
        await open();
      },
      afterRun: async () => {
        await close('open-loop run');
        const after = await readCacheCounts(sut.target);
        if (cacheBefore === null || after === null) return;
        const d = cacheCountsDelta(cacheBefore, after);
        const lookups = d.hit + d.miss + d.negative;
        notes.push(
          lookups === 0
            ? 'no cache lookups during the open-loop run (cache off)'
            : `the cache answered during the open-loop run (${fmtInt(lookups)} lookups): it was meant to be off`,
        );
      },
      stop,
    };
  };
}
