// The clicks scenario: what recording clicks costs the redirect path. Two Hops with the same links,
// one recording clicks and one not, are loaded alike and alternately in one run, with browser-like
// requests (user agents and referrers vary, as enrichment sees them). Hop's own counters tell how many
// clicks were recorded, written and dropped, so a fast run that dropped its clicks shows as such.
import { join } from 'node:path';
import { readCpuMs } from '../lib/child.ts';
import { readCounters, waitForClickWriter } from '../lib/hop-metrics.ts';
import { importLinks } from '../lib/hop-process.ts';
import { type Distribution, indexSampler, linkUrl, randomApiKey, seededRandom } from '../lib/links.ts';
import type { RequestFactory } from '../lib/load.ts';
import type { RunResult } from '../lib/recorder.ts';
import { fmtInt, fmtMs, fmtPct, newReport, runsTable, type ScenarioReport } from '../lib/report.ts';
import {
  alternateProbes,
  type BenchContext,
  best,
  Cleanup,
  checkRedirect,
  openLoop,
  type Sut,
  seedLinksFile,
  startHopSut,
  touchEveryLink,
  warmServer,
} from './common.ts';
import { noteTrouble } from './redirect.ts';

export interface ClicksOptions {
  links: number;
  dist: Distribution;
  probeS: number;
  rounds: number;
  durationS: number;
  rate: number | null;
}

// A spread of real browsers and one crawler, as a shortener's traffic has.
const AGENTS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36',
  'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0',
  'Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0',
  'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
];
const REFERRERS = [
  undefined,
  undefined,
  'https://www.google.com/',
  'https://t.co/abc',
  'https://news.ycombinator.com/item?id=1',
  'https://www.reddit.com/r/programming/',
  'https://mail.example.com/inbox',
  'https://www.linkedin.com/feed/',
];

const CLIENTS = 20_000;

/**
 * Redirects as browsers send them: twenty thousand clients (public IPv4 addresses, passed on by a
 * trusted proxy in X-Forwarded-For, each with its own user agent), with varying referrers. Hop then
 * hashes and geolocates real addresses, not one loopback peer.
 */
export function browserRedirects(codes: readonly string[], dist: Distribution): RequestFactory {
  const paths = codes.map((c) => `/${c}`);
  const next = indexSampler(paths.length, dist);
  const rnd = seededRandom(11);
  const clients = Array.from({ length: CLIENTS }, (_, i) => {
    const ip = [
      1 + Math.floor(rnd() * 222),
      Math.floor(rnd() * 256),
      Math.floor(rnd() * 256),
      1 + Math.floor(rnd() * 254),
    ];
    if (ip[0] === 10 || ip[0] === 127) ip[0] = 81;
    return { ip: ip.join('.'), ua: AGENTS[i % AGENTS.length]! };
  });
  const nextClient = indexSampler(CLIENTS, 'zipf', 13);
  return () => {
    const c = clients[nextClient()]!;
    const ref = REFERRERS[Math.floor(rnd() * REFERRERS.length)];
    const headers: Record<string, string> = { 'user-agent': c.ua, 'x-forwarded-for': c.ip };
    if (ref !== undefined) headers.referer = ref;
    return { method: 'GET', path: paths[next()]!, headers, expect: 'redirect' };
  };
}

const COUNTERS = [
  'hop_clicks_recorded_total',
  'hop_clicks_dropped_total',
  'hop_clicks_written_total',
  'hop_clicks_folded_total',
  'hop_click_fold_rows_total',
];
// The recording Hop folds at least this often, so that folds fall within the run (and their cost
// is counted) rather than after it; the default (5 min) sums over longer windows, into fewer rows.
const FOLD_MS = 10_000;

// Where a probe's CPU went: with the click writer on the database's thread, recording shows as
// that thread's CPU, and as idle cores when the threads on two cores wait on each other.
const threadCpu = (r: RunResult) => {
  const t = r.server?.threads;
  return t == null ? '-' : `${fmtPct(t.mainPercent)} / ${fmtPct(t.busiestOtherPercent)}`;
};
// The redirect thread's own CPU per redirect: what recording costs a redirect tier whose click
// writer runs on cores (or machines) of its own.
const mainPerRedirect = (r: RunResult): number | null => {
  const t = r.server?.threads;
  return t == null || r.completed === 0 ? null : (t.mainPercent * r.elapsedS * 1e4) / r.completed;
};
const fmtUs = (us: number | null) => (us === null ? '-' : us.toFixed(1));
const ratio = (a: number | null, b: number | null) => (a === null || b === null ? '-' : (a / b).toFixed(3));
const idleAndGenerator = (r: RunResult) =>
  `${fmtPct(r.server?.machineIdlePercent ?? null)}, ${fmtPct(r.generator.cpuPercent)}`;

export async function runClicks(ctx: BenchContext, o: ClicksOptions): Promise<ScenarioReport> {
  const report = newReport('clicks', {
    links: o.links,
    dist: o.dist,
    probeS: o.probeS,
    durationS: o.durationS,
    rounds: o.rounds,
    connections: ctx.connections,
  });
  const cleanup = new Cleanup();
  try {
    const { dir, codes, linksFile } = await seedLinksFile(cleanup, o.links);
    const request = browserRedirects(codes, o.dist);
    const suts: Sut[] = [];
    const shapes: [string, Record<string, string>][] = [
      ['recording on', { HOP_CLICK_RECORDING: 'on', HOP_CLICK_FOLD_MS: String(FOLD_MS) }],
      ['recording off', { HOP_CLICK_RECORDING: 'off' }],
    ];
    for (const [name, env] of shapes) {
      const setup = {
        dataDir: join(dir, name.replace(' ', '-')),
        apiKey: randomApiKey(),
        env: { ...env, HOP_TRUST_PROXY: '127.0.0.1', ...ctx.hopEnv },
        verbose: ctx.verbose,
      };
      ctx.log(`importing ${fmtInt(o.links)} links into the Hop "${name}"`);
      await importLinks(setup, linksFile, o.links);
      const hop = await startHopSut(setup);
      cleanup.add(() => hop.stop());
      const sut: Sut = { ...hop, name };
      const problem = await checkRedirect(sut, codes[0]!, linkUrl(0));
      if (problem !== null) throw new Error(problem);
      await touchEveryLink(ctx, sut, codes);
      await warmServer(ctx, sut, request);
      suts.push(sut);
    }
    const [on, off] = suts as [Sut, Sut];
    const catchUps: number[] = [];
    // CPU each Hop spent per redirect answered in its probes: the probes' own CPU, plus, for the
    // recording Hop, what its writer spent after each probe storing and folding that probe's
    // clicks. This is the sustained cost, which a probe's throughput alone does not show.
    const cpu = new Map<string, { ms: number; requests: number }>();
    const charge = (sut: Sut, ms: number, requests: number) => {
      const c = cpu.get(sut.name) ?? { ms: 0, requests: 0 };
      cpu.set(sut.name, { ms: c.ms + ms, requests: c.requests + requests });
    };
    // The recording Hop goes on writing its backlog after a run; the next server's run must not
    // share the cores with that (it would measure the other Hop's writer, not its own speed).
    // Clicks recorded up to the last settle: the writer's catch-up CPU is charged to a probe in the
    // share of its clicks that the probe's measured window made (its warm-up made the rest).
    let recordedBefore = 0;
    const settle = async (sut: Sut, r?: RunResult) => {
      if (r !== undefined) charge(sut, ((r.server?.cpuPercent ?? 0) * r.elapsedS * 1000) / 100, r.completed);
      if (sut !== on) return;
      const cpu0 = readCpuMs(on.pid);
      // HOP_CLICK_FOLD_MS=0 (given to the bench) writes rollups every flush: nothing to fold.
      const ms = await waitForClickWriter(on.target, ctx.hopEnv.HOP_CLICK_FOLD_MS !== '0');
      const cpu1 = readCpuMs(on.pid);
      const recorded = (await readCounters(on.target, COUNTERS))?.hop_clicks_recorded_total ?? null;
      if (r !== undefined && cpu0 !== null && cpu1 !== null && recorded !== null) {
        const share = Math.min(1, r.completed / Math.max(1, recorded - recordedBefore));
        charge(on, (cpu1 - cpu0) * share, 0);
      }
      recordedBefore = recorded ?? recordedBefore;
      catchUps.push(ms);
      ctx.log(`the recording Hop's writer caught up ${(ms / 1000).toFixed(1)} s after the run`);
    };
    await settle(on);
    const before = await readCounters(on.target, COUNTERS);
    const probes = await alternateProbes(ctx, suts, request, o, report, settle);
    const perRedirect = (sut: Sut) => {
      const c = cpu.get(sut.name);
      return c === undefined || c.requests === 0 ? null : (c.ms * 1000) / c.requests;
    };
    const [cpuOn, cpuOff] = [perRedirect(on), perRedirect(off)];
    const onMax = best(probes.get(on.name) ?? [])!;
    const offMax = best(probes.get(off.name) ?? [])!;
    const rate = o.rate ?? Math.max(1, Math.floor(offMax.achievedRate / 2));
    const beforeFixed = await readCounters(on.target, COUNTERS);
    const fixed: RunResult[] = [];
    for (const sut of [on, off]) {
      const r = await openLoop(ctx, sut, request, rate, o.durationS);
      report.runs.push(r);
      fixed.push(r);
      await settle(sut);
    }
    const after = await readCounters(on.target, COUNTERS);
    const delta = (name: string) =>
      before === null || after === null ? null : (after[name] ?? 0) - (before[name] ?? 0);
    const recorded = delta('hop_clicks_recorded_total');
    const dropped = delta('hop_clicks_dropped_total');
    const droppedFixed =
      beforeFixed === null || after === null
        ? null
        : (after.hop_clicks_dropped_total ?? 0) - (beforeFixed.hop_clicks_dropped_total ?? 0);
    const written = delta('hop_clicks_written_total');
    const folded = delta('hop_clicks_folded_total');
    const foldRows = delta('hop_click_fold_rows_total');
    const cost = 1 - onMax.achievedRate / offMax.achievedRate;
    const [fixedOn, fixedOff] = fixed as [RunResult, RunResult];
    report.tables.push({
      title: 'Redirect throughput with click recording on vs off (one run, alternating)',
      head: ['', 'recording on', 'recording off', 'on/off'],
      rows: [
        [
          'max throughput, closed-loop (req/s)',
          fmtInt(onMax.achievedRate),
          fmtInt(offMax.achievedRate),
          (onMax.achievedRate / offMax.achievedRate).toFixed(3),
        ],
        ['cost of recording (share of throughput)', fmtPct(cost * 100), '', ''],
        [
          'CPU per redirect, writer after the probes included (µs)',
          fmtUs(cpuOn),
          fmtUs(cpuOff),
          ratio(cpuOff, cpuOn),
        ],
        [
          'cost of recording by CPU per redirect',
          cpuOn === null || cpuOff === null ? '-' : fmtPct((1 - cpuOff / cpuOn) * 100),
          '',
          '',
        ],
        [
          "recording's CPU per click (on − off) / the most that costs ≤ 10% (off ÷ 9), µs",
          cpuOn === null || cpuOff === null ? '-' : (cpuOn - cpuOff).toFixed(1),
          cpuOff === null ? '-' : (cpuOff / 9).toFixed(1),
          '',
        ],
        [
          "best probe: the redirect thread's CPU per redirect (µs)",
          fmtUs(mainPerRedirect(onMax)),
          fmtUs(mainPerRedirect(offMax)),
          ratio(mainPerRedirect(offMax), mainPerRedirect(onMax)),
        ],
        [
          'best probe: CPU of the main thread / the busiest other thread',
          threadCpu(onMax),
          threadCpu(offMax),
          '',
        ],
        [
          'best probe: machine idle (all cores), load generator CPU',
          idleAndGenerator(onMax),
          idleAndGenerator(offMax),
          '',
        ],
        [
          `open-loop @ ${fmtInt(rate)}/s: p50 (ms)`,
          fmtMs(fixedOn.latency.p50),
          fmtMs(fixedOff.latency.p50),
          '',
        ],
        ['  p99 (ms)', fmtMs(fixedOn.latency.p99), fmtMs(fixedOff.latency.p99), ''],
        ['  p99.9 (ms)', fmtMs(fixedOn.latency.p999), fmtMs(fixedOff.latency.p999), ''],
        [
          '  server CPU',
          fmtPct(fixedOn.server?.cpuPercent ?? null),
          fmtPct(fixedOff.server?.cpuPercent ?? null),
          '',
        ],
        ['clicks recorded during the runs', recorded === null ? '-' : fmtInt(recorded), '', ''],
        ['clicks stored (raw)', written === null ? '-' : fmtInt(written), '', ''],
        [
          'clicks folded into rollups (increments per click)',
          folded === null ? '-' : fmtInt(folded),
          folded === null || foldRows === null || folded === 0 ? '' : (foldRows / folded).toFixed(2),
          '',
        ],
        ['clicks dropped (buffer full), all runs', dropped === null ? '-' : fmtInt(dropped), '', ''],
        [`  of them during the open-loop run`, droppedFixed === null ? '-' : fmtInt(droppedFixed), '', ''],
        [
          'writer caught up after a run, worst (s)',
          catchUps.length === 0 ? '-' : (Math.max(...catchUps) / 1000).toFixed(1),
          '',
          '',
        ],
      ],
      note: `Every redirect of the recording Hop hands its click to the embedded database's thread, which enriches it (user agent, bot, country, visitor hash) and sums it; the clicks are stored raw every second and folded into the rollups at least every ${FOLD_MS / 1000} s (the default is 5 min, which needs fewer rows). "CPU per redirect" divides each Hop's CPU in its probes' measured windows, plus the recording Hop's CPU while it stored and folded after each probe (the share of it for the window's clicks, not its warm-up's), by the redirects of those windows.`,
    });
    report.tables.push(runsTable(report.runs));
    report.data.summary = {
      onMaxRate: onMax.achievedRate,
      offMaxRate: offMax.achievedRate,
      cost,
      fixedRate: rate,
      p99On: fixedOn.latency.p99,
      p99Off: fixedOff.latency.p99,
      recorded,
      written,
      folded,
      foldRows,
      cpuPerRedirectOn: cpuOn,
      cpuPerRedirectOff: cpuOff,
      dropped,
      droppedFixed,
    };
    if (dropped !== null && dropped > 0)
      report.notes.push(`${fmtInt(dropped)} clicks were dropped: the writer fell behind.`);
    for (const r of report.runs) noteTrouble(report, r);
    return report;
  } finally {
    await cleanup.run();
  }
}
