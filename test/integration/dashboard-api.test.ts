// The server side of the dashboard: pages and assets with their headers, sign-in sessions and
// CSRF, QR codes and the system figures — through Fastify on the embedded database.
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Fastify from 'fastify';
import { loadConfig } from '../../src/config.ts';
import { DASHBOARD_CSP, DASHBOARD_PAGES, registerDashboard } from '../../src/dashboard/dashboard-routes.ts';
import { sessionSecret } from '../../src/dashboard/session-secret.ts';
import { quantileSeconds } from '../../src/dashboard/system-route.ts';
import { RESERVED_WORDS } from '../../src/domain/codes.ts';
import { Sessions } from '../../src/http/sessions.ts';
import { type Harness, startHarness } from '../support/harness.ts';

let h: Harness;
before(async () => {
  h = await startHarness();
});
after(async () => {
  await h.close();
});

async function signIn(key: string = h.key, harness: Harness = h) {
  const res = await harness.app.inject({ method: 'POST', url: '/api/v1/session', payload: { key } });
  const setCookie = String(res.headers['set-cookie'] ?? '');
  return { res, setCookie, cookie: setCookie.split(';')[0]!, csrf: res.json().csrfToken as string };
}

function createWith(headers: Record<string, string>, body: unknown = { url: 'https://example.com/x' }) {
  return h.app.inject({
    method: 'POST',
    url: '/api/v1/links',
    headers: { 'content-type': 'application/json', ...headers },
    payload: JSON.stringify(body),
  });
}

describe('dashboard pages', () => {
  // A throwaway build, so these tests do not depend on npm run build:web having run.
  const dist = join(tmpdir(), `hop-dist-${process.pid}`);
  const app = Fastify();
  before(async () => {
    mkdirSync(join(dist, 'assets'), { recursive: true });
    writeFileSync(
      join(dist, 'index.html'),
      '<!doctype html><title>Hop</title><script src="/assets/app-X.js"></script>',
    );
    writeFileSync(join(dist, 'assets', 'app-X.js'), 'console.log(1)');
    registerDashboard(app, h.deps, dist);
    await app.ready();
  });
  after(async () => {
    await app.close();
    rmSync(dist, { recursive: true, force: true });
  });

  test('/ and every dashboard page answer the app under a strict CSP', async () => {
    for (const path of ['/', ...DASHBOARD_PAGES.map((p) => `/${p}`)]) {
      const res = await app.inject({ method: 'GET', url: path });
      assert.equal(res.statusCode, 200, path);
      assert.match(String(res.headers['content-type']), /^text\/html/);
      assert.match(res.body, /<title>Hop<\/title>/);
      const csp = String(res.headers['content-security-policy']);
      assert.equal(csp, DASHBOARD_CSP);
      assert.match(csp, /script-src 'self'(;|$)/);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
      assert.match(csp, /frame-ancestors 'none'/);
      assert.equal(res.headers['cache-control'], 'no-cache');
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
    }
  });

  test('hashed assets are cached for good; unknown ones answer 404', async () => {
    const res = await app.inject({ method: 'GET', url: '/assets/app-X.js' });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/javascript/);
    assert.equal(res.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal((await app.inject({ method: 'GET', url: '/assets/nope.js' })).statusCode, 404);
  });

  test("the dashboard's paths are reserved: no alias may take them", async () => {
    for (const word of [...DASHBOARD_PAGES, 'assets']) {
      assert.ok(RESERVED_WORDS.has(word), word);
      const res = await createWith(h.auth, { url: 'https://example.com/', alias: word });
      assert.equal(res.statusCode, 400);
      assert.equal(res.json().code, 'reserved_alias');
    }
  });

  test('HOP_HOME_REDIRECT makes / a redirect elsewhere', async () => {
    const other = await startHarness({ HOP_HOME_REDIRECT: 'https://www.example.org/about' });
    try {
      const res = await other.app.inject({ method: 'GET', url: '/' });
      assert.equal(res.statusCode, 302);
      assert.equal(res.headers.location, 'https://www.example.org/about');
    } finally {
      await other.close();
    }
  });
});

describe('signing in', () => {
  test('a good key gets an HttpOnly, SameSite=Strict session cookie with an expiry', async () => {
    const { res, setCookie } = await signIn();
    assert.equal(res.statusCode, 200);
    assert.match(
      setCookie,
      /^hop_session=[^;]+; Path=\/; Max-Age=43200; Expires=[^;]+; HttpOnly; SameSite=Strict$/,
    );
    assert.doesNotMatch(setCookie, new RegExp(h.key), 'the cookie never holds the key');
    const body = res.json();
    assert.equal(body.keyName, 'test');
    assert.ok(Date.parse(body.expiresAt) > Date.now());
    assert.equal(typeof body.csrfToken, 'string');
  });

  test('the cookie is Secure when Hop is served over https', async () => {
    const secure = await startHarness({ HOP_PUBLIC_URL: 'https://hop.example' });
    try {
      const { setCookie } = await signIn(secure.key, secure);
      assert.match(setCookie, /; Secure$/);
    } finally {
      await secure.close();
    }
  });

  test('a wrong key answers 401 naming the key field, and sets no cookie', async () => {
    const res = await h.app.inject({ method: 'POST', url: '/api/v1/session', payload: { key: 'hop_nope' } });
    assert.equal(res.statusCode, 401);
    assert.equal(res.json().code, 'unauthorized');
    assert.equal(res.json().field, 'key');
    assert.equal(res.headers['set-cookie'], undefined);
  });

  test('a sign-in posted from another origin is refused', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/api/v1/session',
      headers: { origin: 'https://evil.example', host: 'hop.test' },
      payload: { key: h.key },
    });
    assert.equal(res.statusCode, 403);
    assert.equal(res.json().code, 'csrf_failed');
  });
});

describe('the session cookie', () => {
  test('authenticates reads, and tells the CSRF token back', async () => {
    const { cookie, csrf } = await signIn();
    const list = await h.app.inject({ method: 'GET', url: '/api/v1/links', headers: { cookie } });
    assert.equal(list.statusCode, 200);
    const me = await h.app.inject({ method: 'GET', url: '/api/v1/session', headers: { cookie } });
    assert.equal(me.json().csrfToken, csrf);
  });

  test('changes need the CSRF token: none or a wrong one answers 403 csrf_failed', async () => {
    const { cookie, csrf } = await signIn();
    const none = await createWith({ cookie });
    assert.equal(none.statusCode, 403);
    assert.equal(none.json().code, 'csrf_failed');
    const other = await signIn();
    const wrong = await createWith({ cookie, 'x-csrf-token': other.csrf });
    assert.equal(wrong.statusCode, 403);
    const ok = await createWith({ cookie, 'x-csrf-token': csrf });
    assert.equal(ok.statusCode, 201);
  });

  test('API key requests need no CSRF token, even with a cookie beside them', async () => {
    const { cookie } = await signIn();
    assert.equal((await createWith({ ...h.auth, cookie })).statusCode, 201);
  });

  test('a tampered cookie answers 401', async () => {
    const { cookie } = await signIn();
    const [name, value] = cookie.split('=') as [string, string];
    const [payload, sig] = value.split('.') as [string, string];
    const forged = Buffer.from(JSON.stringify(['key_other', Date.now() + 1e9, 'x'])).toString('base64url');
    // The last two characters changed, whatever they were (a signature may end in "AA" itself).
    const altered = `${sig.slice(0, -2)}${sig.endsWith('AA') ? 'BB' : 'AA'}`;
    for (const bad of [`${forged}.${sig}`, `${payload}.${altered}`, 'garbage']) {
      const res = await h.app.inject({
        method: 'GET',
        url: '/api/v1/links',
        headers: { cookie: `${name}=${bad}` },
      });
      assert.equal(res.statusCode, 401, bad);
    }
  });

  test('revoking the key ends its sessions', async () => {
    const made = await h.app.inject({
      method: 'POST',
      url: '/api/v1/keys',
      headers: { ...h.auth, 'content-type': 'application/json' },
      payload: JSON.stringify({ name: 'short-lived' }),
    });
    const { id, key } = made.json();
    const { cookie } = await signIn(key);
    assert.equal(
      (await h.app.inject({ method: 'GET', url: '/api/v1/links', headers: { cookie } })).statusCode,
      200,
    );
    await h.app.inject({ method: 'DELETE', url: `/api/v1/keys/${id}`, headers: h.auth });
    assert.equal(
      (await h.app.inject({ method: 'GET', url: '/api/v1/links', headers: { cookie } })).statusCode,
      401,
    );
  });

  test('signing out clears the cookie and the old cookie no longer works', async () => {
    const { cookie, csrf } = await signIn();
    const out = await h.app.inject({
      method: 'DELETE',
      url: '/api/v1/session',
      headers: { cookie, 'x-csrf-token': csrf },
    });
    assert.equal(out.statusCode, 204);
    assert.match(String(out.headers['set-cookie']), /^hop_session=; Path=\/; Max-Age=0;/);
    assert.equal(
      (await h.app.inject({ method: 'GET', url: '/api/v1/links', headers: { cookie } })).statusCode,
      401,
    );
  });

  test('the signing secret is generated once into the data directory, readable by its owner only', () => {
    const dir = join(tmpdir(), `hop-secret-${process.pid}`);
    try {
      const config = loadConfig({}, { HOP_DATA_DIR: dir });
      const first = sessionSecret(config);
      assert.ok(first.length >= 32);
      assert.deepEqual(sessionSecret(config), first, 'a restart keeps people signed in');
      assert.equal(statSync(join(dir, 'session-secret')).mode & 0o777, 0o600);
      const given = loadConfig({}, { HOP_DATA_DIR: dir, HOP_SESSION_SECRET: 'x'.repeat(32) });
      assert.equal(sessionSecret(given).toString(), 'x'.repeat(32));
      assert.throws(() => loadConfig({}, { HOP_SESSION_SECRET: 'short' }), /HOP_SESSION_SECRET/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a session past its expiry is refused', () => {
    const sessions = new Sessions(Buffer.alloc(32, 7), 60_000);
    const { cookie } = sessions.issue('key_1', 1_000_000);
    assert.equal(sessions.read(cookie, 1_000_000 + 59_999)?.keyId, 'key_1');
    assert.equal(sessions.read(cookie, 1_000_000 + 60_000), null);
  });
});

describe('QR codes', () => {
  let code: string;
  before(async () => {
    code = (await createWith(h.auth, { url: 'https://example.com/qr' })).json().code;
  });

  test('SVG by default, encoding the short URL', async () => {
    const res = await h.app.inject({ method: 'GET', url: `/api/v1/links/${code}/qr`, headers: h.auth });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^image\/svg\+xml/);
    assert.match(res.body, /^<svg[^>]*width="256"/);
  });

  test('PNG at a chosen size, as a download when asked', async () => {
    const res = await h.app.inject({
      method: 'GET',
      url: `/api/v1/links/${code}/qr?format=png&size=128&download=true`,
      headers: h.auth,
    });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'image/png');
    assert.deepEqual([...res.rawPayload.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
    assert.equal(res.rawPayload.readUInt32BE(16), 128, 'PNG width');
    assert.equal(res.headers['content-disposition'], `attachment; filename="${code}.png"`);
  });

  test('bad sizes and formats answer validation_failed; unknown codes 404', async () => {
    for (const q of ['size=10', 'size=5000', 'format=gif']) {
      const res = await h.app.inject({
        method: 'GET',
        url: `/api/v1/links/${code}/qr?${q}`,
        headers: h.auth,
      });
      assert.equal(res.statusCode, 400, q);
      assert.equal(res.json().code, 'validation_failed');
    }
    const missing = await h.app.inject({ method: 'GET', url: '/api/v1/links/nope123/qr', headers: h.auth });
    assert.equal(missing.statusCode, 404);
  });
});

describe('system figures', () => {
  test('p99 is interpolated within its latency bucket', () => {
    const inf = Number.POSITIVE_INFINITY;
    assert.equal(quantileSeconds([{ le: inf, count: 0 }], 0.99), null);
    // 100 requests: 90 under 10 ms, 10 between 10 and 20 ms → p99 at 90% of the second bucket.
    const buckets = [
      { le: 0.01, count: 90 },
      { le: 0.02, count: 100 },
      { le: inf, count: 100 },
    ];
    assert.ok(Math.abs((quantileSeconds(buckets, 0.99) ?? 0) - 0.019) < 1e-9);
    assert.equal(
      quantileSeconds(
        [
          { le: 0.01, count: 0 },
          { le: inf, count: 5 },
        ],
        0.99,
      ),
      0.01,
    );
  });

  test('need authentication', async () => {
    assert.equal((await h.app.inject({ method: 'GET', url: '/api/v1/system' })).statusCode, 401);
  });

  test("count Hop's requests and redirects, and mark unused parts", async () => {
    const code = (await createWith(h.auth)).json().code;
    await h.app.inject({ method: 'GET', url: `/${code}` });
    const res = await h.app.inject({ method: 'GET', url: '/api/v1/system', headers: h.auth });
    assert.equal(res.statusCode, 200);
    const s = res.json();
    assert.equal(s.store.kind, h.deps.store.kind);
    assert.ok(s.apiRequests >= 1, 'API requests counted');
    assert.ok(s.redirects >= 1, 'redirects counted');
    assert.equal(s.apiLatency.at(-1).le, null);
    assert.equal(s.apiLatency.at(-1).count, s.apiRequests);
    assert.equal(typeof s.apiP99SecondsSinceStart, 'number');
    assert.ok(s.cache.hits + s.cache.misses + s.cache.negative >= 1);
    assert.deepEqual([s.pool, s.replicas, s.shards], [{ inUse: false }, { inUse: false }, { inUse: false }]);
    assert.equal(s.clickQueue.inUse, true);
  });
});
