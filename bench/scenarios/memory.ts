// The memory scenario: what Hop holds resident, phase by phase, beside bare node:http measured the
// same way: start-up on an empty data directory and idle; the redirect bench's load on --links
// links inside a container-sized memory cgroup; `hop import` of --import links and the same load on
// them; then redirect and create capacity of Hop's defaults against Hop as before, in one run.
import { cp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readRssKb } from '../lib/child.ts';
import { readMemoryParts, waitForClickWriter } from '../lib/hop-metrics.ts';
import { ensureHopBundle, type HopSetup, importLinks } from '../lib/hop-process.ts';
import { linkUrl, randomApiKey, randomCodes, writeLinksJsonl } from '../lib/links.ts';
import type { RequestFactory } from '../lib/load.ts';
import {
  BEFORE,
  limitTable,
  type PhaseFigures,
  type PhaseParts,
  partsTable,
  phaseTable,
  type ServerFigures,
  type SpeedFigures,
  speedTable,
  targetsTable,
  verdicts,
} from '../lib/memory-figures.ts';
import { fmtInt, newReport, runsTable, type ScenarioReport } from '../lib/report.ts';
import { sampleFromSpawn } from '../lib/rss-sampler.ts';
import { startWatched, type Watched, watchedFigures } from '../lib/watched-server.ts';
import {
  alternateProbes,
  type BenchContext,
  best,
  Cleanup,
  checkRedirect,
  openLoop,
  type Sut,
  seedLinksFile,
  startBaseline,
  startHopSut,
  touchEveryLink,
  warmServer,
} from './common.ts';
import { createRequests } from './create.ts';
import { noteTrouble, redirectRequests } from './redirect.ts';

export const MEMORY_PARTS = ['start', 'load', 'import', 'speed'] as const;
export type MemoryPart = (typeof MEMORY_PARTS)[number];

export interface MemoryOptions {
  links: number;
  /** Links of the import phase; 0 skips it. */
  importLinks: number;
  idleS: number;
  probeS: number;
  rounds: number;
  durationS: number;
  limitMib: number;
  parts: MemoryPart[];
}

/** The database settings Hop had before its memory budget (PostgreSQL's buffers, TurboFan). */
const DB_AS_BEFORE = { HOP_DB_BUFFERS_MB: '128', HOP_DB_COMPILER: 'optimizing' };
const SPEED_SYSTEMS: { name: string; env: Record<string, string>; entry: 'bin' | 'sources' }[] = [
  { name: 'hop', env: {}, entry: 'bin' },
  { name: 'hop, db buffers 128 MB + optimizing', env: DB_AS_BEFORE, entry: 'bin' },
  { name: BEFORE, env: DB_AS_BEFORE, entry: 'sources' },
];

interface Env {
  ctx: BenchContext;
  o: MemoryOptions;
  report: ScenarioReport;
  dir: string;
  apiKey: string;
}

export async function runMemory(ctx: BenchContext, o: MemoryOptions): Promise<ScenarioReport> {
  const { parts, ...settings } = o;
  const report = newReport('memory', { ...settings, parts: parts.join(','), dist: 'zipf' });
  const cleanup = new Cleanup();
  const phases: PhaseFigures[] = [];
  let speed: SpeedFigures[] = [];
  try {
    const { dir, codes, linksFile } = await seedLinksFile(cleanup, o.links);
    const env: Env = { ctx, o, report, dir, apiKey: randomApiKey() };
    const attempt = async (what: string, fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (err) {
        const why = `${what} failed: ${err instanceof Error ? err.message : String(err)}`;
        report.notes.push(why);
        ctx.log(why);
      }
    };
    if (parts.includes('start'))
      await attempt('start/idle', async () => phases.push(...(await startIdle(env))));
    const seedDir = join(dir, 'seed');
    if (parts.includes('load') || parts.includes('speed')) {
      ctx.log(`importing ${fmtInt(o.links)} links into a seed data directory`);
      await importLinks(hopSetup(env, seedDir), linksFile, o.links);
    }
    if (parts.includes('load')) {
      await attempt('load', async () => {
        await cp(seedDir, join(dir, 'load'), { recursive: true });
        phases.push(await serve(env, 'load', join(dir, 'load'), linksFile, codes));
      });
    }
    if (parts.includes('import') && o.importLinks > 0)
      await attempt('import', async () => phases.push(...(await importPhase(env))));
    if (parts.includes('speed'))
      await attempt('speed', async () => (speed = await speedPhase(env, seedDir, codes)));
  } finally {
    await cleanup.run();
  }
  const v = verdicts(phases, speed);
  if (phases.length > 0) report.tables.push(phaseTable(phases));
  if (phases.some((p) => p.parts != null)) report.tables.push(partsTable(phases));
  if (phases.some((p) => p.phase === 'load' || p.phase === 'import-load'))
    report.tables.push(limitTable(phases, o.limitMib));
  if (speed.length > 0) report.tables.push(speedTable(speed));
  report.tables.push(targetsTable(v));
  if (report.runs.length > 0) report.tables.push(runsTable(report.runs));
  for (const r of report.runs) noteTrouble(report, r);
  report.data = { phases, speed, targets: v };
  return report;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/**
 * The setup of a Hop about to start. Its bundle is brought up to date first, every time: sources
 * edited during a run would otherwise have bin/hop.js rebuild it inside the measured process's start
 * (and memory cgroup).
 */
function hopSetup(env: Env, dataDir: string, extra: Partial<HopSetup> = {}): HopSetup {
  const problem = ensureHopBundle();
  if (problem !== null && !env.report.notes.includes(problem)) env.report.notes.push(problem);
  return { dataDir, apiKey: env.apiKey, env: env.ctx.hopEnv, verbose: env.ctx.verbose, ...extra };
}

/** Phases 1 and 2: Hop on an empty data directory until /readyz answers, then idle; the baseline alike. */
async function startIdle(env: Env): Promise<PhaseFigures[]> {
  const { ctx, o, dir } = env;
  const cleanup = new Cleanup();
  try {
    const empty = join(dir, 'empty.jsonl');
    await writeFile(empty, '');
    ctx.log('start: Hop on an empty data directory, until /readyz answers');
    const setup = hopSetup(env, join(dir, 'empty-data'), { readyPath: '/readyz' });
    const hop = await startWatched(null, (x) => startHopSut({ ...setup, ...x }));
    cleanup.add(hop.stop);
    const hopStart = await watchedFigures('hop', hop, null);
    const base = await startWatched(null, (x) =>
      startBaseline('map', empty, ctx.verbose, { bundleDir: dir, ...x }),
    );
    cleanup.add(base.stop);
    const baseStart = await watchedFigures('node:http', base, null);
    ctx.log(`idle: ${o.idleS} s without traffic`);
    hop.rss.window();
    base.rss.window();
    await new Promise((r) => setTimeout(r, o.idleS * 1000));
    const ready = `ready in ${seconds(hop.readyMs)} (node:http ${seconds(base.readyMs)})`;
    const parts = await partsOf(hop.server);
    return [
      { phase: 'start', label: 'start', hop: hopStart, baseline: baseStart, detail: ready },
      {
        phase: 'idle',
        label: 'idle',
        hop: await watchedFigures('hop', hop, null),
        baseline: await watchedFigures('node:http', base, null),
        detail: `after ${o.idleS} s without traffic`,
        parts,
      },
    ];
  } finally {
    await cleanup.run();
  }
}

/**
 * Hop on `dataDir` and the baseline on the same links, each in a memory cgroup, under the redirect
 * bench's load: the cached links touched, warm-up, closed-loop probes, then one open-loop run at half
 * the baseline's best. The RSS window opens once a server is ready.
 */
async function serve(
  env: Env,
  phase: 'load' | 'import-load',
  dataDir: string,
  linksFile: string,
  codes: readonly string[],
): Promise<PhaseFigures> {
  const { ctx, o, report } = env;
  const label = `${fmtInt(codes.length)} links`;
  const cleanup = new Cleanup();
  try {
    ctx.log(`${phase}: Hop and node:http on ${label}, ${o.limitMib} MiB memory limit each`);
    const names = { hop: `hop, ${label}`, base: `node:http, ${label}` };
    const setup = hopSetup(env, dataDir);
    const limit = (who: string) => ({ mib: o.limitMib, label: who, notes: report.notes });
    const hop = await startWatched(limit('hop'), async (x) => ({
      ...(await startHopSut({ ...setup, ...x })),
      name: names.hop,
    }));
    cleanup.add(hop.stop);
    const base = await startWatched(limit('baseline'), async (x) => ({
      ...(await startBaseline('map', linksFile, ctx.verbose, { bundleDir: env.dir, ...x })),
      name: names.base,
    }));
    cleanup.add(base.stop);
    hop.rss.window();
    base.rss.window();
    const request = redirectRequests(codes, 'zipf');
    let detail: string;
    try {
      for (const w of [hop, base]) await prepare(ctx, w.server, codes, request);
      const probes = await alternateProbes(ctx, [hop.server, base.server], request, o, report);
      const hopMax = best(probes.get(names.hop) ?? []);
      const rate = Math.max(1, Math.floor((best(probes.get(names.base) ?? []) ?? hopMax)!.achievedRate / 2));
      for (const w of [hop, base])
        report.runs.push(await openLoop(ctx, w.server, request, rate, o.durationS));
      detail = `Hop max ${fmtInt(hopMax?.achievedRate ?? 0)} req/s; open-loop @ ${fmtInt(rate)}/s`;
    } catch (err) {
      // A server the limit killed ends the load; what the phase saw until then is still the result.
      const proc = hop.server.hop.child.proc;
      const exit = proc.signalCode ?? proc.exitCode;
      detail = exit === null ? 'the load stopped early (see the notes)' : `Hop exited (${exit}) under load`;
      report.notes.push(
        `${phase}: the load stopped early: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    // Survived: the process is still there and still answers a redirect. A gone one has no end RSS.
    const figures = async (w: Watched<Sut>) => {
      const alive = readRssKb(w.server.pid) !== null;
      const up = alive && (await checkRedirect(w.server, codes[0]!, linkUrl(0))) === null;
      const f = await watchedFigures(w.server.name, w, up);
      if (!alive) f.rss.lastKb = null;
      return f;
    };
    return {
      phase,
      label: phase === 'load' ? `load, ${label}` : 'load after the import',
      hop: await figures(hop),
      baseline: await figures(base),
      detail,
      parts: await partsOf(hop.server),
    };
  } finally {
    await cleanup.run();
  }
}

/**
 * As the redirect bench readies a server: one checked redirect, every link Hop's cache can hold
 * requested once (touching more would only evict them again), then untimed load.
 */
async function prepare(ctx: BenchContext, sut: Sut, codes: readonly string[], request: RequestFactory) {
  const problem = await checkRedirect(sut, codes[0]!, linkUrl(0));
  if (problem !== null) throw new Error(problem);
  const cached = codes.slice(0, Number(ctx.hopEnv.HOP_CACHE_SIZE ?? 100_000));
  if (cached.length > 0) await touchEveryLink(ctx, sut, cached);
  await warmServer(ctx, sut, request);
}

/** Where a running Hop's memory is now, by its own gauges; null when it does not answer. */
async function partsOf(sut: Sut): Promise<PhaseParts | null> {
  const parts = await readMemoryParts(sut.target);
  return parts === null ? null : { rssKb: readRssKb(sut.pid), parts };
}

/** Phase 4: `hop import` into a fresh data directory, sampled, then the serving phase on it. */
async function importPhase(env: Env): Promise<PhaseFigures[]> {
  const { ctx, o, dir } = env;
  const codes = randomCodes(o.importLinks);
  const file = join(dir, 'import.jsonl');
  await writeLinksJsonl(file, codes);
  ctx.log(`import: hop import of ${fmtInt(o.importLinks)} links into a fresh data directory`);
  const sampled = sampleFromSpawn();
  const dataDir = join(dir, 'import-data');
  const imported = await importLinks(
    hopSetup(env, dataDir, { onSpawn: sampled.onSpawn }),
    file,
    o.importLinks,
  );
  // The process has gone: only its peak means something.
  const rss = { ...sampled.rss!.stop(), lastKb: null };
  const run: ServerFigures = { name: 'hop import', rss, limit: null, survived: null };
  return [
    {
      phase: 'import',
      label: `hop import, ${fmtInt(o.importLinks)} links`,
      hop: run,
      baseline: null,
      detail: `${seconds(imported.ms)}, ${fmtInt(imported.linksPerS)} links/s`,
    },
    await serve(env, 'import-load', dataDir, file, codes),
  ];
}

/**
 * Phase 5: redirect and create capacity of Hop's defaults, of the same bundle with the database
 * settings as before, and of Hop as before (sources through tsx), unconfined, alternating probes.
 */
async function speedPhase(env: Env, seedDir: string, codes: readonly string[]): Promise<SpeedFigures[]> {
  const { ctx, o, report, dir, apiKey } = env;
  const cleanup = new Cleanup();
  try {
    const suts: Sut[] = [];
    for (const [i, s] of SPEED_SYSTEMS.entries()) {
      const dataDir = join(dir, `speed-${i}`);
      await cp(seedDir, dataDir, { recursive: true });
      ctx.log(`speed: starting ${s.name}`);
      const hop = await startHopSut(
        hopSetup(env, dataDir, { entry: s.entry, env: { ...ctx.hopEnv, ...s.env } }),
      );
      cleanup.add(() => hop.stop());
      suts.push({ ...hop, name: s.name });
    }
    const redirects = redirectRequests(codes, 'zipf');
    for (const sut of suts) {
      await prepare(ctx, sut, codes, redirects);
      await waitForClickWriter(sut.target, false);
    }
    const writes = async (sut: Sut) => void (await waitForClickWriter(sut.target, false));
    const reads = await alternateProbes(ctx, suts, redirects, o, report, writes);
    // Every create a distinct URL across all probes and Hops, so nothing is deduplicated.
    const create = createRequests(apiKey, 0);
    let n = 0;
    const creates = () => create(n++);
    for (const sut of suts) await warmServer(ctx, sut, creates);
    const made = await alternateProbes(ctx, suts, creates, o, report);
    return suts.map((sut) => ({
      name: sut.name,
      redirectMax: best(reads.get(sut.name) ?? [])?.achievedRate ?? null,
      createMax: best(made.get(sut.name) ?? [])?.achievedRate ?? null,
      rssKbAfter: readRssKb(sut.pid),
    }));
  } finally {
    await cleanup.run();
  }
}
