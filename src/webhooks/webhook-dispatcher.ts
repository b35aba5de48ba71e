// Webhook delivery: every poll, the change streams are fanned out into deliveries (the store does
// it atomically with its offset, so any number of processes may run this), then due deliveries are
// claimed (each held for a lease) and sent, signed, through a queue per endpoint with at most
// `concurrency` in flight: a slow or failing endpoint waits on its own queue and holds up no other.
// A failed attempt is retried with exponential backoff and full jitter until the retry window
// (24 h) after the event is over; then the delivery is dead (the log says so). Receivers drop
// duplicates by the Hop-Event-Id header. With tracing on, each attempt is a client span whose
// W3C traceparent (and tracestate) the request carries.
import { type ClickEvent, publicClick } from '../domain/clicks.ts';
import {
  type DeliveryOutcome,
  type DueDelivery,
  type NewDelivery,
  nextAttempt,
  signDelivery,
  type Webhook,
} from '../domain/webhooks.ts';
import type { Logger } from '../logger.ts';
import type { LinkStore, WebhookStore } from '../storage/ports.ts';
import { NO_TRACING, type Span, type Tracing } from '../tracing/tracing.ts';

export interface WebhookDispatcherOptions {
  readonly pollMs: number;
  readonly timeoutMs: number;
  readonly concurrency: number;
  readonly retryBaseMs: number;
  readonly retryCapMs: number;
  readonly retryWindowMs: number;
}

export type SendDelivery = (
  url: string,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
) => Promise<number>;

const FAN_OUT_BATCH = 500;
const CLAIM_BATCH = 50;
/** Queued deliveries per endpoint at most; more wait in the store, unclaimed. */
const MAX_QUEUED = 100;
const CLICK_BUFFER = 10_000;
const HOOKS_REFRESH_MS = 5_000;

interface Endpoint {
  active: number;
  queue: DueDelivery[];
}

export class WebhookDispatcher {
  private timer: NodeJS.Timeout | null = null;
  private polling: Promise<void> | null = null;
  private readonly endpoints = new Map<string, Endpoint>();
  private readonly held = new Set<number>();
  private readonly inFlight = new Set<Promise<void>>();
  private anyHooks = false;
  private clickHooks: Webhook[] = [];
  private hooksAt = 0;
  private clicks: NewDelivery[] = [];
  private clicksDropped = 0;
  private readonly store: WebhookStore & Pick<LinkStore, 'changeStreams'>;
  private readonly opts: WebhookDispatcherOptions;
  private readonly log: Logger;
  private readonly send: SendDelivery;
  private readonly now: () => number;
  private readonly tracing: Tracing;

  constructor(
    store: WebhookStore & Pick<LinkStore, 'changeStreams'>,
    opts: WebhookDispatcherOptions,
    log: Logger,
    send: SendDelivery,
    now: () => number = Date.now,
    tracing: Tracing = NO_TRACING,
  ) {
    this.tracing = tracing;
    this.store = store;
    this.opts = opts;
    this.log = log;
    this.send = send;
    this.now = now;
  }

  start(): void {
    const tick = () => {
      this.polling = this.poll()
        .catch((err) => this.log.warn({ err }, 'webhook poll failed'))
        .finally(() => {
          this.polling = null;
          if (this.timer !== null) this.timer = setTimeout(tick, this.opts.pollMs).unref();
        });
    };
    this.timer = setTimeout(tick, this.opts.pollMs).unref();
  }

  async stop(): Promise<void> {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    await this.polling;
    await this.flushClicks().catch(() => {});
    await Promise.all(this.inFlight);
  }

  /** Whether any webhook takes clicks (so enriched clicks must reach offerClick at all). */
  get wantsClicks(): boolean {
    return this.clickHooks.length > 0;
  }

  /**
   * A click, for the webhooks subscribed to link.clicked (each at its sample rate). Cheap when none
   * is: the redirect path calls this for every click.
   */
  offerClick(e: ClickEvent): void {
    if (this.clickHooks.length === 0) return;
    for (const h of this.clickHooks) {
      if (h.clickSampleRate < 1 && Math.random() >= h.clickSampleRate) continue;
      if (this.clicks.length >= CLICK_BUFFER) {
        this.clicksDropped++;
        continue;
      }
      const eventId = `clk_${e.id}`;
      const click = publicClick(e);
      this.clicks.push({
        webhookId: h.id,
        eventId,
        eventType: 'link.clicked',
        payload: { id: eventId, type: 'link.clicked', createdAt: click.at, data: { click } },
        createdAt: new Date(e.at),
      });
    }
  }

  /** The subscriptions changed here: look again at the next poll, not in 5 s. */
  refresh(): void {
    this.hooksAt = 0;
  }

  /** One round: fan out, take click events in, claim and start what is due. */
  async poll(): Promise<void> {
    if (this.now() - this.hooksAt >= HOOKS_REFRESH_MS) {
      this.hooksAt = this.now();
      const hooks = await this.store.listWebhooks();
      this.anyHooks = hooks.length > 0;
      this.clickHooks = hooks.filter((h) => h.events.includes('link.clicked'));
    }
    // Without subscriptions nothing is owed; the offsets catch up once there are (a webhook only
    // gets the changes made after it was created).
    if (!this.anyHooks) return;
    for (let s = 0; s < this.store.changeStreams; s++) {
      while ((await this.store.fanOutChanges(s, FAN_OUT_BATCH)) === FAN_OUT_BATCH) {}
    }
    await this.flushClicks();
    const due = await this.store.claimDeliveries(new Date(this.now()), CLAIM_BATCH, this.leaseMs());
    for (const d of due) this.enqueue(d);
  }

  /** A claim outlives the longest wait in an endpoint's queue plus its attempt. */
  private leaseMs(): number {
    return this.opts.timeoutMs * (Math.ceil(MAX_QUEUED / this.opts.concurrency) + 2);
  }

  private async flushClicks(): Promise<void> {
    if (this.clicksDropped > 0) {
      this.log.warn({ dropped: this.clicksDropped }, 'link.clicked webhook events dropped: buffer full');
      this.clicksDropped = 0;
    }
    if (this.clicks.length === 0) return;
    const batch = this.clicks;
    this.clicks = [];
    await this.store.enqueueDeliveries(batch);
  }

  private enqueue(d: DueDelivery): void {
    if (this.held.has(d.id)) return; // still in a queue here from an earlier claim
    let ep = this.endpoints.get(d.webhookId);
    if (ep === undefined) {
      ep = { active: 0, queue: [] };
      this.endpoints.set(d.webhookId, ep);
    }
    if (ep.queue.length >= MAX_QUEUED) return; // claimed again once its lease runs out
    this.held.add(d.id);
    ep.queue.push(d);
    this.drain(d.webhookId, ep);
  }

  private drain(webhookId: string, ep: Endpoint): void {
    while (ep.active < this.opts.concurrency && ep.queue.length > 0) {
      const d = ep.queue.shift()!;
      ep.active++;
      const p: Promise<void> = this.attempt(d)
        .catch((err) => this.log.warn({ err, delivery: d.id }, 'webhook delivery bookkeeping failed'))
        .finally(() => {
          ep.active--;
          this.held.delete(d.id);
          this.inFlight.delete(p);
          if (ep.active === 0 && ep.queue.length === 0) this.endpoints.delete(webhookId);
          else this.drain(webhookId, ep);
        });
      this.inFlight.add(p);
    }
  }

  private attempt(d: DueDelivery): Promise<void> {
    // Host and port only: a target's path or query may hold its secret (many hooks' URLs do).
    const target = new URL(d.url);
    const opts = {
      kind: 'client',
      parent: null,
      attributes: {
        'http.request.method': 'POST',
        'server.address': target.hostname,
        'server.port': Number(target.port || (target.protocol === 'https:' ? 443 : 80)),
        'url.scheme': target.protocol.slice(0, -1),
        'hop.webhook.id': d.webhookId,
        'hop.webhook.event_type': d.eventType,
        'hop.webhook.attempt': d.attempts + 1,
      },
    } as const;
    return this.tracing.withSpan('POST', opts, (span) => this.deliver(d, span));
  }

  private async deliver(d: DueDelivery, span: Span): Promise<void> {
    const body = JSON.stringify(d.payload);
    const timestamp = Math.floor(this.now() / 1000);
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'Hop-Webhooks/1',
      'hop-event-id': d.eventId,
      'hop-event-type': d.eventType,
      'hop-webhook-id': d.webhookId,
      'hop-delivery-attempt': String(d.attempts + 1),
      'hop-timestamp': String(timestamp),
      'hop-signature': signDelivery(d.secret, timestamp, body),
    };
    this.tracing.inject(headers);
    let outcome: DeliveryOutcome;
    try {
      const status = await this.send(d.url, headers, body, this.opts.timeoutMs);
      outcome =
        status >= 200 && status < 300
          ? { ok: true, status }
          : { ok: false, status, error: `answered ${status}` };
    } catch (err) {
      outcome = { ok: false, status: null, error: err instanceof Error ? err.message : String(err) };
    }
    if (outcome.status !== null) span.setAttribute('http.response.status_code', outcome.status);
    if (!outcome.ok) span.fail(outcome.error);
    const now = this.now();
    const next = outcome.ok
      ? null
      : nextAttempt(d.attempts + 1, d.createdAt.getTime(), now, {
          baseMs: this.opts.retryBaseMs,
          capMs: this.opts.retryCapMs,
          windowMs: this.opts.retryWindowMs,
        });
    await this.store.finishAttempt(d.id, outcome, next === null ? null : new Date(next), new Date(now));
    if (!outcome.ok && next === null) {
      this.log.warn(
        { delivery: d.id, webhook: d.webhookId, event: d.eventId },
        'webhook delivery dead-lettered',
      );
    }
  }
}
