// The v1 HTTP contract, end to end through Fastify; run on every store shape (embedded PGlite,
// sharded PostgreSQL) by the test files beside it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Harness } from '../support/harness.ts';

export function runHttpApiSuite(shape: string, start: () => Promise<Harness>): void {
  describe(`HTTP API on ${shape}`, () => {
    let h: Harness;
    before(async () => {
      h = await start();
    });
    after(async () => {
      await h.close();
    });

    async function create(body: unknown, headers: Record<string, string> = {}) {
      return h.app.inject({
        method: 'POST',
        url: '/api/v1/links',
        headers: { ...h.auth, 'content-type': 'application/json', ...headers },
        payload: JSON.stringify(body),
      });
    }

    function assertProblem(
      res: { statusCode: number; headers: Record<string, unknown>; json(): unknown },
      status: number,
      code: string,
    ) {
      assert.equal(res.statusCode, status);
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
      const body = res.json() as Record<string, unknown>;
      assert.equal(body.code, code);
      assert.equal(body.status, status);
      assert.equal(typeof body.title, 'string');
      assert.equal(typeof body.detail, 'string');
      assert.equal(typeof body.type, 'string');
      assert.equal(typeof body.requestId, 'string');
    }

    describe('creating links', () => {
      test('create answers 201 with the whole link', async () => {
        const res = await create({ url: 'https://example.com/page', tags: ['docs'], title: 'Page' });
        assert.equal(res.statusCode, 201);
        const link = res.json();
        assert.match(link.code, /^[0-9A-Za-z]{7}$/);
        assert.equal(link.shortUrl, `http://hop.test/${link.code}`);
        assert.equal(link.url, 'https://example.com/page');
        assert.equal(link.redirectType, 302);
        assert.equal(link.forwardQuery, true);
        assert.deepEqual(link.tags, ['docs']);
        assert.equal(link.title, 'Page');
        assert.equal(link.disabled, false);
        assert.equal(link.clicks, 0);
        assert.equal(link.expiresAt, null);
        assert.equal(link.maxClicks, null);
        assert.ok(!Number.isNaN(Date.parse(link.createdAt)));
      });

      test('an alias becomes the code; taking it again answers 409 alias_taken', async () => {
        const res = await create({ url: 'https://example.com/', alias: 'my-alias_1' });
        assert.equal(res.statusCode, 201);
        assert.equal(res.json().code, 'my-alias_1');
        assertProblem(
          await create({ url: 'https://example.com/2', alias: 'my-alias_1' }),
          409,
          'alias_taken',
        );
      });

      test('bad aliases: invalid_alias and reserved_alias', async () => {
        assertProblem(await create({ url: 'https://example.com/', alias: 'ab' }), 400, 'invalid_alias');
        assertProblem(
          await create({ url: 'https://example.com/', alias: 'has space' }),
          400,
          'invalid_alias',
        );
        assertProblem(
          await create({ url: 'https://example.com/', alias: 'x'.repeat(65) }),
          400,
          'invalid_alias',
        );
        for (const word of ['api', 'healthz', 'readyz', 'metrics', 'assets', 'API']) {
          assertProblem(await create({ url: 'https://example.com/', alias: word }), 400, 'reserved_alias');
        }
      });

      test('the URL policy refuses what it must, with invalid_url', async () => {
        const bad = [
          'ftp://example.com/file',
          'javascript:alert(1)',
          '/relative/path',
          'https://user:pass@example.com/',
          'https://exa mple.com/',
          'https://example.com/\u0000',
          'http://hop.test/loop',
          `https://example.com/${'a'.repeat(8200)}`,
          '',
        ];
        for (const url of bad) assertProblem(await create({ url }), 400, 'invalid_url');
        assertProblem(await create({ title: 'no url' }), 400, 'invalid_url');
      });

      test('internationalized host names are stored normalized', async () => {
        const res = await create({ url: 'https://bücher.example/straße?q=ü' });
        assert.equal(res.statusCode, 201);
        assert.equal(res.json().url, 'https://xn--bcher-kva.example/stra%C3%9Fe?q=%C3%BC');
      });

      test('expiry must be an ISO 8601 time in the future', async () => {
        assertProblem(
          await create({ url: 'https://e.example/', expiresAt: 'tomorrow' }),
          400,
          'invalid_expiry',
        );
        assertProblem(
          await create({ url: 'https://e.example/', expiresAt: '2001-01-01T00:00:00Z' }),
          400,
          'invalid_expiry',
        );
        assertProblem(
          await create({ url: 'https://e.example/', expiresAt: '2031-02-30T00:00:00' }),
          400,
          'invalid_expiry',
        );
        const ok = await create({ url: 'https://e.example/', expiresAt: '2099-01-01T00:00:00+02:00' });
        assert.equal(ok.statusCode, 201);
        assert.equal(ok.json().expiresAt, '2098-12-31T22:00:00.000Z');
      });

      test('other fields out of bounds answer validation_failed', async () => {
        const cases: unknown[] = [
          { url: 'https://e.example/', maxClicks: 0 },
          { url: 'https://e.example/', maxClicks: 1.5 },
          { url: 'https://e.example/', maxClicks: '5' },
          { url: 'https://e.example/', redirectType: 303 },
          { url: 'https://e.example/', forwardQuery: 'yes' },
          { url: 'https://e.example/', tags: Array.from({ length: 21 }, (_, i) => `t${i}`) },
          { url: 'https://e.example/', tags: ['x'.repeat(65)] },
          { url: 'https://e.example/', title: 'x'.repeat(513) },
          { url: 'https://e.example/', unknownField: true },
        ];
        for (const body of cases) assertProblem(await create(body), 400, 'validation_failed');
      });

      test('bodies over 16 KiB answer 413; non-JSON bodies 415; broken JSON 400', async () => {
        const big = await create({ url: 'https://e.example/', title: 'x'.repeat(17_000) });
        assertProblem(big, 413, 'payload_too_large');
        const form = await h.app.inject({
          method: 'POST',
          url: '/api/v1/links',
          headers: { ...h.auth, 'content-type': 'application/x-www-form-urlencoded' },
          payload: 'url=https://e.example/',
        });
        assertProblem(form, 415, 'unsupported_media_type');
        // JSON sent as text (what curl -d sends with -H 'Content-Type: text/plain') is refused
        // for its media type on every route with a body, not read and answered 400.
        for (const [method, url] of [
          ['POST', '/api/v1/links'],
          ['PATCH', '/api/v1/links/anything'],
          ['POST', '/api/v1/keys'],
          ['POST', '/api/v1/webhooks'],
          ['POST', '/api/v1/session'],
        ] as const) {
          for (const type of ['text/plain', 'text/plain; charset=utf-8', 'application/xml']) {
            const text = await h.app.inject({
              method,
              url,
              headers: { ...h.auth, 'content-type': type },
              payload: '{"url":"https://e.example/"}',
            });
            assertProblem(text, 415, 'unsupported_media_type');
          }
        }
        const charset = await h.app.inject({
          method: 'POST',
          url: '/api/v1/links',
          headers: { ...h.auth, 'content-type': 'application/json; charset=utf-8' },
          payload: '{"url":"https://e.example/charset"}',
        });
        assert.equal(charset.statusCode, 201, 'JSON with a charset parameter is JSON');
        const broken = await h.app.inject({
          method: 'POST',
          url: '/api/v1/links',
          headers: { ...h.auth, 'content-type': 'application/json' },
          payload: '{"url": ',
        });
        assertProblem(broken, 400, 'validation_failed');
      });

      test('an Idempotency-Key replays the first answer; a different body with it is a conflict', async () => {
        const body = { url: 'https://idem.example/', tags: ['a', 'b'] };
        const first = await create(body, { 'idempotency-key': 'order-42' });
        assert.equal(first.statusCode, 201);
        const second = await create(
          { tags: ['a', 'b'], url: 'https://idem.example/' },
          { 'idempotency-key': 'order-42' },
        );
        assert.equal(second.statusCode, 201);
        assert.deepEqual(second.json(), first.json());
        assertProblem(
          await create({ url: 'https://other.example/' }, { 'idempotency-key': 'order-42' }),
          409,
          'idempotency_conflict',
        );
        const list = await h.app.inject({ url: '/api/v1/links?q=idem.example', headers: h.auth });
        assert.equal(list.json().items.length, 1);
      });
    });

    describe('authentication', () => {
      test('no key, a wrong key, and a revoked key all answer 401', async () => {
        assertProblem(await h.app.inject({ url: '/api/v1/links' }), 401, 'unauthorized');
        assertProblem(
          await h.app.inject({ url: '/api/v1/links', headers: { authorization: 'Bearer nope' } }),
          401,
          'unauthorized',
        );
        const made = await h.app.inject({
          method: 'POST',
          url: '/api/v1/keys',
          headers: { ...h.auth, 'content-type': 'application/json' },
          payload: '{"name":"temp"}',
        });
        assert.equal(made.statusCode, 201);
        const { key, id } = made.json();
        const ok = await h.app.inject({ url: '/api/v1/links', headers: { 'x-api-key': key } });
        assert.equal(ok.statusCode, 200);
        const listed = await h.app.inject({ url: '/api/v1/keys', headers: h.auth });
        assert.ok(!JSON.stringify(listed.json()).includes(key), 'keys are never listed');
        const revoked = await h.app.inject({ method: 'DELETE', url: `/api/v1/keys/${id}`, headers: h.auth });
        assert.equal(revoked.statusCode, 204);
        assertProblem(
          await h.app.inject({ url: '/api/v1/links', headers: { 'x-api-key': key } }),
          401,
          'unauthorized',
        );
      });
    });

    describe('redirects', () => {
      test('GET and HEAD answer the redirect type with Location exactly the stored URL', async () => {
        for (const redirectType of [301, 302, 307, 308]) {
          const { code, url } = (
            await create({ url: `https://r.example/p?a=1&b=%20x#frag-${redirectType}`, redirectType })
          ).json();
          const res = await h.app.inject({ url: `/${code}` });
          assert.equal(res.statusCode, redirectType);
          assert.equal(res.headers.location, url);
          assert.match(String(res.headers['cache-control']), /no-store/);
          const head = await h.app.inject({ method: 'HEAD', url: `/${code}` });
          assert.equal(head.statusCode, redirectType);
          assert.equal(head.headers.location, url);
        }
      });

      test('the query string is merged into the target, before the fragment', async () => {
        const { code } = (await create({ url: 'https://q.example/path?x=1#section' })).json();
        const res = await h.app.inject({ url: `/${code}?utm_source=mail&x=2` });
        assert.equal(res.headers.location, 'https://q.example/path?x=1&utm_source=mail&x=2#section');
        const plain = (await create({ url: 'https://q.example/plain' })).json();
        assert.equal(
          (await h.app.inject({ url: `/${plain.code}?a=b` })).headers.location,
          'https://q.example/plain?a=b',
        );
        const off = (await create({ url: 'https://q.example/off', forwardQuery: false })).json();
        assert.equal(
          (await h.app.inject({ url: `/${off.code}?a=b` })).headers.location,
          'https://q.example/off',
        );
      });

      test('a store failure answers 503 unavailable with Retry-After', async () => {
        const store = h.deps.store;
        const original = store.getRedirect.bind(store);
        store.getRedirect = async () => {
          throw new Error('store down');
        };
        try {
          const res = await h.app.inject({ url: '/not-cached-anywhere' });
          assertProblem(res, 503, 'unavailable');
          assert.equal(res.headers['retry-after'], '1');
        } finally {
          store.getRedirect = original;
        }
      });

      test('unknown codes answer 404: problem JSON for APIs, a page for browsers', async () => {
        assertProblem(await h.app.inject({ url: '/NoSuchCode' }), 404, 'not_found');
        const page = await h.app.inject({
          url: '/NoSuchCode',
          headers: { accept: 'text/html,application/xhtml+xml' },
        });
        assert.equal(page.statusCode, 404);
        assert.match(String(page.headers['content-type']), /^text\/html/);
        assert.match(page.body, /<html/);
      });

      test('expired, disabled and used-up links answer 410', async () => {
        const soon = new Date(Date.now() + 1500).toISOString();
        const exp = (await create({ url: 'https://x.example/exp', expiresAt: soon })).json();
        assert.equal((await h.app.inject({ url: `/${exp.code}` })).statusCode, 302);
        await new Promise((r) => setTimeout(r, 1600));
        assertProblem(await h.app.inject({ url: `/${exp.code}` }), 410, 'gone');

        const dis = (await create({ url: 'https://x.example/dis' })).json();
        assert.equal((await h.app.inject({ url: `/${dis.code}` })).statusCode, 302);
        const patched = await h.app.inject({
          method: 'PATCH',
          url: `/api/v1/links/${dis.code}`,
          headers: { ...h.auth, 'content-type': 'application/json' },
          payload: '{"disabled":true}',
        });
        assert.equal(patched.json().status, 'disabled');
        assertProblem(await h.app.inject({ url: `/${dis.code}` }), 410, 'gone');
        const html = await h.app.inject({ url: `/${dis.code}`, headers: { accept: 'text/html' } });
        assert.equal(html.statusCode, 410);
        assert.match(html.body, /<html/);

        const lim = (await create({ url: 'https://x.example/lim', maxClicks: 2 })).json();
        assert.equal((await h.app.inject({ url: `/${lim.code}` })).statusCode, 302);
        assert.equal((await h.app.inject({ method: 'HEAD', url: `/${lim.code}` })).statusCode, 302);
        assert.equal((await h.app.inject({ url: `/${lim.code}` })).statusCode, 302);
        assertProblem(await h.app.inject({ url: `/${lim.code}` }), 410, 'gone');
        const got = await h.app.inject({ url: `/api/v1/links/${lim.code}`, headers: h.auth });
        assert.equal(got.json().status, 'used_up');
        assert.equal(got.json().clicks, 2);
      });
    });

    describe('managing links', () => {
      test('PATCH changes the target and redirects follow at once', async () => {
        const { code } = (await create({ url: 'https://before.example/' })).json();
        assert.equal((await h.app.inject({ url: `/${code}` })).headers.location, 'https://before.example/');
        const res = await h.app.inject({
          method: 'PATCH',
          url: `/api/v1/links/${code}`,
          headers: { ...h.auth, 'content-type': 'application/json' },
          payload: JSON.stringify({
            url: 'https://after.example/',
            redirectType: 301,
            title: null,
            tags: ['new'],
          }),
        });
        assert.equal(res.statusCode, 200);
        assert.equal(res.json().url, 'https://after.example/');
        assert.deepEqual(res.json().tags, ['new']);
        const r = await h.app.inject({ url: `/${code}` });
        assert.equal(r.statusCode, 301);
        assert.equal(r.headers.location, 'https://after.example/');
      });

      test('PATCH validates like create and 404s for unknown codes', async () => {
        const { code } = (await create({ url: 'https://p.example/' })).json();
        const patch = (payload: unknown, c = code) =>
          h.app.inject({
            method: 'PATCH',
            url: `/api/v1/links/${c}`,
            headers: { ...h.auth, 'content-type': 'application/json' },
            payload: JSON.stringify(payload),
          });
        assertProblem(await patch({ url: 'ftp://x' }), 400, 'invalid_url');
        assertProblem(await patch({ expiresAt: 'soon' }), 400, 'invalid_expiry');
        assertProblem(await patch({ maxClicks: -1 }), 400, 'validation_failed');
        assertProblem(await patch({}), 400, 'validation_failed');
        assertProblem(await patch({ code: 'other' }), 400, 'validation_failed');
        assertProblem(await patch({ title: 'x' }, 'missing-code'), 404, 'not_found');
      });

      test('DELETE answers 204; the code then 404s everywhere and is never reused', async () => {
        const { code } = (await create({ url: 'https://del.example/', alias: 'to-delete' })).json();
        assert.equal((await h.app.inject({ url: `/${code}` })).statusCode, 302);
        const del = await h.app.inject({ method: 'DELETE', url: `/api/v1/links/${code}`, headers: h.auth });
        assert.equal(del.statusCode, 204);
        assertProblem(await h.app.inject({ url: `/${code}` }), 404, 'not_found');
        assertProblem(
          await h.app.inject({ url: `/api/v1/links/${code}`, headers: h.auth }),
          404,
          'not_found',
        );
        assertProblem(
          await h.app.inject({ method: 'DELETE', url: `/api/v1/links/${code}`, headers: h.auth }),
          404,
          'not_found',
        );
        assertProblem(await create({ url: 'https://del.example/', alias: 'to-delete' }), 409, 'alias_taken');
      });

      test('GET one link shows its clicks once they are flushed', async () => {
        const { code } = (await create({ url: 'https://clicks.example/' })).json();
        for (let i = 0; i < 3; i++)
          await h.app.inject({ url: `/${code}`, headers: { referer: 'https://news.example/a' } });
        await h.deps.clicks.flush();
        const got = await h.app.inject({ url: `/api/v1/links/${code}`, headers: h.auth });
        assert.equal(got.json().clicks, 3);
      });

      test('list pages newest first with a cursor, filters by tag and searches', async () => {
        const made: string[] = [];
        for (let i = 0; i < 7; i++) {
          made.push(
            (
              await create({
                url: `https://list.example/${i}`,
                tags: ['listing'],
                title: i === 3 ? 'Needle title' : null,
              })
            ).json().code,
          );
        }
        const seen: string[] = [];
        let cursor: string | null = null;
        do {
          const qs: string = `limit=3&tag=listing${cursor ? `&cursor=${cursor}` : ''}`;
          const page = await h.app.inject({ url: `/api/v1/links?${qs}`, headers: h.auth });
          assert.equal(page.statusCode, 200);
          const body = page.json();
          assert.ok(body.items.length <= 3);
          seen.push(...body.items.map((l: { code: string }) => l.code));
          cursor = body.nextCursor;
        } while (cursor !== null);
        assert.deepEqual(seen, [...made].reverse());
        const found = await h.app.inject({ url: '/api/v1/links?q=needle', headers: h.auth });
        assert.deepEqual(
          found.json().items.map((l: { code: string }) => l.code),
          [made[3]],
        );
        assertProblem(
          await h.app.inject({ url: '/api/v1/links?limit=101', headers: h.auth }),
          400,
          'validation_failed',
        );
        assertProblem(
          await h.app.inject({ url: '/api/v1/links?limit=0', headers: h.auth }),
          400,
          'validation_failed',
        );
        assertProblem(
          await h.app.inject({ url: '/api/v1/links?cursor=garbage', headers: h.auth }),
          400,
          'invalid_cursor',
        );
      });
    });

    describe('redirect rules', () => {
      const UA = {
        iphone:
          'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
        android:
          'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36',
        windowsEdge:
          'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0',
        macFirefox: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:127.0) Gecko/20100101 Firefox/127.0',
        linuxChrome:
          'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36',
        chromebook:
          'Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36',
        googlebot: 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
      };

      async function putRules(code: string, rules: unknown) {
        return h.app.inject({
          method: 'PUT',
          url: `/api/v1/links/${code}/rules`,
          headers: { ...h.auth, 'content-type': 'application/json' },
          payload: JSON.stringify({ rules }),
        });
      }

      async function visit(
        path: string,
        headers: Record<string, string> = {},
        remoteAddress = '198.51.100.7',
      ) {
        const res = await h.app.inject({ url: path, headers, remoteAddress });
        assert.equal(res.statusCode, 302, `${path} ${JSON.stringify(headers)}: ${res.body}`);
        return String(res.headers.location);
      }

      test('every condition type picks its rule; nothing matching goes to the link URL', async () => {
        const code = (await create({ url: 'https://example.com/default', forwardQuery: false })).json().code;
        const rules = [
          { url: 'https://example.com/ios', conditions: [{ type: 'device', value: 'ios' }] },
          { url: 'https://example.com/android', conditions: [{ type: 'device', value: 'android' }] },
          { url: 'https://example.com/edge', conditions: [{ type: 'browser', value: 'edge' }] },
          { url: 'https://example.com/chromeos', conditions: [{ type: 'device', value: 'chromeos' }] },
          { url: 'https://example.com/fr', conditions: [{ type: 'language', value: 'fr' }] },
          {
            url: 'https://example.com/campaign',
            conditions: [{ type: 'query', key: 'utm_source', value: 'x' }],
          },
          { url: 'https://example.com/preview', conditions: [{ type: 'query', key: 'preview' }] },
          { url: 'https://example.com/office', conditions: [{ type: 'ip', value: '203.0.113.0/24' }] },
          { url: 'https://example.com/v6', conditions: [{ type: 'ip', value: '2001:db8::/32' }] },
          { url: 'https://example.com/de', conditions: [{ type: 'country', value: 'de' }] },
          {
            url: 'https://example.com/past',
            conditions: [{ type: 'before', value: '2001-01-01T00:00:00Z' }],
          },
          {
            url: 'https://example.com/macos',
            conditions: [
              { type: 'device', value: 'macos' },
              { type: 'after', value: '2001-01-01T00:00:00Z' },
            ],
          },
          {
            url: 'https://example.com/desktop',
            conditions: [
              { type: 'device', value: 'desktop' },
              { type: 'browser', value: 'chrome' },
            ],
          },
        ];
        const put = await putRules(code, rules);
        assert.equal(put.statusCode, 200, put.body);
        assert.equal(put.json().rules[9].conditions[0].value, 'DE', 'values are normalized');
        const got = await h.app.inject({ url: `/api/v1/links/${code}/rules`, headers: h.auth });
        assert.deepEqual(got.json(), put.json());
        assert.equal(
          (await h.app.inject({ url: `/api/v1/links/${code}`, headers: h.auth })).json().hasRules,
          true,
        );

        const ua = (u: string) => ({ 'user-agent': u });
        assert.equal(await visit(`/${code}`, ua(UA.iphone)), 'https://example.com/ios');
        assert.equal(await visit(`/${code}`, ua(UA.android)), 'https://example.com/android');
        assert.equal(await visit(`/${code}`, ua(UA.windowsEdge)), 'https://example.com/edge');
        assert.equal(await visit(`/${code}`, ua(UA.chromebook)), 'https://example.com/chromeos');
        assert.equal(await visit(`/${code}`, ua(UA.macFirefox)), 'https://example.com/macos');
        assert.equal(await visit(`/${code}`, ua(UA.linuxChrome)), 'https://example.com/desktop');
        assert.equal(await visit(`/${code}`, ua(UA.googlebot)), 'https://example.com/default');
        assert.equal(
          await visit(`/${code}`, { 'accept-language': 'fr-CA,fr;q=0.9' }),
          'https://example.com/fr',
        );
        assert.equal(
          await visit(`/${code}`, { 'accept-language': 'en-US, fr;q=0' }),
          'https://example.com/default',
          'q=0 means not accepted',
        );
        assert.equal(await visit(`/${code}?utm_source=x`), 'https://example.com/campaign');
        assert.equal(await visit(`/${code}?utm_source=y`), 'https://example.com/default');
        assert.equal(await visit(`/${code}?preview`), 'https://example.com/preview');
        assert.equal(await visit(`/${code}`, {}, '203.0.113.9'), 'https://example.com/office');
        assert.equal(await visit(`/${code}`, {}, '2001:db8::5'), 'https://example.com/v6');
        assert.equal(await visit(`/${code}`), 'https://example.com/default');
        // The first matching rule wins: an iPhone asking in French is the iOS rule's.
        assert.equal(
          await visit(`/${code}`, { ...ua(UA.iphone), 'accept-language': 'fr' }),
          'https://example.com/ios',
        );
      });

      test('a sample splits visitors stickily, and forwardQuery applies to the rule URL', async () => {
        const code = (await create({ url: 'https://example.com/b' })).json().code;
        assert.equal(
          (
            await putRules(code, [
              { url: 'https://example.com/a?v=1', conditions: [{ type: 'sample', value: '50' }] },
            ])
          ).statusCode,
          200,
        );
        let a = 0;
        for (let i = 0; i < 200; i++) {
          const ip = `198.51.100.${i}`;
          const first = await visit(`/${code}?x=${i}`, {}, ip);
          assert.equal(await visit(`/${code}?x=${i}`, {}, ip), first, 'the same visitor goes the same way');
          if (first.startsWith('https://example.com/a?')) {
            a++;
            assert.equal(first, `https://example.com/a?v=1&x=${i}`);
          } else assert.equal(first, `https://example.com/b?x=${i}`);
        }
        assert.ok(a > 60 && a < 140, `about half went to a: ${a} of 200`);
        // The A/B result: each click is counted under the rule that sent it ('0': none matched).
        await h.deps.clicks.flush();
        const stats = await h.app.inject({
          url: `/api/v1/links/${code}/stats?includeBots=true`,
          headers: h.auth,
        });
        const byRule = Object.fromEntries(
          (stats.json().rules as { key: string; clicks: number }[]).map((r) => [r.key, r.clicks]),
        );
        assert.deepEqual(byRule, { '1': 2 * a, '0': 2 * (200 - a) });
        const plain = (await create({ url: 'https://example.com/plain-ab' })).json().code;
        await visit(`/${plain}`);
        await h.deps.clicks.flush();
        const none = await h.app.inject({
          url: `/api/v1/links/${plain}/stats?includeBots=true`,
          headers: h.auth,
        });
        assert.equal(none.json().totals.clicks, 1);
        assert.deepEqual(none.json().rules, [], 'a link without rules has no rule breakdown');
        assert.equal(none.json().browsers.length, 1, 'the agent breakdowns are unchanged');
      });

      test("the preview says where a described visitor would go, with the redirect's own rule code", async () => {
        const rules = [
          {
            url: 'https://example.com/ios-fr',
            conditions: [
              { type: 'device', value: 'ios' },
              { type: 'language', value: 'fr' },
            ],
          },
          {
            url: 'https://example.com/campaign',
            conditions: [{ type: 'query', key: 'utm_source', value: 'x' }],
          },
        ];
        const preview = (visitor: unknown) =>
          h.app.inject({
            method: 'POST',
            url: '/api/v1/rules/preview',
            headers: { ...h.auth, 'content-type': 'application/json' },
            payload: JSON.stringify({ url: 'https://example.com/home', rules, visitor }),
          });
        const iphone =
          'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1';
        const fr = await preview({ userAgent: iphone, acceptLanguage: 'fr-FR', query: 'utm_source=x' });
        assert.equal(fr.statusCode, 200, fr.body);
        assert.deepEqual(fr.json(), { url: 'https://example.com/ios-fr', rule: 1 });
        assert.deepEqual((await preview({ acceptLanguage: 'fr-FR', query: '?utm_source=x' })).json(), {
          url: 'https://example.com/campaign',
          rule: 2,
        });
        assert.deepEqual((await preview({})).json(), { url: 'https://example.com/home', rule: 0 });
        const bad = await h.app.inject({
          method: 'POST',
          url: '/api/v1/rules/preview',
          headers: { ...h.auth, 'content-type': 'application/json' },
          payload: JSON.stringify({
            url: 'https://example.com/',
            rules: [{ url: 'https://e.com/', conditions: [{ type: 'device', value: 'toaster' }] }],
            visitor: {},
          }),
        });
        assertProblem(bad, 400, 'validation_failed');
      });

      test('a change takes effect at once; an empty list removes the rules', async () => {
        const code = (await create({ url: 'https://example.com/plain' })).json().code;
        assert.equal(await visit(`/${code}?go`), 'https://example.com/plain?go');
        await putRules(code, [
          { url: 'https://example.com/ruled', conditions: [{ type: 'query', key: 'go' }] },
        ]);
        assert.equal(await visit(`/${code}?go`), 'https://example.com/ruled?go');
        const cleared = await putRules(code, []);
        assert.deepEqual(cleared.json(), { rules: [] });
        assert.equal(await visit(`/${code}?go`), 'https://example.com/plain?go');
        assert.equal(
          (await h.app.inject({ url: `/api/v1/links/${code}`, headers: h.auth })).json().hasRules,
          false,
        );
      });

      test('rules can be given on create, and bad rules are refused with the field named', async () => {
        const made = await create({
          url: 'https://example.com/x',
          rules: [{ url: 'https://example.com/y', conditions: [{ type: 'device', value: 'android' }] }],
        });
        assert.equal(made.statusCode, 201, made.body);
        assert.equal(made.json().hasRules, true);
        const code = made.json().code;
        const cases: [unknown, string][] = [
          [
            [{ url: 'https://e.com/', conditions: [{ type: 'device', value: 'toaster' }] }],
            'rules[0].conditions[0].value',
          ],
          [[{ url: 'https://e.com/', conditions: [] }], 'rules[0].conditions'],
          [[{ url: 'ftp://e.com/', conditions: [{ type: 'sample', value: '5' }] }], 'rules[0].url'],
          [
            [{ url: 'https://e.com/', conditions: [{ type: 'sample', value: '100' }] }],
            'rules[0].conditions[0].value',
          ],
          [
            [{ url: 'https://e.com/', conditions: [{ type: 'ip', value: '10.0.0.0/33' }] }],
            'rules[0].conditions[0].value',
          ],
          [
            [{ url: 'https://e.com/', conditions: [{ type: 'before', value: 'tomorrow' }] }],
            'rules[0].conditions[0].value',
          ],
          [
            [{ url: 'https://e.com/', conditions: [{ type: 'language', value: 'français' }] }],
            'rules[0].conditions[0].value',
          ],
          [
            [{ url: 'https://e.com/', conditions: [{ type: 'country', value: 'France' }] }],
            'rules[0].conditions[0].value',
          ],
          [[{ url: 'https://e.com/', conditions: [{ type: 'query' }] }], 'rules[0].conditions[0].key'],
          [
            [{ url: 'https://e.com/', conditions: [{ type: 'device', key: 'k', value: 'ios' }] }],
            'rules[0].conditions[0].key',
          ],
        ];
        for (const [rules, field] of cases) {
          const res = await putRules(code, rules);
          assert.ok(res.statusCode === 400, `${JSON.stringify(rules)}: ${res.statusCode} ${res.body}`);
          const body = res.json();
          assert.ok(['validation_failed', 'invalid_url'].includes(body.code), body.code);
          // The domain names the very field; the schema check (first) may name the list.
          if (body.field !== undefined)
            assert.ok(
              body.field === field || body.field === 'rules',
              `${body.field} for ${JSON.stringify(rules)}`,
            );
        }
        const tooMany = Array.from({ length: 21 }, () => ({
          url: 'https://e.com/',
          conditions: [{ type: 'query', key: 'a' }],
        }));
        assert.equal((await putRules(code, tooMany)).statusCode, 400);
        assertProblem(await putRules('nosuchcode1', []), 404, 'not_found');
        // Nothing was lost: the rules given on create are still there.
        const kept = await h.app.inject({ url: `/api/v1/links/${code}/rules`, headers: h.auth });
        assert.equal(kept.json().rules[0].url, 'https://example.com/y');
        // PATCH does not take rules (PUT /rules replaces them).
        const patched = await h.app.inject({
          method: 'PATCH',
          url: `/api/v1/links/${code}`,
          headers: { ...h.auth, 'content-type': 'application/json' },
          payload: JSON.stringify({ rules: [] }),
        });
        assert.equal(patched.statusCode, 400);
      });
    });

    describe('fallback for dead links (expiredUrl)', () => {
      test('a used-up or disabled link sends visitors to its expiredUrl; without one it answers 410', async () => {
        const made = await create({
          url: 'https://example.com/live',
          maxClicks: 1,
          expiredUrl: 'https://example.com/over',
        });
        assert.equal(made.statusCode, 201, made.body);
        const link = made.json();
        assert.equal(link.expiredUrl, 'https://example.com/over');
        const go = () => h.app.inject({ url: `/${link.code}`, remoteAddress: '198.51.100.20' });
        const first = await go();
        assert.equal(first.headers.location, 'https://example.com/live');
        const used = await go();
        assert.equal(used.statusCode, 302);
        assert.equal(used.headers.location, 'https://example.com/over');
        assert.equal(used.headers['cache-control'], 'private, no-store');
        const patch = (body: unknown) =>
          h.app.inject({
            method: 'PATCH',
            url: `/api/v1/links/${link.code}`,
            headers: { ...h.auth, 'content-type': 'application/json' },
            payload: JSON.stringify(body),
          });
        assert.equal((await patch({ expiredUrl: null })).json().expiredUrl, null);
        assert.equal((await go()).statusCode, 410);
        const other = (
          await create({ url: 'https://example.com/o', expiredUrl: 'https://example.com/sorry' })
        ).json();
        const off = await h.app.inject({
          method: 'PATCH',
          url: `/api/v1/links/${other.code}`,
          headers: { ...h.auth, 'content-type': 'application/json' },
          payload: JSON.stringify({ disabled: true }),
        });
        assert.equal(off.statusCode, 200);
        const res = await h.app.inject({ url: `/${other.code}` });
        assert.equal(res.statusCode, 302);
        assert.equal(res.headers.location, 'https://example.com/sorry');
        assertProblem(
          await create({ url: 'https://example.com/', expiredUrl: 'javascript:alert(1)' }),
          400,
          'invalid_url',
        );
      });
    });

    describe('validSince', () => {
      test('a link not valid yet answers 404 and shows as scheduled; once valid it redirects', async () => {
        const later = new Date(Date.now() + 3_600_000).toISOString();
        const made = await create({ url: 'https://example.com/soon', validSince: later });
        assert.equal(made.statusCode, 201, made.body);
        assert.equal(made.json().validSince, later);
        assert.equal(made.json().status, 'scheduled');
        const code = made.json().code;
        assert.equal((await h.app.inject({ url: `/${code}` })).statusCode, 404);
        const now = await h.app.inject({
          method: 'PATCH',
          url: `/api/v1/links/${code}`,
          headers: { ...h.auth, 'content-type': 'application/json' },
          payload: JSON.stringify({ validSince: '2020-01-01T00:00:00Z' }),
        });
        assert.equal(now.json().status, 'active');
        assert.equal((await h.app.inject({ url: `/${code}` })).headers.location, 'https://example.com/soon');
        assertProblem(
          await create({ url: 'https://example.com/', validSince: 'tomorrow' }),
          400,
          'validation_failed',
        );
      });
    });

    describe('domains', () => {
      const json = { 'content-type': 'application/json' };
      const BROWSER =
        'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36';
      const api = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, body?: unknown) =>
        h.app.inject({
          method,
          url,
          headers: { ...h.auth, ...(body === undefined ? {} : json) },
          ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
        });
      const visit = (host: string, path: string, headers: Record<string, string> = {}) =>
        h.app.inject({ url: path, headers: { host, 'user-agent': BROWSER, ...headers } });

      test('register, list (default first), change and remove a domain; bad hosts and duplicates refused', async () => {
        const made = await api('POST', '/api/v1/domains', {
          host: 'Go.Shop.Example',
          notFoundRedirect: 'https://shop.example/404',
        });
        assert.equal(made.statusCode, 201, made.body);
        assert.deepEqual(
          { ...(made.json() as object), createdAt: undefined },
          {
            host: 'go.shop.example',
            isDefault: false,
            rootRedirect: null,
            notFoundRedirect: 'https://shop.example/404',
            expiredRedirect: null,
            otherNotFoundRedirect: null,
            createdAt: undefined,
          },
        );
        assertProblem(
          await api('POST', '/api/v1/domains', { host: 'go.shop.example' }),
          409,
          'domain_exists',
        );
        assertProblem(await api('POST', '/api/v1/domains', { host: 'hop.test' }), 409, 'domain_exists');
        for (const host of [
          'http://x.example',
          'x.example:8080',
          'x.example/path',
          '127.0.0.1',
          'localhost',
          '',
        ])
          assertProblem(await api('POST', '/api/v1/domains', { host }), 400, 'validation_failed');
        assertProblem(
          await api('POST', '/api/v1/domains', { host: 'y.example', rootRedirect: 'javascript:alert(1)' }),
          400,
          'invalid_url',
        );
        const list = (await api('GET', '/api/v1/domains')).json().items;
        assert.equal(list[0].host, 'hop.test');
        assert.equal(list[0].isDefault, true);
        assert.ok(list.some((d: { host: string }) => d.host === 'go.shop.example'));
        const patched = await api('PATCH', '/api/v1/domains/go.shop.example', {
          rootRedirect: 'https://shop.example/',
        });
        assert.equal(patched.statusCode, 200);
        assert.equal(patched.json().rootRedirect, 'https://shop.example/');
        assert.equal(patched.json().notFoundRedirect, 'https://shop.example/404');
        assertProblem(
          await api('PATCH', '/api/v1/domains/nope.example', { rootRedirect: null }),
          404,
          'not_found',
        );
        assertProblem(await api('DELETE', '/api/v1/domains/hop.test'), 409, 'default_domain');
        const temp = await api('POST', '/api/v1/domains', { host: 'temp.example' });
        assert.equal(temp.statusCode, 201);
        assert.equal((await api('DELETE', '/api/v1/domains/temp.example')).statusCode, 204);
        assertProblem(await api('DELETE', '/api/v1/domains/temp.example'), 404, 'not_found');
      });

      test('the same code on two domains: Host picks the link; ?domain= names it in the API', async () => {
        assert.equal((await api('POST', '/api/v1/domains', { host: 'two.example' })).statusCode, 201);
        const a = await create({ url: 'https://a.example/', alias: 'samecode' });
        const b = await create({ url: 'https://b.example/', alias: 'samecode', domain: 'two.example' });
        assert.equal(a.statusCode, 201);
        assert.equal(b.statusCode, 201, b.body);
        assert.equal(a.json().domain, 'hop.test');
        assert.equal(a.json().shortUrl, 'http://hop.test/samecode');
        assert.equal(b.json().domain, 'two.example');
        assert.equal(b.json().shortUrl, 'http://two.example/samecode');
        assert.equal(b.headers.location, '/api/v1/links/samecode?domain=two.example');
        assertProblem(
          await create({ url: 'https://c.example/', alias: 'samecode', domain: 'two.example' }),
          409,
          'alias_taken',
        );
        assertProblem(
          await create({ url: 'https://c.example/', domain: 'unregistered.example' }),
          422,
          'unknown_domain',
        );
        // The default host by name is the default domain.
        assertProblem(
          await create({ url: 'https://c.example/', alias: 'samecode', domain: 'hop.test' }),
          409,
          'alias_taken',
        );

        assert.equal((await visit('hop.test', '/samecode')).headers.location, 'https://a.example/');
        assert.equal((await visit('two.example', '/samecode')).headers.location, 'https://b.example/');
        assert.equal((await visit('TWO.example.:8080', '/samecode')).headers.location, 'https://b.example/');
        // A host that is not registered is served as the default domain (localhost, IPs, proxies).
        assert.equal((await visit('127.0.0.1:3000', '/samecode')).headers.location, 'https://a.example/');
        assert.equal((await visit('elsewhere.example', '/samecode')).headers.location, 'https://a.example/');

        const one = await api('GET', '/api/v1/links/samecode?domain=two.example');
        assert.equal(one.json().url, 'https://b.example/');
        assert.equal((await api('GET', '/api/v1/links/samecode')).json().url, 'https://a.example/');
        assertProblem(await api('GET', '/api/v1/links/samecode?domain=nope.example'), 422, 'unknown_domain');
        const patched = await api('PATCH', '/api/v1/links/samecode?domain=two.example', {
          url: 'https://b2.example/',
        });
        assert.equal(patched.json().url, 'https://b2.example/');
        assert.equal((await visit('two.example', '/samecode')).headers.location, 'https://b2.example/');
        assert.equal((await visit('hop.test', '/samecode')).headers.location, 'https://a.example/');

        const listed = (await api('GET', '/api/v1/links?domain=two.example&limit=100')).json().items;
        assert.deepEqual(
          listed.map((l: { code: string; domain: string }) => `${l.domain}/${l.code}`),
          ['two.example/samecode'],
        );
        const q = (await api('GET', '/api/v1/links?q=samecode')).json().items;
        assert.equal(q.length, 2);

        // Clicks are the link's on its own domain.
        await visit('two.example', '/samecode');
        await h.deps.clicks.flush();
        const statsB = (await api('GET', '/api/v1/links/samecode/stats?domain=two.example')).json();
        const statsA = (await api('GET', '/api/v1/links/samecode/stats')).json();
        assert.equal(statsB.totals.clicks, 4);
        assert.equal(statsA.totals.clicks, 4);
        const domainB = (await api('GET', '/api/v1/stats?domain=two.example')).json();
        assert.equal(domainB.totals.clicks, 4);
        assert.deepEqual(domainB.topLinks, [{ code: 'samecode', domain: 'two.example', clicks: 4 }]);
        const domainA = (await api('GET', '/api/v1/stats?domain=hop.test')).json();
        assert.ok(domainA.topLinks.every((l: { domain: string }) => l.domain === 'hop.test'));
        assert.ok(domainA.topLinks.some((l: { code: string }) => l.code === 'samecode'));
        const rules = await h.app.inject({
          method: 'PUT',
          url: '/api/v1/links/samecode/rules?domain=two.example',
          headers: { ...h.auth, 'content-type': 'application/json' },
          payload: JSON.stringify({
            rules: [{ url: 'https://b-fr.example/', conditions: [{ type: 'language', value: 'fr' }] }],
          }),
        });
        assert.equal(rules.statusCode, 200, rules.body);
        assert.equal(
          (await visit('two.example', '/samecode', { 'accept-language': 'fr-CA' })).headers.location,
          'https://b-fr.example/',
        );
        assert.equal(
          (await visit('hop.test', '/samecode', { 'accept-language': 'fr-CA' })).headers.location,
          'https://a.example/',
        );
        assertProblem(await api('DELETE', '/api/v1/domains/two.example'), 409, 'domain_in_use');
        assert.equal((await api('DELETE', '/api/v1/links/samecode?domain=two.example')).statusCode, 204);
        assert.equal((await visit('two.example', '/samecode')).statusCode, 404);
        assert.equal((await visit('hop.test', '/samecode')).headers.location, 'https://a.example/');
        assert.equal((await api('DELETE', '/api/v1/domains/two.example')).statusCode, 204);
      });

      test("per-domain redirects: root, unknown code, dead link (the link's own fallback first)", async () => {
        assert.equal(
          (
            await api('POST', '/api/v1/domains', {
              host: 'fallback.example',
              rootRedirect: 'https://fallback.example.org/home',
              notFoundRedirect: 'https://fallback.example.org/missing',
              expiredRedirect: 'https://fallback.example.org/expired',
              otherNotFoundRedirect: 'https://fallback.example.org/other',
            })
          ).statusCode,
          201,
        );
        const root = await visit('fallback.example', '/');
        assert.equal(root.statusCode, 302);
        assert.equal(root.headers.location, 'https://fallback.example.org/home');
        const other = await visit('fallback.example', '/some/page.html');
        assert.equal(other.statusCode, 302);
        assert.equal(other.headers.location, 'https://fallback.example.org/other');
        assert.equal((await visit('hop.test', '/some/page.html')).statusCode, 404, 'only on its domain');
        const missing = await visit('fallback.example', '/no-such-code');
        assert.equal(missing.statusCode, 302);
        assert.equal(missing.headers.location, 'https://fallback.example.org/missing');
        const off = await create({ url: 'https://x.example/', domain: 'fallback.example' });
        const own = await create({
          url: 'https://x.example/',
          domain: 'fallback.example',
          expiredUrl: 'https://own.example/',
        });
        for (const made of [off, own]) {
          const r = await api('PATCH', `/api/v1/links/${made.json().code}?domain=fallback.example`, {
            disabled: true,
          });
          assert.equal(r.statusCode, 200);
        }
        assert.equal(
          (await visit('fallback.example', `/${off.json().code}`)).headers.location,
          'https://fallback.example.org/expired',
        );
        assert.equal(
          (await visit('fallback.example', `/${own.json().code}`)).headers.location,
          'https://own.example/',
        );
        // The default domain keeps its dashboard and its 404 until it is given redirects.
        assert.equal((await visit('hop.test', '/no-such-code')).statusCode, 404);
        const def = await api('PATCH', '/api/v1/domains/hop.test', {
          notFoundRedirect: 'https://hop.example.org/404',
        });
        assert.equal(def.statusCode, 200, def.body);
        assert.equal(def.json().isDefault, true);
        assert.equal(
          (await visit('hop.test', '/no-such-code')).headers.location,
          'https://hop.example.org/404',
        );
        assert.equal(
          (await api('PATCH', '/api/v1/domains/hop.test', { notFoundRedirect: null })).statusCode,
          200,
        );
        assert.equal((await visit('hop.test', '/no-such-code')).statusCode, 404);
        assert.equal((await visit('hop.test', '/')).statusCode, 200, 'the dashboard');
        // A domain without a root redirect has nothing at its root.
        assert.equal((await api('POST', '/api/v1/domains', { host: 'bare.example' })).statusCode, 201);
        assert.equal((await visit('bare.example', '/')).statusCode, 404);
      });

      test('robots.txt per domain allows only crawlable links', async () => {
        assert.equal((await api('POST', '/api/v1/domains', { host: 'robots.example' })).statusCode, 201);
        await create({ url: 'https://x.example/', alias: 'crawl-yes', crawlable: true });
        await create({ url: 'https://x.example/', alias: 'crawl-no' });
        await create({
          url: 'https://x.example/',
          alias: 'crawl-there',
          crawlable: true,
          domain: 'robots.example',
        });
        const def = await visit('hop.test', '/robots.txt');
        assert.equal(def.statusCode, 200);
        assert.match(String(def.headers['content-type']), /^text\/plain/);
        assert.match(def.body, /^User-agent: \*$/m);
        assert.match(def.body, /^Allow: \/crawl-yes\$$/m);
        assert.doesNotMatch(def.body, /crawl-no|crawl-there/);
        assert.match(def.body, /^Disallow: \/$/m);
        const other = await visit('robots.example', '/robots.txt');
        assert.equal(other.body, 'User-agent: *\nAllow: /crawl-there$\nDisallow: /\n');
        const made = await api('PATCH', '/api/v1/links/crawl-no', { crawlable: true });
        assert.equal(made.json().crawlable, true);
        assert.match((await visit('hop.test', '/robots.txt')).body, /^Allow: \/crawl-no\$$/m);
      });

      test('orphan visits: roots, unknown codes and other 404s, per domain, bots apart, bounded paths', async () => {
        assert.equal(
          (
            await api('POST', '/api/v1/domains', {
              host: 'orphans.example',
              rootRedirect: 'https://o.example/',
            })
          ).statusCode,
          201,
        );
        const before = (await api('GET', '/api/v1/stats/orphans?domain=orphans.example')).json();
        assert.equal(before.totals.clicks, 0);
        await visit('orphans.example', '/');
        await visit('orphans.example', '/');
        await visit('orphans.example', '/missing-one');
        await visit('orphans.example', '/wp-admin/setup.php');
        await visit('orphans.example', '/missing-one', {
          'user-agent': 'Googlebot/2.1 (+http://www.google.com/bot.html)',
        });
        await h.app.inject({
          method: 'HEAD',
          url: '/missing-two',
          headers: { host: 'orphans.example', 'user-agent': BROWSER },
        });
        const s = (await api('GET', '/api/v1/stats/orphans?domain=orphans.example')).json();
        assert.equal(s.totals.clicks, 4);
        assert.deepEqual(s.types, [
          { key: 'root', clicks: 2 },
          { key: 'unknown_code', clicks: 1 },
          { key: 'other', clicks: 1 },
        ]);
        assert.deepEqual(
          s.paths.map((p: { key: string }) => p.key),
          ['/', '/missing-one', '/wp-admin/setup.php'],
        );
        const bots = (
          await api('GET', '/api/v1/stats/orphans?domain=orphans.example&includeBots=true')
        ).json();
        assert.equal(bots.totals.clicks, 5);
        const all = (await api('GET', '/api/v1/stats/orphans')).json();
        assert.ok(all.totals.clicks >= 4);
        assertProblem(await api('GET', '/api/v1/stats/orphans?domain=nope.example'), 422, 'unknown_domain');
      });
    });

    describe('password-protected links', () => {
      test('API clients get 401, the right X-Link-Password redirects, a wrong one 403; views never show it', async () => {
        const made = await create({ url: 'https://example.com/secret', password: 'open sesame' });
        assert.equal(made.statusCode, 201, made.body);
        const link = made.json();
        assert.equal(link.passwordProtected, true);
        assert.ok(
          !JSON.stringify(link).includes('sesame') && !('password' in link) && !('passwordHash' in link),
        );
        const ip = '198.51.100.60';
        const locked = await h.app.inject({ url: `/${link.code}`, remoteAddress: ip });
        assertProblem(locked, 401, 'password_required');
        assert.equal(locked.headers.location, undefined);
        assert.ok(!locked.body.includes('example.com/secret'));
        const head = await h.app.inject({ method: 'HEAD', url: `/${link.code}`, remoteAddress: ip });
        assert.equal(head.statusCode, 401);
        assert.equal(head.headers.location, undefined);
        const right = await h.app.inject({
          url: `/${link.code}?a=1`,
          headers: { 'x-link-password': 'open sesame' },
          remoteAddress: ip,
        });
        assert.equal(right.statusCode, 302);
        assert.equal(right.headers.location, 'https://example.com/secret?a=1');
        assertProblem(
          await h.app.inject({
            url: `/${link.code}`,
            headers: { 'x-link-password': 'Open sesame' },
            remoteAddress: ip,
          }),
          403,
          'password_incorrect',
        );
        // Removing the password opens the link for everyone.
        const patched = await h.app.inject({
          method: 'PATCH',
          url: `/api/v1/links/${link.code}`,
          headers: { ...h.auth, 'content-type': 'application/json' },
          payload: JSON.stringify({ password: null }),
        });
        assert.equal(patched.statusCode, 200, patched.body);
        assert.equal(patched.json().passwordProtected, false);
        assert.equal((await h.app.inject({ url: `/${link.code}`, remoteAddress: ip })).statusCode, 302);
      });

      test('a browser gets the form; the right password sets a cookie that opens the link, a changed password ends it', async () => {
        const link = (await create({ url: 'https://example.com/page', password: 'pw-1' })).json();
        const ip = '198.51.100.61';
        const page = await h.app.inject({
          url: `/${link.code}?x=1`,
          headers: { accept: 'text/html' },
          remoteAddress: ip,
        });
        assert.equal(page.statusCode, 401);
        assert.match(String(page.headers['content-type']), /^text\/html/);
        assert.match(String(page.headers['content-security-policy']), /default-src 'none'/);
        assert.ok(page.body.includes(`action="/${link.code}?x=1"`), 'the form posts back to the link');
        assert.ok(!page.body.includes('<script') && !page.body.includes('example.com/page'));
        const post = (password: string) =>
          h.app.inject({
            method: 'POST',
            url: `/${link.code}?x=1`,
            headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' },
            payload: new URLSearchParams({ password }).toString(),
            remoteAddress: ip,
          });
        const wrong = await post('nope');
        assert.equal(wrong.statusCode, 403);
        assert.ok(wrong.body.includes('not right'));
        const ok = await post('pw-1');
        assert.equal(ok.statusCode, 303);
        assert.equal(ok.headers.location, `/${link.code}?x=1`);
        const setCookie = String(ok.headers['set-cookie']);
        assert.match(setCookie, new RegExp(`^hop_pw_${link.code}=[^;]+; Path=/${link.code};.*HttpOnly`));
        const cookie = setCookie.split(';')[0]!;
        const opened = await h.app.inject({
          url: `/${link.code}?x=1`,
          headers: { cookie },
          remoteAddress: ip,
        });
        assert.equal(opened.statusCode, 302);
        assert.equal(opened.headers.location, 'https://example.com/page?x=1');
        const forged = cookie.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
        assert.equal(
          (await h.app.inject({ url: `/${link.code}`, headers: { cookie: forged }, remoteAddress: ip }))
            .statusCode,
          401,
        );
        await h.app.inject({
          method: 'PATCH',
          url: `/api/v1/links/${link.code}`,
          headers: { ...h.auth, 'content-type': 'application/json' },
          payload: JSON.stringify({ password: 'pw-2' }),
        });
        assert.equal(
          (await h.app.inject({ url: `/${link.code}`, headers: { cookie }, remoteAddress: ip })).statusCode,
          401,
          'a new password ends the cookies the old one earned',
        );
      });

      test('attempts are limited per client address and link (429 with Retry-After)', async () => {
        const link = (await create({ url: 'https://example.com/guarded', password: 'right' })).json();
        const attempt = (password: string, ip: string) =>
          h.app.inject({ url: `/${link.code}`, headers: { 'x-link-password': password }, remoteAddress: ip });
        for (let i = 0; i < 5; i++)
          assert.equal((await attempt(`guess${i}`, '198.51.100.70')).statusCode, 403);
        const limited = await attempt('right', '198.51.100.70');
        assertProblem(limited, 429, 'rate_limited');
        assert.ok(Number(limited.headers['retry-after']) >= 1);
        assert.equal(
          (await attempt('right', '198.51.100.71')).statusCode,
          302,
          'another client is not limited',
        );
      });
    });

    describe('operations', () => {
      test('healthz, readyz and metrics answer', async () => {
        assert.equal((await h.app.inject({ url: '/healthz' })).statusCode, 200);
        const ready = await h.app.inject({ url: '/readyz' });
        assert.equal(ready.statusCode, 200);
        assert.equal(ready.json().store, h.deps.store.kind);
        const metrics = await h.app.inject({ url: '/metrics' });
        assert.equal(metrics.statusCode, 200);
        assert.match(metrics.body, /hop_redirects_total\{outcome="redirect"\} \d+/);
        assert.match(metrics.body, /hop_links_created_total \d+/);
      });

      test('the OpenAPI document is public and describes the routes the server has', async () => {
        const res = await h.app.inject({ url: '/api/v1/openapi.json' });
        assert.equal(res.statusCode, 200);
        const doc = res.json();
        assert.equal(doc.openapi, '3.1.0');
        const paths = Object.keys(doc.paths);
        for (const p of ['/api/v1/links', '/api/v1/links/{code}', '/healthz', '/readyz', '/metrics']) {
          assert.ok(paths.includes(p), `${p} documented`);
        }
        assert.ok(doc.paths['/api/v1/links'].post.requestBody);
        assert.ok(doc.paths['/api/v1/links/{code}'].patch);
        assert.ok(doc.paths['/api/v1/links/{code}'].delete);
      });

      test('unknown API paths answer problem JSON 404', async () => {
        assertProblem(await h.app.inject({ url: '/api/v1/nothing-here', headers: h.auth }), 404, 'not_found');
      });
    });
  });
}
