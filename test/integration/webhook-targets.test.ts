// Webhooks cannot be aimed into Hop's own network (server-side request forgery): every spelling of
// a loopback, private, link-local or otherwise non-global target is refused when subscribed, and
// checked again against the address actually dialled (a name may resolve elsewhere by then). The
// only traffic these tests make goes to receivers on loopback addresses they start themselves;
// names resolve through a stand-in resolver, never DNS.
import assert from 'node:assert/strict';
import type { LookupAddress } from 'node:dns';
import { after, before, describe, test } from 'node:test';
import { type Harness, startHarness } from '../support/harness.ts';
import { receiver, until } from '../support/http-receiver.ts';

/** Spellings of targets inside; `PORT` is replaced by a live receiver's port on 127.0.0.1. */
const FORBIDDEN = [
  'http://127.0.0.1:PORT/hook',
  'http://localhost:PORT/hook',
  'http://LOCALHOST.:PORT/hook',
  'http://api.localhost:PORT/hook',
  'http://2130706433:PORT/hook', // decimal
  'http://0x7f000001:PORT/hook', // hex
  'http://017700000001:PORT/hook', // octal
  'http://0x7f.0.0.1:PORT/hook',
  'http://0177.0.0.01:PORT/hook',
  'http://127.1:PORT/hook',
  'http://127.0.0.1.:PORT/hook',
  'http://[::1]:PORT/hook',
  'http://[0:0:0:0:0:0:0:1]:PORT/hook',
  'http://[::ffff:127.0.0.1]:PORT/hook', // IPv4-mapped IPv6
  'http://[::ffff:7f00:1]:PORT/hook',
  'http://[::127.0.0.1]:PORT/hook', // IPv4-compatible IPv6
  'http://[64:ff9b::7f00:1]:PORT/hook', // NAT64
  'http://[2002:7f00:1::1]:PORT/hook', // 6to4
  'http://0.0.0.0:PORT/hook',
  'http://0:PORT/hook',
  'http://[::]:PORT/hook',
  'http://169.254.169.254/latest/meta-data/',
  'http://[::ffff:169.254.169.254]/latest/meta-data/',
  'http://2852039166/latest/meta-data/', // 169.254.169.254 in decimal
  'http://metadata.google.internal/computeMetadata/v1/',
  'http://[fd00:ec2::254]/latest/meta-data/',
  'http://100.100.100.200/latest/meta-data/', // CGNAT range
  'http://10.0.0.1/',
  'http://172.16.0.1/',
  'http://192.168.1.1/',
  'http://[fc00::1]/',
  'http://[fe80::1]/',
  'http://224.0.0.1/',
  'http://255.255.255.255/',
  'http://redis:6379/',
  'https://printer.local/',
];

describe('webhook targets', () => {
  let h: Harness;
  /** What the stand-in resolver answers per name; a list is answered in turn (rebinding). */
  const dns = new Map<string, string[]>();
  const asked: string[] = [];
  const resolveHost = async (host: string): Promise<LookupAddress[]> => {
    asked.push(host);
    const answers = dns.get(host);
    if (answers === undefined) throw Object.assign(new Error(`no such host ${host}`), { code: 'ENOTFOUND' });
    const address = answers.length > 1 ? answers.shift()! : answers[0]!;
    return [{ address, family: address.includes(':') ? 6 : 4 }];
  };
  before(async () => {
    h = await startHarness(
      {
        HOP_WEBHOOK_RETRY_BASE_MS: '100',
        HOP_WEBHOOK_TIMEOUT_MS: '1000',
        HOP_WEBHOOK_ALLOW_TARGETS: '127.0.0.1,hooks.allowed.test',
      },
      { resolveHost },
    );
  });
  after(() => h.close());

  const subscribe = async (url: string, events = ['link.created']) => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/api/v1/webhooks',
      headers: { ...h.auth, 'content-type': 'application/json' },
      payload: JSON.stringify({ url, events }),
    });
    return {
      status: res.statusCode,
      headers: res.headers,
      json: () => res.json() as Record<string, unknown>,
    };
  };
  const deliveries = async (id: string) =>
    (
      await h.app.inject({ method: 'GET', url: `/api/v1/webhooks/${id}/deliveries`, headers: h.auth })
    ).json() as {
      items: { status: string; attempts: number; lastStatus: number | null; lastError: string | null }[];
    };
  const createLink = async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/api/v1/links',
      headers: { ...h.auth, 'content-type': 'application/json' },
      payload: JSON.stringify({ url: 'https://example.com/target' }),
    });
    assert.equal(res.statusCode, 201);
  };
  const remove = (id: string) =>
    h.app.inject({ method: 'DELETE', url: `/api/v1/webhooks/${id}`, headers: h.auth });

  test(`every one of ${FORBIDDEN.length} spellings of an inside target is refused with 422, without a connection`, async () => {
    // Without the allow list's exact 127.0.0.1, loopback is inside like the rest.
    const strict = await startHarness({}, { resolveHost });
    const r = await receiver(() => 204);
    try {
      assert.ok(FORBIDDEN.length >= 20);
      for (const spelling of FORBIDDEN) {
        const url = spelling.replace('PORT', String(r.port));
        const res = await strict.app.inject({
          method: 'POST',
          url: '/api/v1/webhooks',
          headers: { ...strict.auth, 'content-type': 'application/json' },
          payload: JSON.stringify({ url, events: ['link.created'] }),
        });
        assert.equal(res.statusCode, 422, url);
        assert.match(String(res.headers['content-type']), /^application\/problem\+json/, url);
        const problem = res.json() as { code: string; detail: string; field: string };
        assert.equal(problem.code, 'webhook_target_forbidden', url);
        assert.equal(problem.field, 'url');
        assert.match(problem.detail, /HOP_WEBHOOK_ALLOW_TARGETS/);
      }
      const list = await strict.app.inject({ method: 'GET', url: '/api/v1/webhooks', headers: strict.auth });
      assert.deepEqual((list.json() as { items: unknown[] }).items, [], 'nothing was subscribed');
      assert.deepEqual(asked, [], 'no name needed resolving: every refusal was decided from the URL');
      assert.equal(r.seen.connections, 0, 'nothing connected to the receiver');
    } finally {
      await r.close();
      await strict.close();
    }
  });

  test('a name that resolves inside is refused when subscribed', async () => {
    dns.set('sneaky.example.net', ['10.1.2.3']);
    dns.set('mapped.example.net', ['::ffff:169.254.169.254']);
    for (const host of ['sneaky.example.net', 'mapped.example.net']) {
      const res = await subscribe(`https://${host}/hook`);
      assert.equal(res.status, 422, host);
      assert.equal(res.json().code, 'webhook_target_forbidden');
      assert.match(String(res.json().detail), new RegExp(`${host} resolves to`));
    }
  });

  test('an allowed receiver on loopback gets its delivery', async () => {
    const r = await receiver(() => 204);
    try {
      const hook = await subscribe(r.url);
      assert.equal(hook.status, 201);
      await new Promise((res) => setTimeout(res, 300)); // the dispatcher sees the subscription
      await createLink();
      await until('the delivery', () => r.got.length >= 1, 10_000);
      assert.equal(r.got[0]!.headers['hop-event-type'], 'link.created');
      await remove(String(hook.json().id));
    } finally {
      await r.close();
    }
  });

  test('a name on the allow list is dialled whatever it resolves to', async () => {
    const r = await receiver(() => 204);
    dns.set('hooks.allowed.test', ['127.0.0.1']);
    try {
      const hook = await subscribe(`http://hooks.allowed.test:${r.port}/hook`);
      assert.equal(hook.status, 201);
      await new Promise((res) => setTimeout(res, 300));
      await createLink();
      await until('the delivery', () => r.got.length >= 1, 10_000);
      assert.equal(r.got[0]!.headers.host, `hooks.allowed.test:${r.port}`);
      await remove(String(hook.json().id));
    } finally {
      await r.close();
    }
  });

  test('a name that resolves to a public address when subscribed and inside later is refused at connect time', async () => {
    // 127.0.0.2 is loopback but not on the allow list (127.0.0.1 is): the receiver there must see
    // no connection at all.
    const r = await receiver(() => 204, { host: '127.0.0.2' });
    dns.set('rebind.example.net', ['93.184.215.14', '127.0.0.2']);
    try {
      const hook = await subscribe(`http://rebind.example.net:${r.port}/hook`);
      assert.equal(hook.status, 201, 'public when subscribed');
      await new Promise((res) => setTimeout(res, 300));
      await createLink();
      const id = String(hook.json().id);
      await until('a failed attempt', async () => (await deliveries(id)).items[0]?.lastError != null, 10_000);
      const d = (await deliveries(id)).items[0]!;
      assert.equal(d.status, 'pending', 'retried, in case the operator allows it');
      assert.equal(d.lastStatus, null);
      assert.match(
        d.lastError!,
        /refused: rebind\.example\.net resolves to 127\.0\.0\.2 is a loopback address/,
      );
      assert.equal(r.seen.connections, 0, 'the address was checked before dialling');
      await remove(id);
    } finally {
      await r.close();
    }
  });

  test('a redirect from a target is not followed', async () => {
    const inside = await receiver(() => 204, { host: '127.0.0.2' });
    const r = await receiver(() => 302, { headers: { location: inside.url } });
    try {
      const hook = await subscribe(r.url);
      assert.equal(hook.status, 201);
      await new Promise((res) => setTimeout(res, 300));
      await createLink();
      const id = String(hook.json().id);
      await until('an attempt', async () => (await deliveries(id)).items[0]?.lastStatus === 302, 10_000);
      await new Promise((res) => setTimeout(res, 300));
      assert.equal(inside.seen.connections, 0, 'the Location was not followed');
      const d = (await deliveries(id)).items[0]!;
      assert.equal(d.status, 'pending', 'a 3xx is a failed attempt');
      await remove(id);
    } finally {
      await r.close();
      await inside.close();
    }
  });
});
