// The click half of the memory store: the same answers as the SQL rollups, from plain maps.

import {
  AGENT_SEP,
  ALL_LINKS,
  BREAKDOWNS,
  type ClickEvent,
  COUNTED_BY,
  DAY_MS,
  emptyBreakdowns,
  floorTo,
  type RollupIncrement,
} from '../../domain/clicks.ts';
import { keyOnDomain } from '../../domain/domains.ts';
import { newestVisits, type VisitPage, type VisitQuery } from '../../domain/visits.ts';
import type { ClickBatch, ClickMaintenance, ClickStats, StatsQuery, UnfoldedBatch } from '../ports.ts';

interface RawBatch {
  readonly id: string;
  readonly events: readonly ClickEvent[];
  fold: { id: string; parts: number } | null;
  folded: boolean;
}

export class MemoryClicks {
  private readonly batches = new Map<string, number>();
  private readonly rollups = new Map<string, RollupIncrement>();
  private readonly visitors = new Map<string, number>();
  private readonly salts = new Map<number, string>();
  private events: { batchAt: number; events: readonly ClickEvent[] }[] = [];
  readonly totals = new Map<string, number>();
  /** Of the totals, the bots' clicks. */
  readonly botTotals = new Map<string, number>();
  private readonly raw = new Map<string, RawBatch>();

  writeRaw(id: string, events: readonly ClickEvent[], now: number): 'applied' | 'duplicate' {
    if (this.raw.has(id)) return 'duplicate';
    this.raw.set(id, { id, events, fold: null, folded: false });
    if (events.length > 0) this.events.push({ batchAt: now, events });
    return 'applied';
  }

  beginFold(fold: { id: string; parts: number }, batchIds: readonly string[]): void {
    for (const id of batchIds) {
      const b = this.raw.get(id);
      if (b !== undefined && !b.folded && b.fold === null) b.fold = fold;
    }
  }

  endFold(foldId: string): void {
    for (const b of this.raw.values()) if (b.fold?.id === foldId) b.folded = true;
  }

  unfolded(): UnfoldedBatch[] {
    return [...this.raw.values()]
      .filter((b) => !b.folded)
      .sort((a, b) => (a.id < b.id ? -1 : 1))
      .map((b) => ({ id: b.id, fold: b.fold, events: b.events }));
  }

  record(batch: ClickBatch, now: number): 'applied' | 'duplicate' {
    if (this.batches.has(batch.id)) return 'duplicate';
    this.batches.set(batch.id, now);
    for (const r of batch.rollups) {
      const k = `${r.code}\u0000${r.dim}\u0000${r.hour}\u0000${r.value}\u0000${r.bot}`;
      const old = this.rollups.get(k);
      this.rollups.set(k, { ...r, clicks: (old?.clicks ?? 0) + r.clicks });
      if (r.dim === COUNTED_BY && r.code !== ALL_LINKS) {
        this.totals.set(r.code, (this.totals.get(r.code) ?? 0) + r.clicks);
        if (r.bot) this.botTotals.set(r.code, (this.botTotals.get(r.code) ?? 0) + r.clicks);
      }
    }
    for (const v of batch.visitors) {
      const k = `${v.code}\u0000${v.day}\u0000${v.bot}\u0000${v.reg}`;
      this.visitors.set(k, Math.max(this.visitors.get(k) ?? 0, v.rank));
    }
    if (batch.events.length > 0) this.events.push({ batchAt: now, events: batch.events });
    return 'applied';
  }

  /** Every stored event is listed at once here: there is nothing to split. */
  visits(q: VisitQuery): VisitPage {
    const found: ClickEvent[] = [];
    for (const b of this.events)
      for (const e of b.events) {
        if (e.at < q.from || e.at >= q.to || (e.bot && !q.includeBots)) continue;
        if (
          q.keys !== null
            ? !q.keys.includes(e.code)
            : q.domain !== undefined && !keyOnDomain(e.code, q.domain)
        )
          continue;
        found.push(e);
      }
    return { visits: newestVisits(found, q.offset + q.limit).slice(q.offset), total: found.length };
  }

  deleteVisits(keys: readonly string[]): number {
    let n = 0;
    this.events = this.events.map((b) => {
      const kept = b.events.filter((e) => !keys.includes(e.code));
      n += b.events.length - kept.length;
      return { batchAt: b.batchAt, events: kept };
    });
    for (const [k, r] of this.rollups) if (keys.includes(r.code)) this.rollups.delete(k);
    for (const k of this.visitors.keys())
      if (keys.includes(k.slice(0, k.indexOf('\u0000')))) this.visitors.delete(k);
    for (const key of keys) {
      this.totals.delete(key);
      this.botTotals.delete(key);
    }
    return n;
  }

  stats(q: StatsQuery): ClickStats {
    const unit = q.interval === 'hour' ? 3_600_000 : DAY_MS;
    const series = new Map<number, number>();
    const dims = new Map<string, number>();
    const links = new Map<string, number>();
    // Pending rows count unless the ledger has their batch, as in SQL.
    const unwritten = <T extends { batch: string | null }>(r: T) =>
      r.batch === null || !this.batches.has(r.batch);
    const held = q.pending?.();
    const pending = (held?.rollups ?? []).filter(unwritten);
    for (const r of [...this.rollups.values(), ...pending]) {
      if (r.hour < q.from || r.hour >= q.to || (r.bot && !q.includeBots)) continue;
      const mine = q.domain === undefined ? r.code === q.code : keyOnDomain(r.code, q.domain);
      if (r.dim === COUNTED_BY && r.code !== ALL_LINKS && (q.domain === undefined || mine))
        links.set(r.code, (links.get(r.code) ?? 0) + r.clicks);
      if (!mine) continue;
      if (r.dim === COUNTED_BY) {
        const t = floorTo(r.hour, unit);
        series.set(t, (series.get(t) ?? 0) + r.clicks);
      }
      const add = (dim: string, value: string) => {
        const k = `${dim}\u0000${value}`;
        dims.set(k, (dims.get(k) ?? 0) + r.clicks);
      };
      if (r.dim === 'agent') {
        const [browser = '', os = '', device = '', rule = ''] = r.value.split(AGENT_SEP);
        add('browser', browser);
        add('os', os);
        add('device', device);
        add('rule', rule);
      } else add(r.dim, r.value);
    }
    const byClicks = <T extends { clicks: number }>(a: T, b: T, ka: string, kb: string) =>
      b.clicks - a.clicks || (ka < kb ? -1 : ka > kb ? 1 : 0);
    const breakdowns = emptyBreakdowns();
    for (const dim of BREAKDOWNS) {
      breakdowns[dim] = [...dims]
        .filter(([k]) => k.startsWith(`${dim}\u0000`))
        .map(([k, clicks]) => ({ value: k.slice(dim.length + 1), clicks }))
        .sort((a, b) => byClicks(a, b, a.value, b.value))
        .slice(0, q.top);
    }
    const firstDay = floorTo(q.from, DAY_MS);
    const ranks = new Map<number, number>();
    for (const [k, rank] of this.visitors) {
      const [code, day, bot, reg] = k.split('\u0000') as [string, string, string, string];
      const mine = q.domain === undefined ? code === q.code : keyOnDomain(code, q.domain);
      if (!mine || Number(day) < firstDay || Number(day) >= q.to) continue;
      if (bot === 'true' && !q.includeBots) continue;
      ranks.set(Number(reg), Math.max(ranks.get(Number(reg)) ?? 0, rank));
    }
    for (const v of (held?.visitors ?? []).filter(unwritten)) {
      if (v.bot && !q.includeBots) continue;
      ranks.set(v.reg, Math.max(ranks.get(v.reg) ?? 0, v.rank));
    }
    return {
      series: [...series].sort((a, b) => a[0] - b[0]).map(([t, clicks]) => ({ t, clicks })),
      breakdowns,
      visitorRegisters: [...ranks].map(([reg, rank]) => ({ reg, rank })),
      topLinks:
        q.code === ALL_LINKS
          ? [...links]
              .map(([code, clicks]) => ({ code, clicks }))
              .sort((a, b) => byClicks(a, b, a.code, b.code))
              .slice(0, q.top)
          : [],
    };
  }

  daySalts(days: readonly number[], fresh: () => string): Map<number, string> {
    for (const d of days) if (!this.salts.has(d)) this.salts.set(d, fresh());
    return new Map(days.map((d) => [d, this.salts.get(d)!]));
  }

  maintain(now: number, retentionDays: number): ClickMaintenance {
    const cutoff = now - retentionDays * DAY_MS;
    const before = this.events.reduce((n, b) => n + b.events.length, 0);
    this.events = this.events.filter((b) => b.events.some((e) => e.at >= cutoff));
    let prunedBatches = 0;
    for (const [id, at] of this.batches) {
      if (at < cutoff) {
        this.batches.delete(id);
        prunedBatches++;
      }
    }
    for (const d of this.salts.keys()) if (d < floorTo(now, DAY_MS) - DAY_MS) this.salts.delete(d);
    return {
      compactedThrough: floorTo(now, DAY_MS),
      prunedEvents: before - this.events.reduce((n, b) => n + b.events.length, 0),
      prunedBatches,
    };
  }
}
