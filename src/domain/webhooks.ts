// Webhooks, as the domain sees them: which events exist, what a subscription is, what one
// delivery of an event owes, how a body is signed and when a failing delivery is tried again.
// Pure: the store keeps them, the sender does the HTTP.
import { createHmac } from 'node:crypto';

export const WEBHOOK_EVENTS = ['link.created', 'link.updated', 'link.deleted', 'link.clicked'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

export interface Webhook {
  readonly id: string;
  readonly url: string;
  readonly events: readonly WebhookEvent[];
  /** Signs every delivery; shown once, when the webhook is created. */
  readonly secret: string;
  /** The share of clicks delivered as link.clicked (1: all). */
  readonly clickSampleRate: number;
  readonly createdAt: Date;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'dead';

/** One event owed to one webhook. */
export interface NewDelivery {
  readonly webhookId: string;
  /** The event's id: the receiver's key to drop duplicates. */
  readonly eventId: string;
  readonly eventType: WebhookEvent;
  readonly payload: unknown;
  readonly createdAt: Date;
}

export interface Delivery extends NewDelivery {
  readonly id: number;
  readonly status: DeliveryStatus;
  readonly attempts: number;
  readonly nextAttemptAt: Date;
  readonly lastStatus: number | null;
  readonly lastError: string | null;
  readonly finishedAt: Date | null;
}

/** A due delivery handed to a sender, with where and how to send it. */
export interface DueDelivery extends Delivery {
  readonly url: string;
  readonly secret: string;
}

export type DeliveryOutcome =
  | { readonly ok: true; readonly status: number }
  | { readonly ok: false; readonly status: number | null; readonly error: string };

/** `v1=` HMAC-SHA256 over "timestamp.body", hex: what the Hop-Signature header carries. */
export function signDelivery(secret: string, timestamp: number, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * When a failed delivery is tried next: exponential backoff with full jitter, or null when the
 * retry window since the event is over (the delivery is then dead).
 */
export function nextAttempt(
  attempts: number,
  createdAt: number,
  now: number,
  o: { baseMs: number; capMs: number; windowMs: number },
  random = Math.random,
): number | null {
  const delay = random() * Math.min(o.capMs, o.baseMs * 2 ** Math.max(0, attempts - 1));
  const at = now + delay;
  return at - createdAt >= o.windowMs ? null : at;
}

/** Whether a subscription wants this event. */
export const wants = (w: Pick<Webhook, 'events'>, type: WebhookEvent): boolean => w.events.includes(type);
