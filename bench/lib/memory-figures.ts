// The memory scenario's figures and their tables: resident memory by phase beside the baseline, what
// the memory cgroup saw, capacity against Hop as before, and the issue's targets with a verdict each.
import type { MemoryCgroupReport } from '../../scripts/lib/memory-cgroup.ts';
import type { MemoryParts } from './hop-metrics.ts';
import { metText } from './redis-tier-figures.ts';
import { fmtInt, fmtKb, fmtRatio, type Table } from './report.ts';
import type { RssFigures } from './rss-sampler.ts';

/** The issue's targets: MiB of RSS, and the least ratio of capacities against Hop as before. */
export const TARGETS = { startPeakMib: 320, idleMib: 200, servingMib: 256, speedRatio: 0.95 };

export interface ServerFigures {
  name: string;
  /** The phase's window: peak and end RSS. */
  rss: RssFigures;
  /** What its memory cgroup saw; null when it ran unconfined. */
  limit: MemoryCgroupReport | null;
  /** Still running, and still answering a redirect after the load (serving phases). */
  survived: boolean | null;
}

export type PhaseName = 'start' | 'idle' | 'load' | 'import' | 'import-load';

export interface PhaseFigures {
  phase: PhaseName;
  label: string;
  hop: ServerFigures | null;
  baseline: ServerFigures | null;
  /** How the phase went, in words: time to ready, links, rates. */
  detail: string;
  /** Where Hop's memory was as the phase ended, and its RSS then (KiB); null when not read. */
  parts?: PhaseParts | null;
}

export interface PhaseParts {
  rssKb: number | null;
  parts: MemoryParts;
}

export interface SpeedFigures {
  name: string;
  redirectMax: number | null;
  createMax: number | null;
  rssKbAfter: number | null;
}

export const BEFORE = 'hop as before';

const mib = (kb: number | null | undefined) => (kb == null ? null : kb / 1024);
const fmtMib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

export function phaseTable(phases: readonly PhaseFigures[]): Table {
  const cell = (s: ServerFigures | null, f: (r: RssFigures) => number | null) =>
    s === null ? '-' : fmtKb(f(s.rss));
  return {
    title: 'Resident memory by phase',
    head: ['phase', 'Hop peak', 'Hop end', 'node:http peak', 'node:http end', 'detail'],
    rows: phases.map((p) => [
      p.label,
      cell(p.hop, (r) => r.peakKb),
      cell(p.hop, (r) => r.lastKb),
      cell(p.baseline, (r) => r.peakKb),
      cell(p.baseline, (r) => r.lastKb),
      p.detail,
    ]),
    align: 'lrrrrl',
    note:
      "Peak: the most resident at once in the phase's window (sampled every 100 ms, or the kernel's VmHWM " +
      'when higher; a serving window opens once the server is ready). End: RSS as the phase ends. ' +
      'start: from the spawn to the first 200 of /readyz on an empty data directory; idle: the same process ' +
      'after the idle time; load: touch of the cached links, warm-up, closed-loop probes and the open-loop ' +
      'run, Zipf over the links, click recording on. The baseline is bare node:http answering from a Map, ' +
      'on plain node (no tsx).',
  };
}

/** Where Hop's memory was at the end of each phase that read it: the parts and what is left over. */
export function partsTable(phases: readonly PhaseFigures[]): Table {
  const b = (v: number | null) => (v === null ? '-' : fmtMib(v));
  const rows: string[][] = [];
  for (const p of phases) {
    if (p.parts == null) continue;
    const { rssKb, parts: m } = p.parts;
    const known = [m.mainHeap, m.mainExternal, m.dbWasm, m.dbHeap].reduce<number>((n, v) => n + (v ?? 0), 0);
    rows.push([
      p.label,
      rssKb === null ? '-' : fmtKb(rssKb),
      b(m.mainHeap),
      b(m.mainExternal),
      b(m.dbWasm),
      b(m.dbHeap),
      rssKb === null ? '-' : fmtMib(rssKb * 1024 - known),
    ]);
  }
  return {
    title: "Where Hop's memory is as each phase ends",
    head: [
      'phase',
      'RSS',
      'main V8 heap',
      'main external',
      'database WASM',
      'database thread heap',
      'the rest',
    ],
    rows,
    align: 'lrrrrrr',
    note:
      "Read from Hop's /metrics as the phase ends: the V8 heaps as reserved (heap_size_total), external " +
      "memory (buffers) as V8 counts it, and the database's WASM memory as reserved (PostgreSQL's linear " +
      'memory: it grows and never shrinks, and only the pages touched are resident). The rest is RSS less ' +
      'those parts: code, stacks and native allocations, less the reserved pages not resident, so it can ' +
      'go negative.',
  };
}

export function limitTable(phases: readonly PhaseFigures[], limitMib: number): Table {
  const rows: string[][] = [];
  for (const p of phases) {
    if (p.phase !== 'load' && p.phase !== 'import-load') continue;
    for (const s of [p.hop, p.baseline]) {
      if (s === null) continue;
      const l = s.limit;
      rows.push([
        s.name,
        l === null ? 'unconfined' : fmtMib(l.maxUsageBytes),
        l === null ? '-' : `${fmtMib(l.rssBytes)} / ${fmtMib(l.cacheBytes)}`,
        l === null
          ? '-'
          : l.reachedLimit
            ? `yes${l.limitHits > 0 ? ` (${fmtInt(l.limitHits)} hits)` : ''}`
            : 'no',
        l === null ? '-' : String(l.oomKills),
        s.survived === null ? '-' : s.survived ? 'yes' : 'NO',
      ]);
    }
  }
  return {
    title: `Memory cgroup limit of ${limitMib} MiB, as a container's (cgroup v1)`,
    head: ['server', 'max charged', 'at end: anon / cache', 'reached limit', 'OOM kills', 'survived'],
    rows,
    note:
      'The kernel charges the group anonymous memory and page cache of the files the server reads and ' +
      'writes; pages of the node binary and libraries already cached are charged to whoever read them ' +
      'first, so the max charged can be below RSS (in a container they would count). At the limit the ' +
      'kernel reclaims page cache first and kills only when nothing more can be reclaimed. Survived: ' +
      'still running and answering a redirect.',
  };
}

export function speedTable(speed: readonly SpeedFigures[]): Table {
  const before = speed.find((s) => s.name === BEFORE);
  const ratio = (a: number | null, b: number | null | undefined) =>
    a === null || b == null ? '-' : fmtRatio(a, b);
  return {
    title: 'Capacity, closed-loop, alternating in one run',
    head: ['Hop', 'redirects/s', 'creates/s', 'RSS after', 'redirects / before', 'creates / before'],
    rows: speed.map((s) => [
      s.name,
      s.redirectMax === null ? '-' : fmtInt(s.redirectMax),
      s.createMax === null ? '-' : fmtInt(s.createMax),
      fmtKb(s.rssKbAfter),
      ratio(s.redirectMax, before?.redirectMax),
      ratio(s.createMax, before?.createMax),
    ]),
    note:
      'Each figure is the best of its probes. "hop": the defaults (bin/hop.js, HOP_DB_BUFFERS_MB=16, ' +
      'HOP_DB_COMPILER=baseline); the second row is the same bundle with the database settings as before ' +
      '(128, optimizing), so it against "hop" is what the memory budget costs in speed; "hop as before" ' +
      'runs the sources through tsx with those settings. Each Hop writes its clicks before the next probe.',
  };
}

export interface Verdict {
  target: string;
  measured: string;
  met: boolean | null;
}

/** The issue's targets, each with what was measured and whether it was met (null: not measured). */
export function verdicts(phases: readonly PhaseFigures[], speed: readonly SpeedFigures[]): Verdict[] {
  const at = (name: PhaseName) => phases.find((p) => p.phase === name)?.hop ?? null;
  const out: Verdict[] = [];
  // A server the limit killed did not serve within it, whatever it held until then.
  const rss = (target: string, s: ServerFigures | null, pick: 'peakKb' | 'lastKb', max: number) => {
    const v = mib(s?.rss[pick]);
    const killed = s?.survived === false;
    out.push({
      target,
      measured: v === null ? '-' : `${v.toFixed(0)} MiB${killed ? ', then gone' : ''}`,
      met: v === null ? null : v <= max && !killed,
    });
  };
  rss(`start-up peak <= ${TARGETS.startPeakMib} MiB`, at('start'), 'peakKb', TARGETS.startPeakMib);
  rss(`idle after start <= ${TARGETS.idleMib} MiB`, at('idle'), 'lastKb', TARGETS.idleMib);
  for (const [phase, what] of [
    ['load', 'serving the links under load'],
    ['import-load', 'serving after the import'],
  ] as const) {
    const s = at(phase);
    rss(`${what}: peak <= ${TARGETS.servingMib} MiB`, s, 'peakKb', TARGETS.servingMib);
    const oom = s?.limit?.oomKills ?? null;
    out.push({
      target: `${what}: inside the limit, never OOM-killed, still answering`,
      measured:
        s === null
          ? '-'
          : `${s.limit === null ? 'unconfined' : `${oom} OOM kills`}, ${s.survived ? 'answering' : 'NOT answering'}`,
      met: s === null || s.limit === null ? null : oom === 0 && s.survived === true,
    });
  }
  const before = speed.find((s) => s.name === BEFORE);
  const now = speed.find((s) => s.name === 'hop');
  for (const [what, f] of [
    ['redirect', (s: SpeedFigures) => s.redirectMax],
    ['create', (s: SpeedFigures) => s.createMax],
  ] as const) {
    const a = now === undefined ? null : f(now);
    const b = before === undefined ? null : f(before);
    const r = a === null || b === null || !(b > 0) ? null : a / b;
    out.push({
      target: `${what} capacity >= ${TARGETS.speedRatio} x Hop as before`,
      measured: r === null ? '-' : `${r.toFixed(2)}x (${fmtInt(a!)} vs ${fmtInt(b!)}/s)`,
      met: r === null ? null : r >= TARGETS.speedRatio,
    });
  }
  return out;
}

export function targetsTable(v: readonly Verdict[]): Table {
  return {
    title: 'Targets (issue "The embedded default fits a small server")',
    head: ['target', 'measured', 'verdict'],
    rows: v.map((x) => [x.target, x.measured, metText(x.met)]),
    align: 'lrl',
    note:
      'Memory targets are judged on Hop with its defaults and click recording on; "not measured" means the ' +
      'phase was skipped or failed (see the notes). A capacity ratio is judged on best probes, one run.',
  };
}
