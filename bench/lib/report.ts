// The shape every scenario reports in, and its plain-text rendering. The JSON and HTML outputs read
// the same structure, so the three can never disagree about a number.
import type { LatencySummary } from './histogram.ts';
import type { RunResult } from './recorder.ts';

export interface Table {
  title: string;
  head: string[];
  rows: string[][];
  /** Printed under the table: how to read it. */
  note?: string;
  /** One 'l' or 'r' per column; by default the first column is left-aligned and the rest right. */
  align?: string;
}

export interface ScenarioReport {
  scenario: string;
  startedAt: string;
  settings: Record<string, string | number | boolean>;
  runs: RunResult[];
  tables: Table[];
  /** Anything the reader must know: failures, skipped parts, suspicious numbers. */
  notes: string[];
  /** Scenario-specific figures for machine readers. */
  data: Record<string, unknown>;
}

export function newReport(scenario: string, settings: ScenarioReport['settings']): ScenarioReport {
  return {
    scenario,
    startedAt: new Date().toISOString(),
    settings,
    runs: [],
    tables: [],
    notes: [],
    data: {},
  };
}

export function fmtMs(ms: number): string {
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 100) return ms.toFixed(0);
  if (ms >= 10) return ms.toFixed(1);
  return ms.toFixed(2);
}

export function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export function fmtRatio(a: number, b: number): string {
  if (!(b > 0) || !Number.isFinite(a)) return 'n/a';
  return `${(a / b).toFixed(2)}x`;
}

export function fmtPct(p: number | null): string {
  return p === null ? 'n/a' : `${p.toFixed(0)}%`;
}

export function fmtKb(kb: number | null): string {
  return kb === null ? 'n/a' : `${(kb / 1024).toFixed(0)} MiB`;
}

/** One row per run: the full detail behind a summary table. */
export function runsTable(runs: readonly RunResult[], title = 'All runs'): Table {
  return {
    title,
    head: [
      'target',
      'mode',
      'conns',
      'rate asked',
      'achieved/s',
      'p50 ms',
      'p99 ms',
      'p99.9 ms',
      'max ms',
      'svc p99 ms',
      'errors',
      'unexpected',
      'gen CPU',
      'lag p99 ms',
      'server CPU',
    ],
    rows: runs.map((r) => [
      r.label,
      r.mode,
      String(r.connections),
      r.targetRate === null ? '-' : fmtInt(r.targetRate),
      fmtInt(r.achievedRate),
      fmtMs(r.latency.p50),
      fmtMs(r.latency.p99),
      fmtMs(r.latency.p999),
      fmtMs(r.latency.max),
      fmtMs(r.serviceTime.p99),
      errorsText(r),
      r.unexpected > 0 ? `${r.unexpected} (not ${r.expectation})` : '0',
      fmtPct(r.generator.cpuPercent),
      r.generator.lag === null ? '-' : fmtMs(r.generator.lag.p99),
      fmtPct(r.server?.cpuPercent ?? null),
    ]),
    note:
      "Open-loop latency counts from each request's intended send time (queueing included); closed-loop " +
      'latency counts from the actual send and hides queueing. svc is the service time from the actual ' +
      'send (open-loop runs show both). CPU is % of one core; lag is how late the ' +
      'generator itself noticed a request was due.',
  };
}

export function errorsText(r: RunResult): string {
  if (r.errorCount === 0) return '0';
  const parts = Object.entries(r.errors)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k}=${n}`);
  return `${r.errorCount} (${parts.join(', ')})`;
}

export function latencyRow(name: string, s: LatencySummary): string[] {
  return [name, fmtInt(s.count), fmtMs(s.p50), fmtMs(s.p90), fmtMs(s.p99), fmtMs(s.p999), fmtMs(s.max)];
}

export function renderTable(t: Table): string {
  const widths = t.head.map((h, i) => Math.max(h.length, ...t.rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) =>
        (t.align?.[i] ?? (i === 0 ? 'l' : 'r')) === 'l' ? c.padEnd(widths[i]!) : c.padStart(widths[i]!),
      )
      .join('  ')
      .trimEnd();
  const out = [t.title, line(t.head), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const r of t.rows) out.push(line(r));
  if (t.note !== undefined) out.push(wrap(t.note, 108));
  return out.join('\n');
}

function wrap(text: string, width: number): string {
  const lines: string[] = [];
  let cur = '';
  for (const word of text.split(' ')) {
    if (cur.length > 0 && cur.length + word.length + 1 > width) {
      lines.push(cur);
      cur = word;
    } else cur = cur.length > 0 ? `${cur} ${word}` : word;
  }
  if (cur.length > 0) lines.push(cur);
  return lines.join('\n');
}

export function renderText(r: ScenarioReport): string {
  const parts = [`== ${r.scenario} (${r.startedAt}) ==`];
  const settings = Object.entries(r.settings)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  if (settings.length > 0) parts.push(settings);
  for (const t of r.tables) parts.push('', renderTable(t));
  if (r.notes.length > 0) parts.push('', 'Notes:', ...r.notes.map((n) => `- ${n}`));
  return `${parts.join('\n')}\n`;
}
