// The raw node:http redirect path (what a real port serves) answers exactly like the Fastify route.
import assert from 'node:assert/strict';
import { Agent, request as httpRequest } from 'node:http';
import { after, before, test } from 'node:test';
import { generateCode } from '../../src/domain/codes.ts';
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

/** GET over a real socket with the Host header a browser on `host` would send. */
function getOn(
  host: string,
  path: string,
  agent?: Agent,
): Promise<{ status: number; location: string | undefined }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: u.hostname,
        port: u.port,
        path,
        agent,
        headers: {
          host,
          'user-agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0',
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

test('the fast path routes by Host: one code on two domains, each to its own target', async () => {
  const post = (path: string, body: unknown) =>
    fetch(`${base}${path}`, {
      method: 'POST',
      headers: { ...h.auth, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  assert.equal((await post('/api/v1/domains', { host: 'fast.domain.example' })).status, 201);
  assert.equal(
    (
      await post('/api/v1/links', {
        url: 'https://other.example/',
        alias: 'fast-one',
        domain: 'fast.domain.example',
      })
    ).status,
    201,
  );
  assert.equal((await getOn('fast.domain.example', '/fast-one')).location, 'https://other.example/');
  assert.equal((await getOn('hop.test', '/fast-one')).location, 'https://fast.example/a?x=1#top');
  assert.equal(
    (await getOn('fast.domain.example:80', '/fast-one?utm=2')).location,
    'https://other.example/?utm=2',
  );
});

test('a scan of 10,000 random codes: each an orphan visit, counted whole, with a bounded list of paths', async () => {
  const agent = new Agent({ keepAlive: true, maxSockets: 32 });
  const codes = Array.from({ length: 10_000 }, () => generateCode(8));
  let next = 0;
  const worker = async () => {
    while (next < codes.length) {
      const r = await getOn('hop.test', `/${codes[next++]}`, agent);
      assert.equal(r.status, 404);
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  agent.destroy();
  const res = await fetch(`${base}/api/v1/stats/orphans?domain=hop.test`, { headers: h.auth });
  const s = (await res.json()) as {
    totals: { clicks: number };
    types: { key: string; clicks: number }[];
    paths: unknown[];
  };
  assert.equal(s.totals.clicks, 10_000);
  assert.deepEqual(
    s.types.find((t) => t.key === 'unknown_code'),
    { key: 'unknown_code', clicks: 10_000 },
  );
  assert.ok(s.paths.length <= 10);
});

test('every redirect is timed, and one the store could not answer counts as an error (the SLIs of docs/slos.md)', async () => {
  const sample = async (name: string) => {
    const text = await (await fetch(`${base}/metrics`)).text();
    return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
  };
  const errors = 'hop_redirects_total\\{outcome="error"\\}';
  const timed = 'hop_redirect_duration_seconds_count';
  const [errors0, timed0] = [await sample(errors), await sample(timed)];
  assert.equal((await fetch(`${base}/fast-one`, { redirect: 'manual' })).status, 307);
  assert.equal((await h.app.inject({ url: '/fast-one' })).statusCode, 307); // the Fastify door
  const store = h.deps.store;
  const original = store.getRedirect.bind(store);
  store.getRedirect = async () => {
    throw new Error('store down');
  };
  try {
    assert.equal((await fetch(`${base}/never-cached-2`)).status, 503);
    assert.equal((await h.app.inject({ url: '/never-cached-3' })).statusCode, 503);
  } finally {
    store.getRedirect = original;
  }
  assert.equal((await sample(errors)) - errors0, 2);
  assert.equal((await sample(timed)) - timed0, 4);
});
