// The playbook stages that run on Hop's embedded default (PGlite in the Hop process): one Hop, its
// data prepared before it starts, with or without its in-process cache.
import type { CpuCgroup } from '../../scripts/lib/cpu-cgroup.ts';
import { type CacheCounts, cacheCountsDelta, readCacheCounts } from '../lib/hop-metrics.ts';
import { linkUrl } from '../lib/links.ts';
import { fmtInt } from '../lib/report.ts';
import { adminStore, REDIRECT_LOOKUP_SQL } from '../lib/store-admin.ts';
import type { RunningStage, StageEnv } from '../playbook.ts';
import {
  type BenchContext,
  checkRedirect,
  confineSut,
  startHopSut,
  throttlingNote,
  touchEveryLink,
} from './common.ts';

export interface EmbeddedStageOptions {
  /** The deliberately naive schema: no primary key, so no index on code. */
  dropPrimaryKey: boolean;
  /** Hop's in-process cache as configured by default, filled with every link before the load. */
  cache: boolean;
  /** Show the plan of the redirect lookup. */
  explain: boolean;
}

export function embeddedStage(
  o: EmbeddedStageOptions,
): (ctx: BenchContext, env: StageEnv) => Promise<RunningStage> {
  return async (ctx, env) => {
    const name = [o.dropPrimaryKey ? 'no-pkey' : 'pkey', o.cache ? 'cache' : 'nocache'].join('-');
    const dataDir = await env.freshDataDir(name);
    const code = env.codes[0]!;
    const details: RunningStage['details'] = [];
    const notes: string[] = [];

    // The store is changed and inspected before Hop opens it: PGlite takes one process per data dir.
    if (o.dropPrimaryKey || o.explain) {
      ctx.log(
        `${o.dropPrimaryKey ? 'dropping links_pkey, analyzing' : 'analyzing'} and explaining the lookup`,
      );
      const admin = await adminStore(
        { dataDir, dropPrimaryKey: o.dropPrimaryKey, explainCode: code },
        ctx.verbose,
      );
      if (o.explain) {
        details.push({
          title: `EXPLAIN (ANALYZE, BUFFERS) ${REDIRECT_LOOKUP_SQL} with $1 = '${code}'`,
          head: ['QUERY PLAN'],
          align: 'l',
          rows: admin.plan.map((line) => [line]),
          note: `${fmtInt(admin.rows)} rows in links; indexes on links: ${admin.indexes.map((i) => i.split(':')[0]).join(', ') || 'none'}.`,
        });
      }
      if (o.dropPrimaryKey && admin.indexes.some((i) => /\(code\)/.test(i))) {
        notes.push('an index on code survived dropping links_pkey; the stage does not measure what it says');
      }
    }

    const setup = {
      dataDir,
      apiKey: env.apiKey,
      env: { ...(o.cache ? {} : { HOP_CACHE_SIZE: '0' }), ...ctx.hopEnv },
      verbose: ctx.verbose,
    };
    const hop = await startHopSut(setup);
    let group: CpuCgroup | null = null;
    const stop = async () => {
      if (group !== null) {
        const t = await throttlingNote(group, 'Hop');
        if (t !== null) notes.push(t);
      }
      await hop.stop();
      // Only once Hop has gone: a cgroup with a process in it cannot be removed.
      if (group !== null) await group.remove();
    };
    try {
      group = await confineSut(ctx, hop, env.cpuQuota, `stage-${name}`, notes);
      const problem = await checkRedirect(hop, code, linkUrl(0));
      if (problem !== null) throw new Error(problem);
      if (o.cache) await touchEveryLink(ctx, hop, env.codes);
    } catch (err) {
      await stop();
      throw err;
    }

    // Cache counters around the measured run say whether the cache did what the stage claims.
    let before: CacheCounts | null = null;
    return {
      sut: hop,
      details,
      notes,
      beforeRun: async () => {
        before = await readCacheCounts(hop.target);
      },
      afterRun: async () => {
        const after = await readCacheCounts(hop.target);
        if (before === null || after === null) return;
        const d = cacheCountsDelta(before, after);
        const lookups = d.hit + d.miss + d.negative;
        // With the cache off Hop counts no lookups at all; saying so is the check that it was off.
        notes.push(
          lookups === 0
            ? 'no cache lookups during the open-loop run (cache off)'
            : `cache during the open-loop run: ${((100 * (d.hit + d.negative)) / lookups).toFixed(1)}% hits of ${fmtInt(lookups)} lookups`,
        );
      },
      stop,
    };
  };
}
