// /api/v1/webhooks — subscribe URLs to link events, list and delete subscriptions, and read each
// one's delivery log. The signing secret is returned once, at creation.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Deps } from '../deps.ts';
import { HopError } from '../domain/errors.ts';
import { type Delivery, WEBHOOK_EVENTS, type Webhook, type WebhookEvent } from '../domain/webhooks.ts';
import { AUTHENTICATED, AUTHENTICATED_CHANGE, problemResponses, WITH_BODY } from '../http/openapi.ts';

const webhookSchema = {
  type: 'object',
  required: ['id', 'url', 'events', 'clickSampleRate', 'createdAt'],
  properties: {
    id: { type: 'string' },
    url: { type: 'string' },
    events: { type: 'array', items: { type: 'string', enum: [...WEBHOOK_EVENTS] } },
    clickSampleRate: { type: 'number' },
    createdAt: { type: 'string', format: 'date-time' },
    secret: {
      type: 'string',
      description:
        'Signs every delivery: Hop-Signature is v1=hex(HMAC-SHA256(secret, Hop-Timestamp + "." + body)). Returned once, at creation',
    },
  },
} as const;

const deliverySchema = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    eventId: { type: 'string' },
    eventType: { type: 'string' },
    status: { type: 'string', enum: ['pending', 'delivered', 'dead'] },
    attempts: { type: 'integer' },
    lastStatus: { anyOf: [{ type: 'integer' }, { type: 'null' }] },
    lastError: { anyOf: [{ type: 'string' }, { type: 'null' }] },
    createdAt: { type: 'string', format: 'date-time' },
    nextAttemptAt: { anyOf: [{ type: 'string', format: 'date-time' }, { type: 'null' }] },
    finishedAt: { anyOf: [{ type: 'string', format: 'date-time' }, { type: 'null' }] },
  },
} as const;

const view = (w: Webhook) => ({
  id: w.id,
  url: w.url,
  events: w.events,
  clickSampleRate: w.clickSampleRate,
  createdAt: w.createdAt.toISOString(),
});

const deliveryView = (d: Delivery) => ({
  id: d.id,
  eventId: d.eventId,
  eventType: d.eventType,
  status: d.status,
  attempts: d.attempts,
  lastStatus: d.lastStatus,
  lastError: d.lastError,
  createdAt: d.createdAt.toISOString(),
  nextAttemptAt: d.status === 'pending' ? d.nextAttemptAt.toISOString() : null,
  finishedAt: d.finishedAt?.toISOString() ?? null,
});

const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^wh_[A-Za-z0-9_-]{1,64}$' } },
} as const;

export function registerWebhookRoutes(app: FastifyInstance, deps: Deps): void {
  app.post<{ Body: { url: string; events: WebhookEvent[]; clickSampleRate?: number } }>(
    '/webhooks',
    {
      schema: {
        summary: 'Subscribe a URL to link events (the signing secret is shown once)',
        operationId: 'createWebhook',
        tags: ['webhooks'],
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['url', 'events'],
          properties: {
            url: { type: 'string', pattern: '^https?://[^\\s]+$', maxLength: 2048 },
            events: {
              type: 'array',
              minItems: 1,
              uniqueItems: true,
              items: { type: 'string', enum: [...WEBHOOK_EVENTS] },
            },
            clickSampleRate: {
              type: 'number',
              exclusiveMinimum: 0,
              maximum: 1,
              description: 'Share of clicks sent as link.clicked (default 1: all)',
            },
          },
        },
        response: {
          201: webhookSchema,
          ...problemResponses(...AUTHENTICATED_CHANGE, ...WITH_BODY, 'webhook_target_forbidden'),
        },
      },
    },
    async (req, reply) => {
      try {
        new URL(req.body.url);
      } catch {
        throw new HopError('validation_failed', 'url must be an absolute http(s) URL.');
      }
      await deps.webhookTargets.checkSubscription(req.body.url);
      const hook: Webhook = {
        id: `wh_${randomBytes(12).toString('base64url')}`,
        url: req.body.url,
        events: req.body.events,
        secret: `whsec_${randomBytes(24).toString('base64url')}`,
        clickSampleRate: req.body.clickSampleRate ?? 1,
        createdAt: new Date(deps.now()),
      };
      await deps.store.createWebhook(hook);
      deps.webhooks?.refresh();
      return reply.code(201).send({ ...view(hook), secret: hook.secret });
    },
  );
  app.get(
    '/webhooks',
    {
      schema: {
        summary: 'List webhook subscriptions (never their secrets)',
        operationId: 'listWebhooks',
        tags: ['webhooks'],
        response: {
          200: { type: 'object', properties: { items: { type: 'array', items: webhookSchema } } },
          ...problemResponses(...AUTHENTICATED),
        },
      },
    },
    async () => ({ items: (await deps.store.listWebhooks()).map(view) }),
  );
  app.get<{ Params: { id: string } }>(
    '/webhooks/:id',
    {
      schema: {
        summary: 'One webhook subscription',
        operationId: 'getWebhook',
        tags: ['webhooks'],
        params: idParams,
        response: {
          200: webhookSchema,
          ...problemResponses(...AUTHENTICATED, 'validation_failed', 'not_found'),
        },
      },
    },
    async (req) => {
      const hook = await deps.store.getWebhook(req.params.id);
      if (hook === null) throw new HopError('not_found', `No webhook ${req.params.id}.`);
      return view(hook);
    },
  );
  app.delete<{ Params: { id: string } }>(
    '/webhooks/:id',
    {
      schema: {
        summary: 'Delete a webhook subscription; what it was still owed is not sent',
        operationId: 'deleteWebhook',
        tags: ['webhooks'],
        params: idParams,
        response: {
          204: { type: 'null', description: 'Deleted' },
          ...problemResponses(...AUTHENTICATED_CHANGE, ...WITH_BODY, 'not_found'),
        },
      },
    },
    async (req, reply) => {
      if (!(await deps.store.deleteWebhook(req.params.id, new Date(deps.now())))) {
        throw new HopError('not_found', `No webhook ${req.params.id}.`);
      }
      deps.webhooks?.refresh();
      return reply.code(204).send();
    },
  );
  app.get<{ Params: { id: string }; Querystring: { limit?: number } }>(
    '/webhooks/:id/deliveries',
    {
      schema: {
        summary: "A webhook's delivery log, newest first",
        operationId: 'listWebhookDeliveries',
        tags: ['webhooks'],
        params: idParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 } },
        },
        response: {
          200: { type: 'object', properties: { items: { type: 'array', items: deliverySchema } } },
          ...problemResponses(...AUTHENTICATED, 'validation_failed', 'not_found'),
        },
      },
    },
    async (req) => {
      if ((await deps.store.getWebhook(req.params.id)) === null) {
        throw new HopError('not_found', `No webhook ${req.params.id}.`);
      }
      const items = await deps.store.listDeliveries(req.params.id, req.query.limit ?? 50);
      return { items: items.map(deliveryView) };
    },
  );
}
