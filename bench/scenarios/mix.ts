// The mix scenario: redirects and creates on the same Hop in a fixed ratio, since writes contend
// with reads for the one embedded database and the cache.
import { join } from 'node:path';
import { importLinks } from '../lib/hop-process.ts';
import { type Distribution, linkUrl, randomApiKey } from '../lib/links.ts';
import type { RequestFactory } from '../lib/load.ts';
import { fmtInt, latencyRow, newReport, runsTable, type ScenarioReport } from '../lib/report.ts';
import {
  type BenchContext,
  Cleanup,
  checkRedirect,
  closedLoop,
  openLoop,
  seedLinksFile,
  startHopSut,
  warmServer,
} from './common.ts';
import { createRequests } from './create.ts';
import { noteTrouble, redirectRequests } from './redirect.ts';

export interface MixOptions {
  /** Reads per write. */
  ratio: number;
  links: number;
  dist: Distribution;
  durationS: number;
  probeS: number;
}

function mixRequests(read: RequestFactory, write: RequestFactory, ratio: number): RequestFactory {
  const period = Math.round(ratio) + 1;
  return (i) => {
    if (i % period === period - 1) return write(i);
    const r = read(i);
    r.kind = 'read';
    return r;
  };
}

export async function runMix(ctx: BenchContext, o: MixOptions): Promise<ScenarioReport> {
  const report = newReport('mix', {
    ratio: `${o.ratio}:1`,
    links: o.links,
    dist: o.dist,
    probeS: o.probeS,
    durationS: o.durationS,
    connections: ctx.connections,
  });
  const cleanup = new Cleanup();
  try {
    const { dir, codes, linksFile } = await seedLinksFile(cleanup, o.links);
    const apiKey = randomApiKey();
    const setup = { dataDir: join(dir, 'hop-data'), apiKey, env: ctx.hopEnv, verbose: ctx.verbose };
    let hop: Awaited<ReturnType<typeof startHopSut>>;
    try {
      ctx.log(`importing ${fmtInt(o.links)} links into Hop`);
      report.data.import = await importLinks(setup, linksFile, o.links);
      hop = await startHopSut(setup);
    } catch (err) {
      report.notes.push(`Hop could not be benchmarked: ${err instanceof Error ? err.message : String(err)}`);
      return report;
    }
    cleanup.add(() => hop.stop());
    const problem = await checkRedirect(hop, codes[0]!, linkUrl(0));
    if (problem !== null) {
      report.notes.push(problem);
      return report;
    }
    const read = redirectRequests(codes, o.dist);
    await warmServer(ctx, hop, mixRequests(read, createRequests(apiKey, 200_000_000), o.ratio));
    const closed = await closedLoop(
      ctx,
      hop,
      mixRequests(read, createRequests(apiKey, 0), o.ratio),
      o.probeS,
    );
    report.runs.push(closed);
    const rate = Math.max(1, Math.floor(closed.achievedRate / 2));
    report.settings.openLoopRate = rate;
    const open = await openLoop(
      ctx,
      hop,
      mixRequests(read, createRequests(apiKey, 100_000_000), o.ratio),
      rate,
      o.durationS,
    );
    report.runs.push(open);
    const rows: string[][] = [];
    for (const r of [closed, open]) {
      const name = r.mode === 'closed-loop' ? 'closed-loop' : `open-loop @ ${fmtInt(rate)}/s`;
      rows.push(latencyRow(`${name}, all`, r.latency));
      for (const [kind, s] of Object.entries(r.latencyByKind)) rows.push(latencyRow(`${name}, ${kind}s`, s));
    }
    report.tables.push({
      title: `Read/write mix ${o.ratio}:1 — max ${fmtInt(closed.achievedRate)} req/s closed-loop; latency (ms)`,
      head: ['run', 'count', 'p50', 'p90', 'p99', 'p99.9', 'max'],
      rows,
    });
    report.tables.push(runsTable(report.runs));
    report.data.summary = { maxRate: closed.achievedRate, rate, byKind: open.latencyByKind };
    for (const r of report.runs) noteTrouble(report, r);
    return report;
  } finally {
    await cleanup.run();
  }
}
