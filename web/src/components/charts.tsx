// Small SVG pictures: a time-series bar chart, a trend over recent samples and ranked bars. Each
// carries a text alternative; no inline styles (the CSP forbids them), colours come from the
// stylesheet. Charts draw in a viewBox as wide as they are on screen, so their labels keep the
// stylesheet's size on a phone and on a wide desktop instead of scaling with the picture.
import type { ComponentChildren, RefObject } from 'preact';
import { useLayoutEffect, useRef, useState } from 'preact/hooks';
import { formatNumber } from '../format.ts';

export interface Point {
  t: string;
  v: number;
}

// Axis text is 12 px (styles.css); this is a generous width per character for laying it out.
const CHAR_PX = 7.5;

/** The element's width in CSS pixels, kept current as it resizes. */
function useWidth(fallback: number): [RefObject<HTMLElement | null>, number] {
  const ref = useRef<HTMLElement | null>(null);
  const [width, setWidth] = useState(fallback);
  useLayoutEffect(() => {
    const el = ref.current;
    if (el === null) return;
    const measure = () => setWidth(Math.max(160, Math.floor(el.clientWidth)));
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(el);
    return () => observer.disconnect();
  }, []);
  return [ref, width];
}

/** 0 and a few round steps (1, 2 or 5 × 10ⁿ) up to at least `max`. */
export function niceTicks(max: number, about = 4, whole = false): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / about;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  let step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
  if (whole) step = Math.max(1, Math.round(step));
  const n = Math.ceil(max / step - 1e-9);
  return Array.from({ length: n + 1 }, (_, i) => Number((i * step).toPrecision(12)));
}

const textWidth = (s: string) => s.length * CHAR_PX;

function bucketLabels(t: string, interval: 'hour' | 'day') {
  const d = new Date(t);
  if (interval === 'day') {
    // Daily rollups are UTC days: name them as such, whatever the viewer's time zone.
    const utc = { timeZone: 'UTC' } as const;
    return {
      axis: d.toLocaleDateString(undefined, { ...utc, month: 'short', day: 'numeric' }),
      full: `${d.toLocaleDateString(undefined, { ...utc, weekday: 'short', year: 'numeric', month: 'short', day: 'numeric' })} (UTC)`,
    };
  }
  const hm = { hour: '2-digit', minute: '2-digit' } as const;
  const end = new Date(d.getTime() + 3_600_000);
  return {
    // Midnight shows the date; other hours their time.
    axis:
      d.getHours() === 0
        ? d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' })
        : d.toLocaleTimeString(undefined, hm),
    full: `${d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' })} – ${end.toLocaleTimeString(undefined, { timeStyle: 'short' })}`,
  };
}

/** Which bars get a label: a round step (whole divisors of a day for hours, weeks for days) that fits. */
function labelEvery(n: number, fits: number, interval: 'hour' | 'day'): number {
  const need = n / Math.max(1, fits);
  const steps = interval === 'hour' ? [1, 2, 3, 4, 6, 12, 24] : [1, 2, 7, 14];
  let step = steps.find((s) => s >= need) ?? steps.at(-1) ?? 1;
  while (step < need) step *= 2;
  return step;
}

/** Bars over time (one per hour or day), with a y scale, a few dates and a tooltip per bar. */
export function TimeChart({
  points,
  label,
  unit,
  interval,
}: {
  points: Point[];
  label: string;
  unit: string;
  interval: 'hour' | 'day';
}) {
  const [ref, w] = useWidth(600);
  const h = 220;
  const top = 10;
  const plotH = h - top - 26;
  const base = top + plotH;
  const max = Math.max(0, ...points.map((p) => p.v));
  const total = points.reduce((n, p) => n + p.v, 0);
  const ticks = niceTicks(max, 4, true);
  const yMax = ticks.at(-1) ?? 1;
  const left = 10 + Math.max(...ticks.map((t) => textWidth(formatNumber(t))));
  const right = 10;
  const plotW = Math.max(1, w - left - right);
  const n = points.length;
  const bw = n === 0 ? 0 : plotW / n;
  const y = (v: number) => base - (v / yMax) * plotH;
  const labels = points.map((p) => bucketLabels(p.t, interval));
  // As many labels as fit side by side.
  const widest = Math.max(0, ...labels.map((l) => textWidth(l.axis)));
  const every = labelEvery(n, Math.floor(plotW / (widest + 16)), interval);
  // Hourly bars are labelled on round hours (or every so many midnights); daily ones from the newest back.
  let midnights = 0;
  const labelled = points.map((p, i) => {
    if (interval === 'day') return (n - 1 - i) % every === 0;
    const hour = new Date(p.t).getHours();
    if (every <= 24) return hour % every === 0;
    return hour === 0 && midnights++ % (every / 24) === 0;
  });
  return (
    <figure class="chart" ref={ref}>
      <svg
        viewBox={`0 0 ${w} ${h}`}
        height={h}
        role="img"
        aria-label={`${label}: ${formatNumber(total)} ${unit} in ${n} periods, at most ${formatNumber(max)} in one`}
      >
        {ticks.map((t) => (
          <g key={t}>
            <line x1={left} x2={w - right} y1={y(t)} y2={y(t)} class={t === 0 ? 'axis' : 'grid'} />
            <text x={left - 6} y={y(t) + 4} class="label" text-anchor="end">
              {formatNumber(t)}
            </text>
          </g>
        ))}
        {points.map((p, i) => {
          const x = left + i * bw;
          const bh = (p.v / yMax) * plotH;
          return (
            <g key={p.t} class="col">
              <title>{`${labels[i]?.full}: ${formatNumber(p.v)} ${unit}`}</title>
              <rect x={x} y={top} width={bw} height={plotH} class="hit" />
              {p.v > 0 && (
                <rect
                  x={x + (bw > 4 ? bw * 0.12 : 0)}
                  y={base - bh}
                  width={Math.max(1, bw > 4 ? bw * 0.76 : bw)}
                  height={bh}
                  class="bar"
                />
              )}
            </g>
          );
        })}
        {labels.map((l, i) => {
          if (labelled[i] !== true) return null;
          const half = textWidth(l.axis) / 2;
          const x = Math.min(w - right - half, Math.max(left + half, left + (i + 0.5) * bw));
          return (
            <text key={points[i]?.t} x={x} y={h - 6} class="label" text-anchor="middle">
              {l.axis}
            </text>
          );
        })}
      </svg>
    </figure>
  );
}

export interface Trend {
  /** What one value is, e.g. "written per second"; names the line in the legend and the text alternative. */
  name: string;
  /** One per sample time; null where there was nothing to measure (drawn as a gap). */
  values: (number | null)[];
}

/**
 * Recent samples as a small area (the first trend) or lines (the others) over a fixed span
 * ending now, labelled with the scale's bottom and top and the span; the newest value has a dot.
 */
export function TrendChart({
  times,
  spanMs,
  trends,
  label,
  format,
  ceiling,
}: {
  /** Sample times, ms since the epoch, oldest first. */
  times: number[];
  spanMs: number;
  trends: Trend[];
  label: string;
  format: (v: number) => string;
  /** A fixed top for the scale (e.g. 1 for a ratio); otherwise a round number above the highest value. */
  ceiling?: number;
}) {
  const [ref, w] = useWidth(240);
  const h = 84;
  const top = 8;
  const plotH = h - top - 20;
  const base = top + plotH;
  const seen = trends.flatMap((t) => t.values.filter((v): v is number => v !== null));
  const yMax = ceiling ?? niceTicks(Math.max(0, ...seen)).at(-1) ?? 1;
  const yLabels = [format(yMax), format(0)];
  const right = 8 + Math.max(...yLabels.map(textWidth));
  const plotW = Math.max(1, w - right - 2);
  const end = times.at(-1) ?? 0;
  const x = (t: number) => plotW * (1 - Math.min(1, (end - t) / spanMs));
  const y = (v: number) => base - (Math.min(v, yMax) / yMax) * plotH;
  const spanText =
    spanMs >= 60_000 ? `${formatNumber(spanMs / 60_000, 1)} min ago` : `${spanMs / 1000} s ago`;
  const describe = (t: Trend) => {
    const vs = t.values.filter((v): v is number => v !== null);
    const now = t.values.at(-1);
    if (vs.length === 0) return `${t.name}: no data yet`;
    return `${t.name} now ${now === null || now === undefined ? 'not measured' : format(now)}, lowest ${format(Math.min(...vs))}, highest ${format(Math.max(...vs))}`;
  };
  const alt = `${label}, over the last ${spanText.replace(' ago', '')}: ${trends.map(describe).join('; ')}. Scale ${yLabels[1]} to ${yLabels[0]}.`;
  return (
    <figure class="chart trend" ref={ref}>
      <svg viewBox={`0 0 ${w} ${h}`} height={h} role="img" aria-label={alt}>
        <title>{alt}</title>
        <line x1="0" x2={plotW} y1={top} y2={top} class="grid" />
        <line x1="0" x2={plotW} y1={base} y2={base} class="axis" />
        <text x={w - 2} y={top + 4} class="label" text-anchor="end">
          {yLabels[0]}
        </text>
        <text x={w - 2} y={base + 4} class="label" text-anchor="end">
          {yLabels[1]}
        </text>
        <text x="0" y={h - 4} class="label">
          {spanText}
        </text>
        <text x={plotW} y={h - 4} class="label" text-anchor="end">
          now
        </text>
        {seen.length === 0 && (
          <text x={plotW / 2} y={top + plotH / 2 + 4} class="label" text-anchor="middle">
            No data yet
          </text>
        )}
        {trends.map((t, k) => {
          // Runs of consecutive measured values; a null breaks the line.
          const runs: [number, number][][] = [[]];
          t.values.forEach((v, i) => {
            const at = times[i];
            if (v === null || at === undefined || end - at > spanMs) {
              if ((runs.at(-1)?.length ?? 0) > 0) runs.push([]);
            } else runs.at(-1)?.push([x(at), y(v)]);
          });
          const line = runs
            .filter((r) => r.length > 0)
            .map((r) => `M${r.map(([px, py]) => `${px.toFixed(1)},${py.toFixed(1)}`).join('L')}`)
            .join('');
          const area = runs
            .filter((r) => r.length > 1)
            .map((r) => {
              const first = r[0]?.[0] ?? 0;
              const last = r.at(-1)?.[0] ?? 0;
              return `M${first.toFixed(1)},${base}L${r.map(([px, py]) => `${px.toFixed(1)},${py.toFixed(1)}`).join('L')}L${last.toFixed(1)},${base}Z`;
            })
            .join('');
          const now = t.values.at(-1);
          const at = times.at(-1);
          return (
            <g key={t.name} class={`trend-${k}`}>
              {k === 0 && area !== '' && <path d={area} class="area" />}
              {line !== '' && <path d={line} class="line" />}
              {now !== null && now !== undefined && at !== undefined && (
                <circle cx={x(at)} cy={y(now)} r="3" class="dot" />
              )}
            </g>
          );
        })}
      </svg>
      {trends.length > 1 && (
        <figcaption class="legend">
          {trends.map((t, k) => (
            <span key={t.name} class={`series series-${k}`}>
              {t.name}
            </span>
          ))}
        </figcaption>
      )}
    </figure>
  );
}

export function Meter({ ratio, label }: { ratio: number; label: string }) {
  const r = Math.min(1, Math.max(0, ratio));
  return (
    <svg class="meter" viewBox="0 0 200 16" role="img" aria-label={label} preserveAspectRatio="none">
      <rect x="0" y="0" width="200" height="16" rx="4" class="track" />
      <rect x="0" y="0" width={200 * r} height="16" rx="4" class="fill" />
    </svg>
  );
}

export function TopList({
  title,
  rows,
  link,
}: {
  title: string;
  rows: { key: string; clicks: number }[];
  /** Renders a row's key as a link (e.g. to that link's own analytics). */
  link?: (key: string) => ComponentChildren;
}) {
  const max = Math.max(1, ...rows.map((r) => r.clicks));
  return (
    <section class="card toplist" aria-label={title}>
      <h3>{title}</h3>
      {rows.length === 0 ? (
        <p class="muted">No clicks yet.</p>
      ) : (
        <ol>
          {rows.map((r) => (
            <li key={r.key}>
              <span class="key">{link === undefined ? r.key : link(r.key)}</span>
              <span class="num">{r.clicks}</span>
              <Meter ratio={r.clicks / max} label={`${r.clicks} of the most, ${max}`} />
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
