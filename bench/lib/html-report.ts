// A self-contained HTML report: the same tables as the text output plus inline SVG charts, with no
// external assets, so the file can be attached to an issue or opened offline as it is.
import type { RunResult } from './recorder.ts';
import type { ScenarioReport, Table } from './report.ts';

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
const W = 760;
const H = 320;
const PAD = { left: 64, right: 16, top: 16, bottom: 44 };

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

interface Series {
  name: string;
  /** Series with the same key share a colour (one per server); later ones are dashed. */
  key: string;
  points: { x: number; y: number }[];
}

interface Axis {
  label: string;
  ticks: { at: number; text: string }[];
  min: number;
  max: number;
}

function chart(title: string, series: Series[], x: Axis, y: Axis): string {
  const iw = W - PAD.left - PAD.right;
  const ih = H - PAD.top - PAD.bottom;
  const sx = (v: number) => PAD.left + ((v - x.min) / (x.max - x.min || 1)) * iw;
  const sy = (v: number) => PAD.top + ih - ((v - y.min) / (y.max - y.min || 1)) * ih;
  const parts: string[] = [];
  for (const t of y.ticks) {
    const py = sy(t.at).toFixed(1);
    parts.push(`<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${py}" y2="${py}" stroke="#e5e5e5"/>`);
    parts.push(
      `<text x="${PAD.left - 6}" y="${py}" text-anchor="end" dominant-baseline="middle">${esc(t.text)}</text>`,
    );
  }
  for (const t of x.ticks) {
    const px = sx(t.at).toFixed(1);
    parts.push(`<line x1="${px}" x2="${px}" y1="${PAD.top}" y2="${PAD.top + ih}" stroke="#f0f0f0"/>`);
    parts.push(`<text x="${px}" y="${PAD.top + ih + 16}" text-anchor="middle">${esc(t.text)}</text>`);
  }
  parts.push(
    `<rect x="${PAD.left}" y="${PAD.top}" width="${iw}" height="${ih}" fill="none" stroke="#999"/>`,
    `<text x="${PAD.left + iw / 2}" y="${H - 6}" text-anchor="middle">${esc(x.label)}</text>`,
    `<text x="14" y="${PAD.top + ih / 2}" text-anchor="middle" transform="rotate(-90 14 ${PAD.top + ih / 2})">${esc(y.label)}</text>`,
  );
  const keys = [...new Set(series.map((s) => s.key))];
  const seen = new Map<string, number>();
  const legend: string[] = [];
  for (const s of series) {
    const color = COLORS[keys.indexOf(s.key) % COLORS.length]!;
    const nth = seen.get(s.key) ?? 0;
    seen.set(s.key, nth + 1);
    const dash = nth === 0 ? '' : ` stroke-dasharray="${nth === 1 ? '6 4' : '2 3'}"`;
    const d = s.points
      .map((p, j) => `${j === 0 ? 'M' : 'L'}${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`)
      .join('');
    parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${dash}/>`);
    legend.push(
      `<span class="key"><svg width="26" height="8"><line x1="0" y1="4" x2="26" y2="4" stroke="${color}" ` +
        `stroke-width="2"${dash}/></svg> ${esc(s.name)}</span>`,
    );
  }
  return (
    `<figure><figcaption>${esc(title)}</figcaption>` +
    `<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-size="11" font-family="sans-serif">${parts.join('')}</svg>` +
    `<div class="legend">${legend.join(' ')}</div></figure>`
  );
}

/** "90%" at 1, "99%" at 2 and so on: the usual HdrHistogram x axis, which spreads out the tail. */
function nines(percentile: number): number {
  return percentile >= 100 ? 5 : Math.min(5, -Math.log10(1 - percentile / 100));
}

/** Log-scale latency axis: tails span orders of magnitude, and a linear axis would flatten the median. */
function latencyChart(title: string, runs: RunResult[]): string {
  const series = runs
    .filter((r) => r.curve.length > 0)
    .map((r) => ({
      name: seriesName(r),
      key: r.label,
      points: r.curve.map((p) => ({ x: nines(p.percentile), y: Math.log10(Math.max(p.ms, 0.001)) })),
    }));
  const ys = series.flatMap((s) => s.points.map((p) => p.y));
  const yMin = Math.floor(Math.min(...ys, 0));
  const yMax = Math.ceil(Math.max(...ys, 1));
  const yTicks: Axis['ticks'] = [];
  for (let e = yMin; e <= yMax; e++) yTicks.push({ at: e, text: msLabel(e) });
  const xTicks = ['0%', '90%', '99%', '99.9%', '99.99%', '99.999%'].map((text, i) => ({ at: i, text }));
  return chart(
    title,
    series,
    { label: 'percentile', ticks: xTicks, min: 0, max: 5 },
    { label: 'latency (log scale)', ticks: yTicks, min: yMin, max: yMax },
  );
}

/** Tick label for 10^e ms: "0.01 ms", "100 ms", "10 s". */
function msLabel(e: number): string {
  if (e >= 3) return `${10 ** (e - 3)} s`;
  return `${e >= 0 ? 10 ** e : (10 ** e).toFixed(-e)} ms`;
}

function throughputChart(title: string, runs: RunResult[]): string {
  const series = runs.map((r) => ({
    name: seriesName(r),
    key: r.label,
    points: r.timeline.map((p) => ({ x: p.t + 0.5, y: p.rate })),
  }));
  const xMax = Math.max(1, ...runs.map((r) => r.timeline.length));
  const yMax = niceCeil(Math.max(1, ...series.flatMap((s) => s.points.map((p) => p.y))));
  const yTicks = [0, 0.25, 0.5, 0.75, 1].map((f) => ({
    at: f * yMax,
    text: Math.round(f * yMax).toLocaleString('en-US'),
  }));
  const step = Math.max(1, Math.ceil(xMax / 10));
  const xTicks: Axis['ticks'] = [];
  for (let t = 0; t <= xMax; t += step) xTicks.push({ at: t, text: `${t}s` });
  return chart(
    title,
    series,
    { label: 'seconds into the measured window', ticks: xTicks, min: 0, max: xMax },
    { label: 'responses per second', ticks: yTicks, min: 0, max: yMax },
  );
}

function niceCeil(v: number): number {
  const mag = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * mag) return m * mag;
  return 10 * mag;
}

function seriesName(r: RunResult): string {
  const rate = r.targetRate === null ? '' : ` @ ${Math.round(r.targetRate).toLocaleString('en-US')}/s`;
  return `${r.label} (${r.mode}${rate})`;
}

function tableHtml(t: Table): string {
  const head = t.head.map((h) => `<th>${esc(h)}</th>`).join('');
  const rows = t.rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('');
  const note = t.note === undefined ? '' : `<p class="note">${esc(t.note)}</p>`;
  return `<h2>${esc(t.title)}</h2><table><thead><tr>${head}</tr></thead><tbody>${rows}</tbody></table>${note}`;
}

export function renderHtml(reports: ScenarioReport[]): string {
  const body: string[] = [];
  for (const r of reports) {
    body.push(`<h1>${esc(r.scenario)}</h1>`);
    const settings = Object.entries(r.settings)
      .map(([k, v]) => `${esc(k)}=${esc(String(v))}`)
      .join(' · ');
    body.push(`<p class="meta">${esc(r.startedAt)} · ${settings}</p>`);
    for (const t of r.tables) body.push(tableHtml(t));
    const open = r.runs.filter((x) => x.mode === 'open-loop');
    const closed = r.runs.filter((x) => x.mode === 'closed-loop');
    if (open.length > 0) {
      body.push(latencyChart('Open-loop latency by percentile (from intended send time)', open));
      body.push(throughputChart('Open-loop responses per second', open));
    }
    if (closed.length > 0) {
      body.push(
        latencyChart('Closed-loop latency by percentile (hides queueing; for capacity only)', closed),
      );
      body.push(throughputChart('Closed-loop responses per second', closed));
    }
    if (r.notes.length > 0)
      body.push(`<h2>Notes</h2><ul>${r.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>`);
  }
  const css =
    'body{font-family:sans-serif;margin:24px;color:#222;max-width:1100px}' +
    'table{border-collapse:collapse;font-size:13px;margin:8px 0}' +
    'th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}td{white-space:nowrap}' +
    'th:first-child,td:first-child{text-align:left;white-space:pre}th{background:#f4f4f4}' +
    '.note,.meta{font-size:12px;color:#555;max-width:900px}figure{margin:16px 0}' +
    'figcaption{font-weight:bold;margin-bottom:4px}.legend{font-size:12px}' +
    '.key{margin-right:14px;white-space:nowrap}';
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Hop bench</title>` +
    `<style>${css}</style></head><body>${body.join('\n')}</body></html>\n`
  );
}
