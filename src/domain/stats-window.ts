// The window a stats request asks about, validated at the edge, and the shape of the answer.
// Rollups are hourly, so a window is rounded out to whole hours.
import { DAY_MS, floorTo, HOUR_MS } from './clicks.ts';
import { HopError } from './errors.ts';

export interface StatsWindow {
  readonly from: number;
  readonly to: number;
  readonly interval: 'hour' | 'day';
  readonly includeBots: boolean;
}

export interface StatsParams {
  from?: string | undefined;
  to?: string | undefined;
  interval?: string | undefined;
  includeBots?: string | undefined;
}

const DEFAULT_SPAN_MS = 7 * DAY_MS;
const MAX_SPAN_MS = 400 * DAY_MS;
const MAX_HOURLY_SPAN_MS = 31 * DAY_MS;
// Up to this span an hourly series is the default; beyond it, a daily one.
const HOURLY_DEFAULT_UP_TO_MS = 3 * DAY_MS;

const invalid = (field: string, detail: string) =>
  new HopError('validation_failed', detail, { extra: { field } });

function instant(raw: string, field: string): number {
  const t = /^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(raw) ? Date.parse(raw) : Number.NaN;
  if (Number.isNaN(t)) throw invalid(field, `"${field}" must be an ISO 8601 date or date-time.`);
  return t;
}

export function statsWindow(p: StatsParams, now: number): StatsWindow {
  const toRaw = p.to === undefined ? now : instant(p.to, 'to');
  const fromRaw = p.from === undefined ? toRaw - DEFAULT_SPAN_MS : instant(p.from, 'from');
  const from = floorTo(fromRaw, HOUR_MS);
  const to = Math.ceil(toRaw / HOUR_MS) * HOUR_MS;
  if (from >= to) throw invalid('from', '"from" must be before "to".');
  if (to - from > MAX_SPAN_MS) throw invalid('from', 'A window spans at most 400 days.');
  if (p.interval !== undefined && p.interval !== 'hour' && p.interval !== 'day') {
    throw invalid('interval', '"interval" is hour or day.');
  }
  const interval = p.interval ?? (to - from <= HOURLY_DEFAULT_UP_TO_MS ? 'hour' : 'day');
  if (interval === 'hour' && to - from > MAX_HOURLY_SPAN_MS) {
    throw invalid('interval', 'An hourly series spans at most 31 days; ask for interval=day.');
  }
  if (p.includeBots !== undefined && p.includeBots !== 'true' && p.includeBots !== 'false') {
    throw invalid('includeBots', '"includeBots" is true or false.');
  }
  return { from, to, interval, includeBots: p.includeBots === 'true' };
}

/** Every bucket of the window, with zero where nothing was clicked, so charts need no gaps logic. */
export function fillSeries(
  w: StatsWindow,
  points: readonly { t: number; clicks: number }[],
): { t: string; clicks: number }[] {
  const unit = w.interval === 'hour' ? HOUR_MS : DAY_MS;
  const by = new Map(points.map((p) => [p.t, p.clicks]));
  const out: { t: string; clicks: number }[] = [];
  for (let t = floorTo(w.from, unit); t < w.to; t += unit) {
    out.push({ t: new Date(t).toISOString(), clicks: by.get(t) ?? 0 });
  }
  return out;
}

/** How an unknown value is shown: a click without a referrer came directly. */
export function breakdownKey(dim: string, value: string): string {
  if (value !== '') return value;
  return dim === 'referrer' ? '(direct)' : '(unknown)';
}
