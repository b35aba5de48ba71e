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
