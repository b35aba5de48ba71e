// The raw node:http redirect path (what a real port serves) answers exactly like the Fastify route.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { baseUrl, type Harness, startHarness } from '../support/harness.ts';

let h: Harness;
let base: string;
before(async () => {
  h = await startHarness({}, { listen: true });
  base = baseUrl(h.app);
  const res = await fetch(`${base}/api/v1/links`, {
    method: 'POST',
    headers: { ...h.auth, 'content-type': 'application/json' },
    body: JSON.stringify({ url: 'https://fast.example/a?x=1#top', alias: 'fast-one', redirectType: 307 }),
  });
  assert.equal(res.status, 201);
});
after(async () => {
  await h.close();
});

test('a redirect over a real socket has the status, Location and Cache-Control of the route', async () => {
  const res = await fetch(`${base}/fast-one?utm=1`, { redirect: 'manual' });
  assert.equal(res.status, 307);
  assert.equal(res.headers.get('location'), 'https://fast.example/a?x=1&utm=1#top');
  assert.equal(res.headers.get('cache-control'), 'private, no-store');
  assert.equal(res.headers.get('content-length'), '0');
  const head = await fetch(`${base}/fast-one`, { method: 'HEAD', redirect: 'manual' });
  assert.equal(head.status, 307);
});

test('unknown codes: problem JSON with the caller request id, or an HTML page', async () => {
  const res = await fetch(`${base}/nope-nope`, { headers: { 'x-request-id': 'trace-123' } });
  assert.equal(res.status, 404);
  assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
  const body = (await res.json()) as Record<string, unknown>;
  assert.equal(body.code, 'not_found');
  assert.equal(body.requestId, 'trace-123');
  const page = await fetch(`${base}/nope-nope`, { headers: { accept: 'text/html' } });
  assert.equal(page.status, 404);
  assert.match(await page.text(), /<html/);
});

test('paths that are not short codes still reach the framework', async () => {
  assert.equal((await fetch(`${base}/healthz`)).status, 200);
  assert.equal((await fetch(`${base}/metrics`)).status, 200);
  assert.equal((await fetch(`${base}/`)).status, 200);
  const api = await fetch(`${base}/api`);
  assert.equal(api.status, 404);
  // A POST is the password form's; a link without a password takes none.
  const post = await fetch(`${base}/fast-one`, { method: 'POST', redirect: 'manual' });
  assert.equal(post.status, 405);
  assert.equal(post.headers.get('allow'), 'GET, HEAD');
  assert.equal((await fetch(`${base}/no-such-link`, { method: 'POST', redirect: 'manual' })).status, 404);
});

test('a store that fails answers 503 unavailable with Retry-After, and nothing crashes', async () => {
  const store = h.deps.store;
  const original = store.getRedirect.bind(store);
  store.getRedirect = async () => {
    throw new Error('store down');
  };
  try {
    const res = await fetch(`${base}/never-cached`);
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '1');
    assert.equal(((await res.json()) as { code: string }).code, 'unavailable');
  } finally {
    store.getRedirect = original;
  }
  assert.equal((await fetch(`${base}/fast-one`, { redirect: 'manual' })).status, 307);
});
