// The memory scenario: for each data size, a fresh Hop's import speed and resident memory after
// start and after redirect load, to see what a million links cost in RAM.
import { join } from 'node:path';
import { readRssKb } from '../lib/child.ts';
import { importLinks, makeTempDir, removeDir } from '../lib/hop-process.ts';
import { linkUrl, randomApiKey, randomCodes, writeLinksJsonl } from '../lib/links.ts';
import { fmtInt, fmtKb, newReport, type ScenarioReport } from '../lib/report.ts';
import { type BenchContext, Cleanup, checkRedirect, closedLoop, startHopSut } from './common.ts';
import { noteTrouble, redirectRequests } from './redirect.ts';

export interface MemoryOptions {
  sizes: number[];
  durationS: number;
}

interface SizeResult {
  links: number;
  importMs: number | null;
  importLinksPerS: number | null;
  rssKbAfterStart: number | null;
  rssKbAfterLoad: number | null;
  loadRate: number | null;
  error: string | null;
}

export async function runMemory(ctx: BenchContext, o: MemoryOptions): Promise<ScenarioReport> {
  const report = newReport('memory', { sizes: o.sizes.join(','), durationS: o.durationS, dist: 'uniform' });
  const results: SizeResult[] = [];
  for (const size of o.sizes) results.push(await measureSize(ctx, report, size, o.durationS));
  report.tables.push({
    title: 'Hop memory and import speed by size',
    head: ['links', 'import s', 'import links/s', 'RSS after start', 'RSS after load', 'load req/s'],
    rows: results.map((r) => [
      fmtInt(r.links),
      r.importMs === null ? '-' : (r.importMs / 1000).toFixed(1),
      r.importLinksPerS === null ? '-' : fmtInt(r.importLinksPerS),
      fmtKb(r.rssKbAfterStart),
      fmtKb(r.rssKbAfterLoad),
      r.loadRate === null ? '-' : fmtInt(r.loadRate),
    ]),
    note:
      'Load: closed-loop redirects drawn uniformly over all links, so the cache sees every key. ' +
      'Import time includes starting the hop process.',
  });
  report.data.sizes = results;
  return report;
}

async function measureSize(ctx: BenchContext, report: ScenarioReport, size: number, durationS: number) {
  const out: SizeResult = {
    links: size,
    importMs: null,
    importLinksPerS: null,
    rssKbAfterStart: null,
    rssKbAfterLoad: null,
    loadRate: null,
    error: null,
  };
  const cleanup = new Cleanup();
  try {
    const dir = await makeTempDir('hop-bench');
    cleanup.add(() => removeDir(dir));
    const codes = randomCodes(size);
    const file = join(dir, 'links.jsonl');
    await writeLinksJsonl(file, codes);
    const setup = {
      dataDir: join(dir, 'hop-data'),
      apiKey: randomApiKey(),
      env: ctx.hopEnv,
      verbose: ctx.verbose,
    };
    ctx.log(`memory: importing ${fmtInt(size)} links`);
    const imported = await importLinks(setup, file, size);
    out.importMs = imported.ms;
    out.importLinksPerS = imported.linksPerS;
    const hop = await startHopSut(setup);
    cleanup.add(() => hop.stop());
    out.rssKbAfterStart = readRssKb(hop.pid);
    const problem = await checkRedirect(hop, codes[0]!, linkUrl(0));
    if (problem !== null) throw new Error(problem);
    const run = await closedLoop(ctx, hop, redirectRequests(codes, 'uniform'), durationS);
    run.label = `hop ${fmtInt(size)} links`;
    report.runs.push(run);
    noteTrouble(report, run);
    out.loadRate = run.achievedRate;
    out.rssKbAfterLoad = readRssKb(hop.pid);
  } catch (err) {
    out.error = err instanceof Error ? err.message : String(err);
    report.notes.push(`${fmtInt(size)} links: ${out.error}`);
  } finally {
    await cleanup.run();
  }
  return out;
}
