// Webhook subscriptions and deliveries in SQL (PGlite and PostgreSQL alike). The fan-out reads a
// change stream after its offset and writes the deliveries it owes and the new offset in one
// transaction, holding the offset row locked: any number of processes may run it, and each change
// is fanned out once. Senders claim due deliveries with SKIP LOCKED and a lease (locked_until).
import type {
  Delivery,
  DeliveryOutcome,
  DueDelivery,
  NewDelivery,
  Webhook,
  WebhookEvent,
} from '../../domain/webhooks.ts';
import type { ChangeEvent } from '../ports.ts';
import { deliveriesFor } from '../webhook-deliveries.ts';
import type { SqlClient } from './sql-client.ts';

const WEBHOOK_COLUMNS = 'id, url, events, secret, click_sample_rate, created_at';
const DELIVERY_COLUMNS = `d.id::text AS id, d.webhook_id, d.event_id, d.event_type, d.payload, d.status, d.attempts,
  d.next_attempt_at, d.last_status, d.last_error, d.created_at, d.finished_at`;

interface WebhookRow {
  id: string;
  url: string;
  events: string[];
  secret: string;
  click_sample_rate: number | string;
  created_at: Date;
}

interface DeliveryRow {
  id: string;
  webhook_id: string;
  event_id: string;
  event_type: string;
  payload: unknown;
  status: Delivery['status'];
  attempts: number;
  next_attempt_at: Date;
  last_status: number | null;
  last_error: string | null;
  created_at: Date;
  finished_at: Date | null;
}

const toWebhook = (r: WebhookRow): Webhook => ({
  id: r.id,
  url: r.url,
  events: r.events as WebhookEvent[],
  secret: r.secret,
  clickSampleRate: Number(r.click_sample_rate),
  createdAt: r.created_at,
});

const toDelivery = (r: DeliveryRow): Delivery => ({
  id: Number(r.id),
  webhookId: r.webhook_id,
  eventId: r.event_id,
  eventType: r.event_type as WebhookEvent,
  payload: r.payload,
  status: r.status,
  attempts: r.attempts,
  nextAttemptAt: r.next_attempt_at,
  lastStatus: r.last_status,
  lastError: r.last_error,
  createdAt: r.created_at,
  finishedAt: r.finished_at,
});

export async function createWebhook(db: SqlClient, w: Webhook): Promise<void> {
  await db.query(`INSERT INTO webhooks (${WEBHOOK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)`, [
    w.id,
    w.url,
    w.events,
    w.secret,
    w.clickSampleRate,
    w.createdAt,
  ]);
}

export async function listWebhooks(db: SqlClient): Promise<Webhook[]> {
  const res = await db.query<WebhookRow>(
    `SELECT ${WEBHOOK_COLUMNS} FROM webhooks WHERE deleted_at IS NULL ORDER BY created_at, id`,
  );
  return res.rows.map(toWebhook);
}

export async function getWebhook(db: SqlClient, id: string): Promise<Webhook | null> {
  const res = await db.query<WebhookRow>(
    `SELECT ${WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1 AND deleted_at IS NULL`,
    [id],
  );
  return res.rows[0] === undefined ? null : toWebhook(res.rows[0]);
}

/** Deletes the subscription; what it was still owed is given up (dead), not sent. */
export function deleteWebhook(db: SqlClient, id: string, now: Date): Promise<boolean> {
  return db.transaction(async (tx) => {
    const res = await tx.query('UPDATE webhooks SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL', [
      id,
      now,
    ]);
    if (res.affectedRows === 0) return false;
    await tx.query(
      `UPDATE webhook_deliveries SET status = 'dead', last_error = 'webhook deleted', finished_at = $2
       WHERE webhook_id = $1 AND status = 'pending'`,
      [id, now],
    );
    return true;
  });
}

export async function enqueueDeliveries(db: SqlClient, ds: readonly NewDelivery[]): Promise<void> {
  if (ds.length === 0) return;
  await db.query(
    `INSERT INTO webhook_deliveries (webhook_id, event_id, event_type, payload, next_attempt_at, created_at)
     SELECT r.webhook_id, r.event_id, r.event_type, r.payload, r.created_at, r.created_at
     FROM jsonb_to_recordset($1::jsonb) AS r(webhook_id text, event_id text, event_type text, payload jsonb,
       created_at timestamptz)
     ON CONFLICT (webhook_id, event_id) DO NOTHING`,
    [
      JSON.stringify(
        ds.map((d) => ({
          webhook_id: d.webhookId,
          event_id: d.eventId,
          event_type: d.eventType,
          payload: d.payload,
          created_at: d.createdAt,
        })),
      ),
    ],
  );
}

/**
 * Fans one change stream out into deliveries, from its offset on, and moves the offset: one
 * transaction with the offset row locked. `read` reads the stream (it may be another database).
 */
export function fanOutChanges(
  db: SqlClient,
  stream: number,
  limit: number,
  read: (tx: SqlClient, afterSeq: number, limit: number) => Promise<ChangeEvent[]>,
): Promise<number> {
  return db.transaction(async (tx) => {
    await tx.query(
      'INSERT INTO webhook_offsets (stream, seq) VALUES ($1, 0) ON CONFLICT (stream) DO NOTHING',
      [stream],
    );
    const off = await tx.query<{ seq: string }>(
      'SELECT seq::text AS seq FROM webhook_offsets WHERE stream = $1 FOR UPDATE',
      [stream],
    );
    const changes = await read(tx, Number(off.rows[0]?.seq ?? 0), limit);
    if (changes.length === 0) return 0;
    const hooks = await listWebhooks(tx);
    await enqueueDeliveries(tx, deliveriesFor(stream, changes, hooks));
    await tx.query('UPDATE webhook_offsets SET seq = $2 WHERE stream = $1', [stream, changes.at(-1)!.seq]);
    return changes.length;
  });
}

export async function claimDeliveries(
  db: SqlClient,
  now: Date,
  limit: number,
  lockMs: number,
): Promise<DueDelivery[]> {
  const res = await db.query<DeliveryRow & { url: string; secret: string }>(
    `UPDATE webhook_deliveries d SET locked_until = $1::timestamptz + $3 * interval '1 millisecond'
     FROM webhooks w
     WHERE w.id = d.webhook_id AND d.id IN (
       SELECT id FROM webhook_deliveries
       WHERE status = 'pending' AND next_attempt_at <= $1 AND (locked_until IS NULL OR locked_until <= $1)
       ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED)
     RETURNING ${DELIVERY_COLUMNS}, w.url, w.secret`,
    [now, limit, lockMs],
  );
  return res.rows.map((r) => ({ ...toDelivery(r), url: r.url, secret: r.secret }));
}

/** The end of one attempt: delivered, or tried again at `next`, or dead when `next` is null. */
export async function finishAttempt(
  db: SqlClient,
  id: number,
  outcome: DeliveryOutcome,
  next: Date | null,
  now: Date,
): Promise<void> {
  const status = outcome.ok ? 'delivered' : next === null ? 'dead' : 'pending';
  await db.query(
    `UPDATE webhook_deliveries SET status = $2, attempts = attempts + 1, last_status = $3, last_error = $4,
       next_attempt_at = COALESCE($5, next_attempt_at), locked_until = NULL,
       finished_at = CASE WHEN $2 = 'pending' THEN NULL ELSE $6::timestamptz END
     WHERE id = $1`,
    [id, status, outcome.status, outcome.ok ? null : outcome.error.slice(0, 1_000), next, now],
  );
}

export async function listDeliveries(db: SqlClient, webhookId: string, limit: number): Promise<Delivery[]> {
  const res = await db.query<DeliveryRow>(
    `SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries d WHERE d.webhook_id = $1 ORDER BY d.id DESC LIMIT $2`,
    [webhookId, limit],
  );
  return res.rows.map(toDelivery);
}
