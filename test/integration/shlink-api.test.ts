// Shlink's REST API v3, driven by Shlink's own JS SDK (@shlinkio/shlink-js-sdk): what a Shlink
// client does against Hop, method by method, and what comes back.
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { baseUrl, type Harness, startHarness } from '../support/harness.ts';
import { type ProblemDetailsError, type ShlinkClient, shlinkClient } from '../support/shlink-sdk.ts';

const BROWSER = 'Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0';

let h: Harness;
let base: string;
let client: ShlinkClient;

before(async () => {
  h = await startHarness({}, { listen: true });
  base = baseUrl(h.app);
  client = shlinkClient(base, h.key);
});
after(async () => {
  await h.close();
});

/** Where a GET with this Host header is sent (fetch cannot set Host). */
function locationOn(host: string, path: string): Promise<string | undefined> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, path, headers: { host } }, (res) => {
      res.resume();
      resolve(res.headers.location);
    });
    req.on('error', reject);
    req.end();
  });
}

/** The problem a client call failed with (the SDK rejects with the parsed body). */
async function problem(p: Promise<unknown>): Promise<ProblemDetailsError> {
  try {
    await p;
  } catch (e) {
    return e as ProblemDetailsError;
  }
  assert.fail('the call should have failed');
}

describe('Shlink REST API through the Shlink JS SDK', () => {
  test('health answers without a key, as application/health+json, at /rest/health too', async () => {
    const health = await client.health();
    assert.equal(health.status, 'pass');
    assert.match(health.version, /^4\.\d+\.\d+$/);
    const raw = await fetch(`${base}/rest/health`);
    assert.equal(raw.status, 200);
    assert.match(raw.headers.get('content-type') ?? '', /^application\/health\+json/);
  });

  test('a missing or wrong key is refused with Shlink problem details', async () => {
    const wrong = shlinkClient(base, 'nope');
    const p = await problem(wrong.listShortUrls());
    assert.equal(p.status, 401);
    assert.equal(p.type, 'https://shlink.io/api/error/invalid-api-key');
    const res = await fetch(`${base}/rest/v3/short-urls`);
    assert.equal(res.status, 401);
    assert.equal(
      ((await res.json()) as ProblemDetailsError).type,
      'https://shlink.io/api/error/missing-authentication',
    );
  });

  test('create, get, edit, list, delete short URLs', async () => {
    const made = await client.createShortUrl({
      longUrl: 'https://shlink.example/docs',
      customSlug: 'sdk-docs',
      tags: ['docs', 'sdk'],
      title: 'Docs',
      crawlable: true,
      maxVisits: 10,
      validSince: '2020-01-01T00:00:00+00:00',
      validUntil: '2099-01-01T00:00:00+00:00',
    });
    assert.equal(made.shortCode, 'sdk-docs');
    assert.equal(made.shortUrl, 'http://hop.test/sdk-docs');
    assert.equal(made.longUrl, 'https://shlink.example/docs');
    assert.match(made.dateCreated, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/);
    assert.deepEqual(made.tags, ['docs', 'sdk']);
    assert.deepEqual(made.meta, {
      validSince: '2020-01-01T00:00:00+00:00',
      validUntil: '2099-01-01T00:00:00+00:00',
      maxVisits: 10,
    });
    assert.equal(made.domain, null);
    assert.equal(made.title, 'Docs');
    assert.equal(made.crawlable, true);
    assert.equal(made.forwardQuery, true, 'the SDK drops false values on create');
    assert.deepEqual(made.visitsSummary, { total: 0, nonBots: 0, bots: 0 });
    assert.equal(made.hasRedirectRules, false);

    // Visits show in the summary, bots apart.
    await fetch(`${base}/sdk-docs`, { redirect: 'manual', headers: { 'user-agent': BROWSER } });
    await fetch(`${base}/sdk-docs`, { redirect: 'manual', headers: { 'user-agent': 'curl/8.0' } });
    await h.deps.clicks.flush();
    const got = await client.getShortUrl({ shortCode: 'sdk-docs' });
    assert.deepEqual(got.visitsSummary, { total: 2, nonBots: 1, bots: 1 });

    const edited = await client.updateShortUrl(
      { shortCode: 'sdk-docs' },
      {
        longUrl: 'https://shlink.example/docs/v2',
        title: null,
        maxVisits: null,
        tags: ['docs'],
        forwardQuery: false,
      },
    );
    assert.equal(edited.longUrl, 'https://shlink.example/docs/v2');
    assert.equal(edited.title, null);
    assert.equal(edited.meta.maxVisits, null);
    assert.deepEqual(edited.tags, ['docs']);
    assert.equal(edited.crawlable, true, 'absent keeps');
    assert.equal(edited.forwardQuery, false);

    const dup = await problem(
      client.createShortUrl({ longUrl: 'https://x.example/', customSlug: 'sdk-docs' }),
    );
    assert.equal(dup.type, 'https://shlink.io/api/error/non-unique-slug');
    assert.equal(dup.status, 400);
    const bad = await problem(client.createShortUrl({ longUrl: 'not a url' }));
    assert.equal(bad.type, 'https://shlink.io/api/error/invalid-data');
    assert.deepEqual(bad.invalidElements, ['longUrl']);

    // findIfExists hands back the link that has the URL; shortCodeLength sets a generated code's length.
    const again = await client.createShortUrl({
      longUrl: 'https://shlink.example/docs/v2',
      findIfExists: true,
    });
    assert.equal(again.shortCode, 'sdk-docs');
    const long = await client.createShortUrl({ longUrl: 'https://shlink.example/long', shortCodeLength: 12 });
    assert.match(long.shortCode, /^[0-9A-Za-z]{12}$/);

    const page = await client.listShortUrls({
      searchTerm: 'shlink.example',
      itemsPerPage: 1,
      orderBy: { field: 'shortCode', dir: 'ASC' },
    });
    assert.equal(page.pagination.totalItems, 2);
    assert.equal(page.pagination.pagesCount, 2);
    assert.equal(page.data.length, 1);
    const all = await client.listShortUrls({
      searchTerm: 'shlink.example',
      itemsPerPage: -1,
      orderBy: { field: 'visits', dir: 'DESC' },
    });
    assert.deepEqual(
      all.data.map((s) => s.shortCode),
      ['sdk-docs', long.shortCode],
    );
    const tagged = await client.listShortUrls({ tags: ['docs'], tagsMode: 'all' });
    assert.deepEqual(
      tagged.data.map((s) => s.shortCode),
      ['sdk-docs'],
    );
    const excluded = await client.listShortUrls({ searchTerm: 'shlink.example', excludeTags: ['docs'] });
    assert.deepEqual(
      excluded.data.map((s) => s.shortCode),
      [long.shortCode],
    );

    await client.deleteShortUrl({ shortCode: long.shortCode });
    const gone = await problem(client.getShortUrl({ shortCode: long.shortCode }));
    assert.equal(gone.status, 404);
    assert.equal(gone.type, 'https://shlink.io/api/error/short-url-not-found');
    assert.equal(gone.shortCode, long.shortCode);
  });

  test('domains: a short URL on another domain; list and edit redirects', async () => {
    const other = await client.createShortUrl({
      longUrl: 'https://other.example/',
      customSlug: 'sdk-docs',
      domain: 'go.sdk.example',
    });
    assert.equal(other.domain, 'go.sdk.example');
    assert.equal(other.shortUrl, 'http://go.sdk.example/sdk-docs');
    assert.equal(
      (await client.getShortUrl({ shortCode: 'sdk-docs', domain: 'go.sdk.example' })).longUrl,
      'https://other.example/',
    );
    assert.equal(
      (await client.getShortUrl({ shortCode: 'sdk-docs' })).longUrl,
      'https://shlink.example/docs/v2',
    );
    const onDefault = await client.listShortUrls({ domain: 'DEFAULT', searchTerm: 'sdk-docs' });
    assert.deepEqual(
      onDefault.data.map((s) => s.domain),
      [null],
    );
    const domains = await client.listDomains();
    assert.equal(domains.data[0]?.domain, 'hop.test');
    assert.equal(domains.data[0]?.isDefault, true);
    assert.ok(domains.data.some((d) => d.domain === 'go.sdk.example'));
    const redirects = await client.editDomainRedirects({
      domain: 'go.sdk.example',
      baseUrlRedirect: 'https://base.example/',
      invalidShortUrlRedirect: 'https://invalid.example/',
    });
    assert.deepEqual(redirects, {
      baseUrlRedirect: 'https://base.example/',
      regular404Redirect: null,
      invalidShortUrlRedirect: 'https://invalid.example/',
    });
    assert.equal(await locationOn('go.sdk.example', '/nothing-here'), 'https://invalid.example/');
    const r404 = await client.editDomainRedirects({
      domain: 'go.sdk.example',
      regular404Redirect: 'https://r404.example/',
    });
    assert.equal(r404.regular404Redirect, 'https://r404.example/');
    assert.equal(r404.invalidShortUrlRedirect, 'https://invalid.example/', 'absent keeps');
    assert.equal(await locationOn('go.sdk.example', '/a/page'), 'https://r404.example/');
  });

  test('redirect rules, mapped onto Hop rules and back; unsupported conditions refused', async () => {
    const set = await client.setShortUrlRedirectRules(
      { shortCode: 'sdk-docs' },
      {
        redirectRules: [
          {
            longUrl: 'https://fr.example/',
            conditions: [{ type: 'language', matchKey: null, matchValue: 'fr' }],
          },
          {
            longUrl: 'https://campaign.example/',
            conditions: [
              { type: 'query-param', matchKey: 'utm_source', matchValue: 'x' },
              { type: 'device', matchKey: null, matchValue: 'android' },
            ],
          },
        ],
      },
    );
    assert.equal(set.defaultLongUrl, 'https://shlink.example/docs/v2');
    assert.deepEqual(
      set.redirectRules.map((r) => [r.priority, r.longUrl, r.conditions.map((c) => c.type)]),
      [
        [1, 'https://fr.example/', ['language']],
        [2, 'https://campaign.example/', ['query-param', 'device']],
      ],
    );
    const read = await client.getShortUrlRedirectRules({ shortCode: 'sdk-docs' });
    assert.deepEqual(read, set);
    assert.equal((await client.getShortUrl({ shortCode: 'sdk-docs' })).hasRedirectRules, true);
    const fr = await fetch(`${base}/sdk-docs`, { redirect: 'manual', headers: { 'accept-language': 'fr' } });
    assert.equal(fr.headers.get('location'), 'https://fr.example/');
    const city = await problem(
      client.setShortUrlRedirectRules(
        { shortCode: 'sdk-docs' },
        {
          redirectRules: [
            {
              longUrl: 'https://x.example/',
              conditions: [{ type: 'geolocation-city-name', matchKey: null, matchValue: 'Paris' }],
            },
          ],
        },
      ),
    );
    assert.equal(city.type, 'https://shlink.io/api/error/invalid-data');
    assert.match(city.detail, /geolocation-city-name/);
  });

  test('tags: list, stats, rename (conflict and not found), delete', async () => {
    await client.createShortUrl({ longUrl: 'https://t.example/1', tags: ['alpha', 'beta'] });
    await client.createShortUrl({ longUrl: 'https://t.example/2', tags: ['alpha'] });
    const tags = await client.listTags();
    assert.ok(tags.data.includes('alpha') && tags.data.includes('beta'));
    const stats = await client.tagsStats();
    const alpha = stats.data.find((t) => t.tag === 'alpha');
    assert.equal(alpha?.shortUrlsCount, 2);
    assert.deepEqual(alpha?.visitsSummary, { total: 0, nonBots: 0, bots: 0 });
    assert.deepEqual(await client.editTag({ oldName: 'alpha', newName: 'gamma' }), {
      oldName: 'alpha',
      newName: 'gamma',
    });
    assert.equal((await client.listShortUrls({ tags: ['gamma'] })).pagination.totalItems, 2);
    const conflict = await problem(client.editTag({ oldName: 'gamma', newName: 'beta' }));
    assert.equal(conflict.status, 409);
    assert.equal(conflict.type, 'https://shlink.io/api/error/tag-conflict');
    const missing = await problem(client.editTag({ oldName: 'nope', newName: 'x' }));
    assert.equal(missing.type, 'https://shlink.io/api/error/tag-not-found');
    await client.deleteTags(['gamma']);
    assert.ok(!(await client.listTags()).data.includes('gamma'));
    assert.equal((await client.listShortUrls({ tags: ['beta'] })).data[0]?.tags.join(), 'beta');
  });

  test('visits overview, mercure-info 501, and /rest/v2 answers the same', async () => {
    await fetch(`${base}/no-such-code-here`, { headers: { 'user-agent': BROWSER } });
    const overview = await client.getVisitsOverview();
    assert.ok(overview.nonOrphanVisits.total >= 2);
    assert.equal(
      overview.nonOrphanVisits.total,
      overview.nonOrphanVisits.nonBots + overview.nonOrphanVisits.bots,
    );
    assert.ok(overview.orphanVisits.nonBots >= 1);
    const mercure = await problem(client.mercureInfo());
    assert.equal(mercure.status, 501);
    assert.equal(mercure.type, 'https://shlink.io/api/error/mercure-not-configured');
    const v2 = await fetch(`${base}/rest/v2/short-urls/sdk-docs`, { headers: { 'x-api-key': h.key } });
    assert.equal(((await v2.json()) as { shortCode: string }).shortCode, 'sdk-docs');
  });

  test('visits: per short URL (paginated, newest first), tag, domain, non-orphan, orphan; deleted', async () => {
    await client.createShortUrl({
      longUrl: 'https://shlink.example/visited',
      customSlug: 'sdk-visits',
      tags: ['seen'],
    });
    await client.createShortUrl({
      longUrl: 'https://shlink.example/other',
      customSlug: 'sdk-visits',
      domain: 'visits.example',
    });
    const visit = (path: string, headers: Record<string, string>, host?: string) =>
      new Promise<void>((resolve, reject) => {
        const u = new URL(base);
        const req = httpRequest(
          {
            host: u.hostname,
            port: u.port,
            path,
            headers: { ...(host === undefined ? {} : { host }), ...headers },
          },
          (res) => {
            res.resume();
            res.on('end', resolve);
          },
        );
        req.on('error', reject);
        req.end();
        // Visits a few ms apart, so that newest first is one order (ties are broken by random bits).
      }).then(() => new Promise((r) => setTimeout(r, 3)));
    for (let i = 0; i < 5; i++)
      await visit('/sdk-visits', { 'user-agent': `${BROWSER} n${i}`, referer: `https://ref.example/${i}` });
    await visit('/sdk-visits', { 'user-agent': 'Googlebot/2.1 (+http://www.google.com/bot.html)' });
    await visit('/sdk-visits', { 'user-agent': BROWSER }, 'visits.example');
    await visit('/no-such-visit', { 'user-agent': BROWSER, referer: 'https://lost.example/' });
    await h.deps.clicks.flush();

    const all = await client.getShortUrlVisits({ shortCode: 'sdk-visits' });
    assert.equal(all.pagination.totalItems, 6);
    assert.equal(all.data.length, 6);
    const newest = all.data[1]!;
    assert.equal(newest.userAgent, `${BROWSER} n4`);
    assert.equal(newest.referer, 'https://ref.example/4');
    assert.equal(newest.potentialBot, false);
    assert.equal(newest.redirectUrl, 'https://shlink.example/visited');
    assert.equal(newest.visitedUrl, 'http://hop.test/sdk-visits');
    assert.match(newest.date, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/);
    assert.equal(all.data[0]!.potentialBot, true);
    const dates = all.data.map((v) => v.date);
    assert.deepEqual([...dates].sort().reverse(), dates);

    const paged = await client.getShortUrlVisits(
      { shortCode: 'sdk-visits' },
      { page: 2, itemsPerPage: 2, excludeBots: true },
    );
    assert.equal(paged.pagination.totalItems, 5);
    assert.equal(paged.pagination.pagesCount, 3);
    assert.deepEqual(
      paged.data.map((v) => v.userAgent),
      [`${BROWSER} n2`, `${BROWSER} n1`],
    );
    const onDomain = await client.getShortUrlVisits({ shortCode: 'sdk-visits', domain: 'visits.example' });
    assert.equal(onDomain.pagination.totalItems, 1);
    assert.equal(onDomain.data[0]!.redirectUrl, 'https://shlink.example/other');

    assert.equal((await client.getTagVisits('seen')).pagination.totalItems, 6);
    assert.equal((await client.getDomainVisits('visits.example')).pagination.totalItems, 1);
    assert.equal((await client.getDomainVisits('DEFAULT', { excludeBots: true })).data.length >= 5, true);
    const nonOrphan = await client.getNonOrphanVisits({ itemsPerPage: 5000 });
    assert.ok(nonOrphan.pagination.totalItems >= 7);
    assert.equal((await problem(client.getTagVisits('no-such-tag'))).status, 404);
    assert.equal((await problem(client.getDomainVisits('nowhere.example'))).status, 404);

    const orphans = await client.getOrphanVisits({ type: 'invalid_short_url' });
    const lost = orphans.data.find((v) => v.visitedUrl?.endsWith('/no-such-visit'));
    assert.equal(lost?.type, 'invalid_short_url');
    assert.equal(lost?.referer, 'https://lost.example/');
    assert.equal((await client.getOrphanVisits({ type: 'base_url' })).data.length, 0);
    assert.equal((await client.getOrphanVisits({ domain: 'nowhere.example' })).pagination.totalItems, 0);

    assert.deepEqual(await client.deleteShortUrlVisits({ shortCode: 'sdk-visits' }), { deletedVisits: 6 });
    assert.equal((await client.getShortUrlVisits({ shortCode: 'sdk-visits' })).pagination.totalItems, 0);
    assert.equal((await client.getShortUrl({ shortCode: 'sdk-visits' })).visitsSummary.total, 0);
    assert.equal(
      (await client.getShortUrlVisits({ shortCode: 'sdk-visits', domain: 'visits.example' })).data.length,
      1,
    );
    const deleted = await client.deleteOrphanVisits();
    assert.ok(deleted.deletedVisits >= 1);
    assert.equal((await client.getOrphanVisits()).pagination.totalItems, 0);
  });

  test('CORS as Shlink answers it: preflight with the asked headers echoed, credentials allowed', async () => {
    const pre = await fetch(`${base}/rest/v3/short-urls`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.shlink.io',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'x-api-key,content-type',
      },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), 'https://app.shlink.io');
    assert.equal(pre.headers.get('access-control-allow-headers'), 'x-api-key,content-type');
    assert.equal(pre.headers.get('access-control-allow-credentials'), 'true');
    assert.match(pre.headers.get('access-control-allow-methods') ?? '', /PATCH/);
    const get = await fetch(`${base}/rest/v3/tags`, {
      headers: { origin: 'https://app.shlink.io', 'x-api-key': h.key },
    });
    assert.equal(get.headers.get('access-control-allow-origin'), 'https://app.shlink.io');
  });
});
