// Webhooks end to end on the embedded store, with real HTTP receivers on loopback: signed
// deliveries of link events, retried with backoff until the receiver takes them (delivered once
// after dedupe by event id), a delivery log, a dead endpoint that holds up nobody, sampled clicks,
// and bad input answered with problem+json.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { signDelivery } from '../../src/domain/webhooks.ts';
import { type Harness, startHarness } from '../support/harness.ts';
import { receiver, until } from '../support/http-receiver.ts';

describe('webhooks', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      HOP_WEBHOOK_RETRY_BASE_MS: '100',
      HOP_WEBHOOK_TIMEOUT_MS: '1000',
      // The receivers listen on loopback, which webhooks may not reach unless allowed.
      HOP_WEBHOOK_ALLOW_TARGETS: '127.0.0.1',
    });
  });
  after(() => h.close());

  const call = async (method: 'GET' | 'POST' | 'DELETE' | 'PATCH', url: string, payload?: unknown) => {
    const res = await h.app.inject({
      method,
      url,
      headers: { ...h.auth, ...(payload === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(payload === undefined ? {} : { payload: JSON.stringify(payload) }),
    });
    return { status: res.statusCode, json: () => res.json(), headers: res.headers };
  };

  test('a receiver that fails 3 times then succeeds gets the event once after dedupe, validly signed', async () => {
    const r = await receiver((n) => (n <= 3 ? 500 : 204));
    const slow = await receiver(() => 200, { delayMs: 5_000 }); // answers after the timeout: every attempt fails
    try {
      const created = await call('POST', '/api/v1/webhooks', { url: r.url, events: ['link.created'] });
      assert.equal(created.status, 201);
      const hook = created.json() as { id: string; secret: string; events: string[] };
      assert.match(hook.secret, /^whsec_/);
      assert.deepEqual(hook.events, ['link.created']);
      const listed = (await call('GET', '/api/v1/webhooks')).json() as { items: Record<string, unknown>[] };
      assert.equal(listed.items.length, 1);
      assert.equal(listed.items[0]!.secret, undefined, 'the secret is shown once');
      // A dead endpoint subscribed to the same event must not delay the healthy one.
      const stuck = await call('POST', '/api/v1/webhooks', { url: slow.url, events: ['link.created'] });
      assert.equal(stuck.status, 201);

      const link = await call('POST', '/api/v1/links', { url: 'https://example.com/hooked' });
      assert.equal(link.status, 201);
      const code = (link.json() as { code: string }).code;
      await until('four attempts', () => r.got.length >= 4, 15_000);
      await new Promise((res) => setTimeout(res, 500)); // a fifth would now show

      assert.equal(r.got.length, 4);
      const ids = new Set(r.got.map((g) => g.headers['hop-event-id']));
      assert.equal(ids.size, 1, 'every attempt carries the same event id');
      for (const [i, g] of r.got.entries()) {
        const ts = Number(g.headers['hop-timestamp']);
        assert.equal(g.headers['hop-signature'], signDelivery(hook.secret, ts, g.body), 'signature');
        assert.ok(Math.abs(Date.now() / 1000 - ts) < 60);
        assert.equal(g.headers['hop-delivery-attempt'], String(i + 1));
      }
      // The receiver's side: dedupe by id, keep the first body.
      const unique = new Map(r.got.map((g) => [g.headers['hop-event-id'], JSON.parse(g.body)]));
      assert.equal(unique.size, 1);
      const event = [...unique.values()][0] as {
        type: string;
        data: { link: { code: string; url: string } };
      };
      assert.equal(event.type, 'link.created');
      assert.equal(event.data.link.code, code);
      assert.equal(event.data.link.url, 'https://example.com/hooked');

      const log = (await call('GET', `/api/v1/webhooks/${hook.id}/deliveries`)).json() as {
        items: { status: string; attempts: number; lastStatus: number; eventType: string }[];
      };
      assert.equal(log.items.length, 1);
      assert.equal(log.items[0]!.status, 'delivered');
      assert.equal(log.items[0]!.attempts, 4);
      assert.equal(log.items[0]!.lastStatus, 204);
      const stuckLog = (
        await call('GET', `/api/v1/webhooks/${(stuck.json() as { id: string }).id}/deliveries`)
      ).json() as {
        items: { status: string; lastError: string | null }[];
      };
      assert.equal(stuckLog.items[0]!.status, 'pending', 'still being retried');
      assert.ok(stuckLog.items[0]!.lastError !== null);

      assert.equal((await call('DELETE', `/api/v1/webhooks/${hook.id}`)).status, 204);
      assert.equal(
        (await call('DELETE', `/api/v1/webhooks/${(stuck.json() as { id: string }).id}`)).status,
        204,
      );
      assert.equal((await call('GET', `/api/v1/webhooks/${hook.id}`)).status, 404);
    } finally {
      await r.close();
      await slow.close();
    }
  });

  test('updates, deletes and sampled clicks reach only the webhooks that asked for them', async () => {
    const r = await receiver(() => 200);
    try {
      const link = await call('POST', '/api/v1/links', { url: 'https://example.com/before' });
      const code = (link.json() as { code: string }).code;
      const hook = await call('POST', '/api/v1/webhooks', {
        url: r.url,
        events: ['link.updated', 'link.deleted', 'link.clicked'],
        clickSampleRate: 1,
      });
      assert.equal(hook.status, 201);
      await new Promise((res) => setTimeout(res, 300)); // the dispatcher sees the new subscription
      assert.equal(
        (await call('PATCH', `/api/v1/links/${code}`, { url: 'https://example.com/after' })).status,
        200,
      );
      const hit = await h.app.inject({ method: 'GET', url: `/${code}` });
      assert.equal(hit.statusCode, 302);
      assert.equal((await call('DELETE', `/api/v1/links/${code}`)).status, 204);
      await until('three events', () => r.got.length >= 3, 10_000);
      await new Promise((res) => setTimeout(res, 300));
      const types = r.got.map((g) => (JSON.parse(g.body) as { type: string }).type).sort();
      assert.deepEqual(
        types,
        ['link.clicked', 'link.deleted', 'link.updated'],
        'no link.created: not asked for',
      );
      const clicked = r.got.find((g) => g.headers['hop-event-type'] === 'link.clicked')!;
      const body = JSON.parse(clicked.body) as { data: { click: Record<string, unknown> } };
      assert.equal(body.data.click.code, code);
      assert.equal(body.data.click.visitor, undefined, 'no visitor hash leaves Hop');
      await call('DELETE', `/api/v1/webhooks/${(hook.json() as { id: string }).id}`);
    } finally {
      await r.close();
    }
  });

  test('bad subscriptions are refused with problem+json', async () => {
    for (const body of [
      { url: 'ftp://example.com/x', events: ['link.created'] },
      { url: 'https://example.com/x', events: [] },
      { url: 'https://example.com/x', events: ['link.exploded'] },
      { url: 'https://example.com/x', events: ['link.clicked'], clickSampleRate: 0 },
    ]) {
      const res = await call('POST', '/api/v1/webhooks', body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.match(String(res.headers['content-type']), /application\/problem\+json/);
    }
    assert.equal((await call('GET', '/api/v1/webhooks/wh_nope')).status, 404);
  });
});
