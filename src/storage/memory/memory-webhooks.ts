// Webhooks in memory, with the SQL adapter's behaviour: deliveries unique per (webhook, event),
// a fan-out offset per stream, claims held for a lease.
import type { Delivery, DeliveryOutcome, DueDelivery, NewDelivery, Webhook } from '../../domain/webhooks.ts';
import type { ChangeEvent } from '../ports.ts';
import { deliveriesFor } from '../webhook-deliveries.ts';

interface Row {
  delivery: Delivery;
  lockedUntil: number;
}

export class MemoryWebhooks {
  private readonly hooks = new Map<string, Webhook & { deletedAt: Date | null }>();
  private readonly rows: Row[] = [];
  private readonly keys = new Set<string>();
  private readonly offsets = new Map<number, number>();

  async create(w: Webhook): Promise<void> {
    if (this.hooks.has(w.id)) throw new Error(`webhook ${w.id} exists`);
    this.hooks.set(w.id, { ...w, deletedAt: null });
  }

  async list(): Promise<Webhook[]> {
    return [...this.hooks.values()].filter((h) => h.deletedAt === null).map(({ deletedAt: _, ...w }) => w);
  }

  async get(id: string): Promise<Webhook | null> {
    return (await this.list()).find((w) => w.id === id) ?? null;
  }

  async delete(id: string, now: Date): Promise<boolean> {
    const h = this.hooks.get(id);
    if (h === undefined || h.deletedAt !== null) return false;
    h.deletedAt = now;
    for (const r of this.rows) {
      if (r.delivery.webhookId === id && r.delivery.status === 'pending') {
        r.delivery = { ...r.delivery, status: 'dead', lastError: 'webhook deleted', finishedAt: now };
      }
    }
    return true;
  }

  async fanOut(
    stream: number,
    limit: number,
    read: (after: number, limit: number) => Promise<ChangeEvent[]>,
  ) {
    const changes = await read(this.offsets.get(stream) ?? 0, limit);
    if (changes.length === 0) return 0;
    await this.enqueue(deliveriesFor(stream, changes, await this.list()));
    this.offsets.set(stream, changes.at(-1)!.seq);
    return changes.length;
  }

  async enqueue(ds: readonly NewDelivery[]): Promise<void> {
    for (const d of ds) {
      const key = `${d.webhookId}\u0000${d.eventId}`;
      if (this.keys.has(key)) continue;
      this.keys.add(key);
      this.rows.push({
        delivery: {
          ...d,
          id: this.rows.length + 1,
          status: 'pending',
          attempts: 0,
          nextAttemptAt: d.createdAt,
          lastStatus: null,
          lastError: null,
          finishedAt: null,
        },
        lockedUntil: 0,
      });
    }
  }

  async claim(now: Date, limit: number, lockMs: number): Promise<DueDelivery[]> {
    const t = now.getTime();
    const due = this.rows
      .filter(
        (r) =>
          r.delivery.status === 'pending' && r.delivery.nextAttemptAt.getTime() <= t && r.lockedUntil <= t,
      )
      .sort((a, b) => a.delivery.nextAttemptAt.getTime() - b.delivery.nextAttemptAt.getTime())
      .slice(0, limit);
    return due.map((r) => {
      r.lockedUntil = t + lockMs;
      const h = this.hooks.get(r.delivery.webhookId)!;
      return { ...r.delivery, url: h.url, secret: h.secret };
    });
  }

  async finish(id: number, outcome: DeliveryOutcome, next: Date | null, now: Date): Promise<void> {
    const r = this.rows[id - 1];
    if (r === undefined) return;
    const status = outcome.ok ? 'delivered' : next === null ? 'dead' : 'pending';
    r.lockedUntil = 0;
    r.delivery = {
      ...r.delivery,
      status,
      attempts: r.delivery.attempts + 1,
      lastStatus: outcome.status,
      lastError: outcome.ok ? null : outcome.error,
      nextAttemptAt: next ?? r.delivery.nextAttemptAt,
      finishedAt: status === 'pending' ? null : now,
    };
  }

  async deliveries(webhookId: string, limit: number): Promise<Delivery[]> {
    return this.rows
      .filter((r) => r.delivery.webhookId === webhookId)
      .map((r) => r.delivery)
      .reverse()
      .slice(0, limit);
  }
}
