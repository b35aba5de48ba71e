// The recording scenario: what the embedded click writer costs per click, all of it (storing clicks
// raw, folding them into rollups and splitting them into visit rows), as CPU of the whole process
// (every thread) per click. Compared in one run, alternating rounds, each on a fresh data directory:
// this build; this build with the split left out (what visit lists add); and, with --before DIR,
// the writer of another checkout (e.g. the commit before visit lists), loaded from its sources.
// Enrichment is not included (the clicks bench measures the whole redirect path).
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import type { ClickEvent } from '../../src/domain/clicks.ts';
import { uuid7 } from '../../src/events/uuid7.ts';
import { makeTempDir, removeDir } from '../lib/hop-process.ts';
import { type Distribution, indexSampler, randomCodes, seededRandom } from '../lib/links.ts';
import { fmtInt, newReport, type ScenarioReport } from '../lib/report.ts';
import type { BenchContext } from './common.ts';

export interface RecordingOptions {
  clicks: number;
  links: number;
  dist: Distribution;
  rounds: number;
  before: string | null;
}

interface Sink {
  record(e: ClickEvent): void;
  close(): Promise<void>;
}
interface Store {
  close(): Promise<void>;
  splitVisits?(): Promise<number>;
}
/** One writer to measure: how to open its store and sink, and whether its split is left out. */
interface Variant {
  readonly name: string;
  open(dataDir: string): Promise<Store>;
  sink(store: Store): Promise<Sink>;
  /** Split what the sink left (close() stops splitting early; the upkeep would finish it). */
  readonly finishSplit: boolean;
}

const AGENTS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36',
  'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15',
  'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
];
const REFERERS = [
  undefined,
  undefined,
  'https://www.google.com/',
  'https://t.co/abc',
  'https://news.example/item?id=1',
];

function clicks(o: RecordingOptions): ClickEvent[] {
  const codes = randomCodes(o.links);
  const next = indexSampler(codes.length, o.dist);
  const rnd = seededRandom(7);
  const countries = ['US', 'DE', 'GB', 'FR', 'IN', 'BR', 'JP', null];
  const agents: [string, string, string][] = [
    ['Chrome', 'Windows', 'desktop'],
    ['Safari', 'iOS', 'mobile'],
    ['Chrome', 'Android', 'mobile'],
    ['Firefox', 'Linux', 'desktop'],
    ['Safari', 'macOS', 'desktop'],
    [null as unknown as string, null as unknown as string, 'bot'],
  ];
  const now = Date.now();
  return Array.from({ length: o.clicks }, (_, i) => {
    const a = Math.floor(rnd() * agents.length);
    const [browser, os, device] = agents[a]!;
    const referer = REFERERS[Math.floor(rnd() * REFERERS.length)];
    const at = now + Math.floor(i / 20);
    return {
      id: uuid7(at),
      code: codes[next()]!,
      at,
      referrerHost: referer === undefined ? null : new URL(referer).hostname,
      country: countries[Math.floor(rnd() * countries.length)]!,
      browser,
      os,
      device,
      bot: device === 'bot',
      visitor: createHash('sha256')
        .update(String(i % 50_000))
        .digest('hex')
        .slice(0, 16),
      userAgent: AGENTS[a]!,
      ...(referer === undefined ? {} : { referer }),
    };
  });
}

/** The writer of a source tree (this one, or --before's), as Hop's embedded default runs it. */
async function writerOf(root: string) {
  const [sinkMod, storeMod, metricsMod, loggerMod] = await Promise.all([
    import(join(root, 'src/events/folding-click-sink.ts')),
    import(join(root, 'src/storage/embedded/open-embedded-store.ts')),
    import(join(root, 'src/metrics/metrics.ts')),
    import(join(root, 'src/logger.ts')),
  ]);
  const opts = {
    flushMs: 3_600_000,
    batchSize: 2_000,
    maxBuffered: 10_000_000,
    foldMs: 3_600_000,
    foldRows: 100_000,
  };
  return {
    open: (dataDir: string): Promise<Store> => storeMod.openEmbeddedStore({ dataDir, codeLength: 7 }),
    sink: (store: Store): Promise<Sink> =>
      sinkMod.FoldingClickSink.open(store, opts, metricsMod.noopMetrics, loggerMod.createLogger('silent')),
  };
}

/** The store without its split: the writer then stores and folds as before visit lists. */
function withoutSplit(store: Store): Store {
  return new Proxy(store, {
    get(target, p) {
      if (p === 'splitVisits') return undefined;
      const v = Reflect.get(target, p, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
    has: (target, p) => p !== 'splitVisits' && p in target,
  });
}

export async function runRecording(ctx: BenchContext, o: RecordingOptions): Promise<ScenarioReport> {
  const report = newReport('recording', { ...o, before: o.before ?? '' });
  const dir = await makeTempDir('hop-bench-recording-');
  try {
    const here = await writerOf(resolve(import.meta.dirname ?? '.', '../..'));
    const variants: Variant[] = [
      { name: 'this build', open: here.open, sink: here.sink, finishSplit: true },
      {
        name: 'this build, split left out',
        open: async (d) => withoutSplit(await here.open(d)),
        sink: here.sink,
        finishSplit: false,
      },
    ];
    if (o.before !== null) {
      const before = await writerOf(resolve(o.before));
      variants.push({
        name: `before (${o.before})`,
        open: before.open,
        sink: before.sink,
        finishSplit: false,
      });
    }
    const events = clicks(o);
    const cpu = new Map<string, number[]>();
    for (let round = 0; round < o.rounds; round++) {
      for (const v of variants) {
        const store = await v.open(
          join(dir, `${round}-${cpu.size}-${Math.random().toString(36).slice(2, 8)}`),
        );
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        const sink = await v.sink(store);
        for (const e of events) sink.record(e);
        await sink.close();
        if (v.finishSplit) while (((await store.splitVisits?.()) ?? 0) > 0) {}
        const used = process.cpuUsage(c0);
        const ms = performance.now() - t0;
        const perClick = (used.user + used.system) / o.clicks;
        cpu.set(v.name, [...(cpu.get(v.name) ?? []), perClick]);
        ctx.log(
          `${v.name}, round ${round + 1}: ${perClick.toFixed(1)} µs CPU a click, ${fmtInt((o.clicks / ms) * 1000)} clicks/s`,
        );
        await store.close();
      }
    }
    const bestOf = (name: string) => Math.min(...(cpu.get(name) ?? [Number.NaN]));
    const reference = bestOf(variants.at(-1)!.name);
    report.tables.push({
      title: `The embedded click writer's CPU per click (${fmtInt(o.clicks)} clicks on ${fmtInt(o.links)} links, ${o.dist}; best of ${o.rounds} alternating rounds)`,
      head: ['writer', 'CPU µs / click', 'rounds (µs)', `vs ${variants.at(-1)!.name}`],
      rows: variants.map((v) => [
        v.name,
        bestOf(v.name).toFixed(1),
        (cpu.get(v.name) ?? []).map((x) => x.toFixed(1)).join(', '),
        (bestOf(v.name) / reference).toFixed(2),
      ]),
      note: 'CPU of the whole process (the database thread included): storing raw, folding into rollups and splitting into visit rows. Enrichment and the redirect are not included.',
    });
    report.data.summary = Object.fromEntries(variants.map((v) => [v.name, bestOf(v.name)]));
    return report;
  } finally {
    await removeDir(dir);
  }
}
