// `hop import --from …`: other shorteners' links, visits and counts brought over by the real CLI
// from real HTTP servers speaking each peer's API, then checked through `hop export` and Hop's API.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  type BitlyFixture,
  bitlyRoutes,
  type KuttFixture,
  kuttRoutes,
  type Peer,
  peerServer,
  type ShlinkData,
  type ShlinkFixture,
  shlinkRoutes,
  shlinkVisit,
  type YourlsFixture,
  yourlsRoutes,
} from '../support/fake-peers.ts';
import { runHopSources, startHopSources } from '../support/hop-cli.ts';
import { tempDir } from '../support/hop-process.ts';

const ADMIN = 'hop_importerstestkeyimporterstest01';
const HOUR = 3_600_000;
// Visits lie in the last two days, inside the stats API's default window.
const BASE_HOUR = Math.floor(Date.now() / HOUR) * HOUR - 30 * HOUR;
const at = (hours: number, minutes = 0) => new Date(BASE_HOUR + hours * HOUR + minutes * 60_000);
const WINDOW = `from=${new Date(BASE_HOUR - 24 * HOUR).toISOString()}`;

type Exported = Record<string, unknown> & { code: string; domain?: string };

async function exportedLinks(env: Record<string, string>): Promise<Exported[]> {
  const r = await runHopSources(['export'], env);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Exported);
}

const linkOf = (links: Exported[], code: string, domain?: string) => {
  const l = links.find((x) => x.code === code && x.domain === domain);
  assert.ok(
    l,
    `${domain ?? ''}/${code} is not among ${links.map((x) => `${x.domain ?? ''}/${x.code}`).join(' ')}`,
  );
  return l;
};

interface Counted {
  readonly key: string;
  readonly clicks: number;
}

/** What the checks read of Hop's answers: a link (clicks), its stats, or the orphan visits' stats. */
interface ApiBody {
  readonly clicks: number;
  readonly totals: { readonly clicks: number };
  readonly series: readonly { readonly t: string; readonly clicks: number }[];
  readonly countries: readonly Counted[];
  readonly referrers: readonly Counted[];
  readonly browsers: readonly Counted[];
  readonly types: readonly Counted[];
}

/** Starts Hop on the data dir, runs `check` against its API, stops it. */
async function withHop(
  env: Record<string, string>,
  check: (api: (path: string) => Promise<ApiBody>) => Promise<void>,
) {
  const hop = await startHopSources({ ...env, HOP_INITIAL_API_KEY: ADMIN });
  try {
    await check(async (path) => {
      // Shlink's API under /rest, Hop's under /api/v1.
      const url = path.startsWith('/rest/') ? `${hop.url}${path}` : `${hop.url}/api/v1${path}`;
      const r = await fetch(url, { headers: { 'x-api-key': ADMIN } });
      assert.equal(r.status, 200, `${path}: ${await r.clone().text()}`);
      return (await r.json()) as ApiBody;
    });
  } finally {
    await hop.stop();
  }
}

/** The retried request came after the 429 it answered, no sooner than Retry-After said. */
function assertRetriedAfter(peer: Peer, seconds: number) {
  const i = peer.requests.findIndex((r) => r.status === 429);
  assert.ok(i >= 0, 'the peer answered 429 once');
  const retried = peer.requests[i + 1];
  assert.ok(retried, 'the request was retried');
  assert.equal(retried.path, peer.requests[i]!.path);
  assert.ok(
    retried.at - peer.requests[i]!.at >= seconds * 1000 - 50,
    `retried after ${retried.at - peer.requests[i]!.at} ms`,
  );
}

// ---- Shlink -------------------------------------------------------------------------------------

const SHLINK_KEY = 'shlink-test-key';

function shlinkData(): ShlinkData {
  const ua = {
    chrome:
      'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36',
    iphone:
      'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1',
    bot: 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
  };
  const shortUrls: ShlinkFixture[] = [
    {
      shortCode: 'sh-one',
      domain: null,
      longUrl: 'https://one.example/path',
      dateCreated: '2024-03-01T10:00:00+00:00',
      tags: ['alpha', 'beta'],
      title: 'One',
      validSince: '2024-03-02T00:00:00+00:00',
      validUntil: '2024-12-31T00:00:00+00:00',
      maxVisits: 100,
      crawlable: true,
      forwardQuery: false,
      // Newest first, as Shlink lists them.
      visits: [
        shlinkVisit(at(2, 40), { ua: ua.bot, bot: true }),
        shlinkVisit(at(2, 10), { ua: ua.iphone, country: 'US', referer: 'https://news.example/a' }),
        shlinkVisit(at(1, 50), { referer: 'https://news.example/b' }),
        shlinkVisit(at(1, 20), { country: 'DE' }),
        shlinkVisit(at(1, 5), { country: null }),
      ],
    },
    {
      shortCode: 'sh-two',
      domain: 'go.shlink.example',
      longUrl: 'https://two.example/',
      dateCreated: '2024-03-02T10:00:00+00:00',
      visits: Array.from({ length: 9 }, (_, i) =>
        shlinkVisit(at(4, 50 - i * 5), { country: i % 3 === 0 ? 'FR' : 'ES', city: `C${i}` }),
      ),
    },
    {
      shortCode: 'sh-rules',
      domain: null,
      longUrl: 'https://rules.example/',
      dateCreated: '2024-03-03T10:00:00+00:00',
      rules: [
        {
          longUrl: 'https://rules.example/ip',
          priority: 5,
          conditions: [cond('ip-address', null, '10.0.*.*')],
        },
        { longUrl: 'https://rules.example/ios', priority: 1, conditions: [cond('device', null, 'ios')] },
        {
          longUrl: 'https://rules.example/es',
          priority: 2,
          conditions: [cond('language', null, 'es-ES'), cond('query-param', 'foo', 'bar')],
        },
        {
          longUrl: 'https://rules.example/paris',
          priority: 3,
          conditions: [cond('geolocation-city-name', null, 'Paris')],
        },
        {
          longUrl: 'https://rules.example/debug',
          priority: 4,
          conditions: [cond('valueless-query-param', 'debug', null)],
        },
        {
          longUrl: 'https://rules.example/ref',
          priority: 6,
          conditions: [
            cond('any-value-query-param', 'ref', null),
            cond('after-date', null, '2025-01-01T00:00:00+00:00'),
          ],
        },
        {
          longUrl: 'https://rules.example/de',
          priority: 7,
          conditions: [cond('geolocation-country-code', null, 'de'), cond('browser', null, 'chrome')],
        },
      ],
    },
    {
      shortCode: 'sh-clash',
      domain: null,
      longUrl: 'https://clash.example/',
      dateCreated: '2024-03-04T10:00:00+00:00',
      visits: [shlinkVisit(at(6, 30)), shlinkVisit(at(6, 0))],
    },
    {
      shortCode: 'api',
      domain: null,
      longUrl: 'https://reserved.example/',
      dateCreated: '2024-03-05T10:00:00+00:00',
    },
    {
      shortCode: 'sh-six',
      domain: null,
      longUrl: 'https://six.example/',
      dateCreated: '2024-03-06T10:00:00+00:00',
    },
    {
      shortCode: 'sh-seven',
      domain: 'go.shlink.example',
      longUrl: 'https://seven.example/',
      dateCreated: '2024-03-07T10:00:00+00:00',
      visits: [shlinkVisit(at(8, 0))],
    },
  ];
  const orphans = [
    { ...shlinkVisit(at(9, 50), { url: 'https://s.example/' }), type: 'base_url' },
    { ...shlinkVisit(at(9, 40), { url: 'https://s.example/' }), type: 'base_url' },
    { ...shlinkVisit(at(9, 30), { url: 'https://s.example/nope' }), type: 'invalid_short_url' },
    { ...shlinkVisit(at(9, 20), { url: 'https://go.shlink.example/missing' }), type: 'invalid_short_url' },
    {
      ...shlinkVisit(at(9, 10), { url: 'https://s.example/favicon.png', bot: true, ua: ua.bot }),
      type: 'regular_404',
    },
  ];
  return { defaultHost: 's.example', shortUrls, orphans, pageSize: 3, visitsPageSize: 4 };
}

function cond(type: string, matchKey: string | null, matchValue: string | null) {
  return { type, matchKey, matchValue };
}

describe('hop import --from shlink', () => {
  const dir = tempDir();
  const env = { HOP_DATA_DIR: dir.path };
  let peer: Peer;
  const args = () => ['import', '--from', 'shlink', '--url', peer.url, '--key', SHLINK_KEY];
  before(async () => {
    peer = await peerServer(shlinkRoutes(shlinkData(), SHLINK_KEY));
    // A link Hop already has under one of Shlink's codes, to another place.
    const pre = await runHopSources(
      ['import', '-'],
      env,
      `${JSON.stringify({ code: 'sh-clash', url: 'https://other.example/' })}\n`,
    );
    assert.equal(pre.code, 0, pre.stderr);
  });
  after(async () => {
    await peer.close();
    dir.remove();
  });

  test('links, rules, visits and orphan visits come over; a 429 is retried after its Retry-After', async () => {
    peer.throttleNext(1);
    const r = await runHopSources(args(), env);
    assert.equal(r.code, 1, `a conflict and a reserved code make the exit status 1\n${r.stderr}`);
    assert.match(r.stdout, /shlink: 5 imported, 0 unchanged, 1 conflicts, 1 failed \(1 with warnings\)/);
    assert.match(r.stdout, /visits: 15 imported, 0 already there/);
    assert.match(r.stdout, /orphan visits: 5 imported, 0 already there/);
    assert.match(r.stdout, /links\/s, \d+ visits\/s/);
    assert.match(r.stderr, /shlink: 429 Too Many Requests; retrying in 1\.0 s \(attempt 2 of 6\)/);
    assertRetriedAfter(peer, 1);
    assert.match(r.stderr, /Registered domain go\.shlink\.example\./);
    assert.match(
      r.stderr,
      /s\.example\/sh-clash: conflict: "sh-clash" already exists with a different mapping/,
    );
    assert.match(r.stderr, /s\.example\/api: failed: reserved_alias/);
    assert.match(
      r.stderr,
      /redirect rule 3 \(to https:\/\/rules\.example\/paris\) left out: geolocation-city-name/,
    );
    assert.match(
      r.stderr,
      /redirect rule 4 \(to https:\/\/rules\.example\/debug\) left out: valueless-query-param/,
    );
    // Every short-url page read once, three of them (plus the one the 429 answered).
    const listed = peer.requests.filter((q) => q.path === '/rest/v3/short-urls' && q.status === 200);
    assert.deepEqual(
      listed.map((q) => q.query.get('page')),
      ['1', '2', '3'],
    );
    assert.ok(listed.every((q) => q.query.get('orderBy') === 'dateCreated-ASC'));
    // The visits of a link kept out were not even asked for.
    assert.ok(!peer.requests.some((q) => q.path === '/rest/v3/short-urls/sh-clash/visits'));

    const links = await exportedLinks(env);
    const one = linkOf(links, 'sh-one');
    assert.equal(one.url, 'https://one.example/path');
    assert.deepEqual(one.tags, ['alpha', 'beta']);
    assert.equal(one.title, 'One');
    assert.equal(one.createdAt, '2024-03-01T10:00:00.000Z');
    assert.equal(one.validSince, '2024-03-02T00:00:00.000Z');
    assert.equal(one.expiresAt, '2024-12-31T00:00:00.000Z', 'an expiry in the past is kept');
    assert.equal(one.maxClicks, 100);
    assert.equal(one.usedClicks, 5);
    assert.equal(one.crawlable, true);
    assert.equal(one.forwardQuery, false);
    assert.equal(linkOf(links, 'sh-two', 'go.shlink.example').url, 'https://two.example/');
    assert.equal(linkOf(links, 'sh-seven', 'go.shlink.example').url, 'https://seven.example/');
    assert.equal(linkOf(links, 'sh-clash').url, 'https://other.example/', 'the existing link is kept');
    assert.ok(!links.some((l) => l.code === 'api'));
    assert.deepEqual(linkOf(links, 'sh-rules').rules, [
      { url: 'https://rules.example/ios', conditions: [{ type: 'device', value: 'ios' }] },
      {
        url: 'https://rules.example/es',
        conditions: [
          { type: 'language', value: 'es-es' },
          { type: 'query', key: 'foo', value: 'bar' },
        ],
      },
      { url: 'https://rules.example/ip', conditions: [{ type: 'ip', value: '10.0.0.0/16' }] },
      {
        url: 'https://rules.example/ref',
        conditions: [
          { type: 'query', key: 'ref' },
          { type: 'after', value: '2025-01-01T00:00:00.000Z' },
        ],
      },
      {
        url: 'https://rules.example/de',
        conditions: [
          { type: 'country', value: 'DE' },
          { type: 'browser', value: 'chrome' },
        ],
      },
    ]);

    await withHop(env, async (api) => {
      const two = await api(`/links/sh-two/stats?domain=go.shlink.example&includeBots=true&${WINDOW}`);
      assert.equal(two.totals.clicks, 9);
      assert.deepEqual(
        two.countries.map((c: { key: string; clicks: number }) => [c.key, c.clicks]),
        [
          ['ES', 6],
          ['FR', 3],
        ],
      );
      const oneAll = await api(`/links/sh-one/stats?includeBots=true&${WINDOW}`);
      assert.equal(oneAll.totals.clicks, 5);
      assert.equal(
        (await api(`/links/sh-one/stats?${WINDOW}`)).totals.clicks,
        4,
        'the bot visit is a bot click',
      );
      assert.ok(oneAll.referrers.some((x: { key: string }) => x.key === 'news.example'));
      assert.ok(oneAll.browsers.some((x: { key: string }) => x.key === 'Safari'));
      assert.equal((await api('/links/sh-one')).clicks, 5);
      const orphans = await api(`/stats/orphans?includeBots=true&${WINDOW}`);
      assert.equal(orphans.totals.clicks, 5);
      // Visits listed one by one as the source recorded them (Shlink's visit lists).
      type Listed = { visits: { data: { userAgent: string; referer: string; type?: string }[] } };
      const listed = (await api('/rest/v3/short-urls/sh-one/visits')) as unknown as Listed;
      assert.equal(listed.visits.data.length, 5);
      assert.ok(
        listed.visits.data.some(
          (v) => v.referer === 'https://news.example/a' && v.userAgent.includes('iPhone OS 17_0'),
        ),
      );
      const orphanList = (await api('/rest/v3/visits/orphan')) as unknown as Listed;
      assert.equal(orphanList.visits.data.length, 5);
      assert.ok(orphanList.visits.data.every((v) => typeof v.type === 'string'));
      assert.deepEqual(
        orphans.types.map((t: { key: string; clicks: number }) => [t.key, t.clicks]),
        [
          ['root', 2],
          ['unknown_code', 2],
          ['other', 1],
        ],
      );
      const onDomain = await api(`/stats/orphans?includeBots=true&domain=go.shlink.example&${WINDOW}`);
      assert.equal(onDomain.totals.clicks, 1);
    });
  });

  test('running it again changes nothing and counts nothing twice', async () => {
    const r = await runHopSources(args(), env);
    assert.match(r.stdout, /shlink: 0 imported, 5 unchanged, 1 conflicts, 1 failed/);
    assert.match(r.stdout, /visits: 0 imported, 15 already there/);
    assert.match(r.stdout, /orphan visits: 0 imported, 5 already there/);
    assert.match(r.stderr, /an earlier import read all of/);
  });

  test('--on-clash regenerate imports a clashing code under a new one, and a re-run keeps that one', async () => {
    const r = await runHopSources([...args(), '--on-clash', 'regenerate'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /shlink: 2 imported, 5 unchanged, 0 conflicts, 0 failed \(2 under new codes/);
    assert.match(r.stdout, /visits: 2 imported, 15 already there/);
    const clash = /sh-clash: "sh-clash" is taken by another link; imported as "([A-Za-z0-9]{7})"/.exec(
      r.stderr,
    )?.[1];
    const reserved = /s\.example\/api: imported as "([A-Za-z0-9]{7})"/.exec(r.stderr)?.[1];
    assert.ok(clash && reserved, r.stderr);
    const again = await runHopSources([...args(), '--on-clash', 'regenerate'], env);
    assert.equal(again.code, 0, again.stderr);
    assert.match(
      again.stdout,
      /shlink: 0 imported, 7 unchanged, 0 conflicts, 0 failed \(1 with warnings\); visits: 0 imported, 17 already there/,
    );
    const links = await exportedLinks(env);
    assert.equal(linkOf(links, 'sh-clash').url, 'https://other.example/');
    assert.equal(linkOf(links, clash).url, 'https://clash.example/');
    assert.equal(linkOf(links, reserved).url, 'https://reserved.example/');
    assert.equal(links.length, 8);
    await withHop(env, async (api) => {
      assert.equal((await api(`/links/${clash}`)).clicks, 2, "the clashing link's visits went with it");
      assert.equal((await api('/links/sh-clash')).clicks, 0);
      assert.equal((await api(`/stats/orphans?includeBots=true&${WINDOW}`)).totals.clicks, 5);
    });
  });

  test('an interrupted import resumes after the last page written', async () => {
    const fresh = tempDir();
    const fenv = { HOP_DATA_DIR: fresh.path };
    try {
      peer.failWhen = (q) => q.path === '/rest/v3/short-urls' && q.query.get('page') === '3';
      const first = await runHopSources(args(), fenv);
      assert.equal(first.code, 1);
      assert.match(first.stdout, /shlink: 5 imported, 0 unchanged, 0 conflicts, 1 failed/);
      assert.match(first.stderr, /Stopped: shlink: \/rest\/v3\/short-urls failed 6 times \(last: 503/);
      assert.match(first.stderr, /Run the same command again to resume/);
      const stateFile = readdirSync(fresh.path).find((f) => /^import-shlink-[0-9a-f]{8}\.json$/.test(f));
      assert.ok(stateFile, 'the state file is in the data directory');
      const state = JSON.parse(readFileSync(join(fresh.path, stateFile), 'utf8'));
      assert.deepEqual([state.cursor, state.complete], [{ page: 3 }, false]);

      peer.failWhen = null;
      const mark = peer.requests.length;
      const second = await runHopSources(args(), fenv);
      assert.equal(second.code, 0, second.stderr);
      assert.match(second.stderr, /resuming where the last run stopped/);
      assert.match(
        second.stdout,
        /shlink: 1 imported, 0 unchanged, 0 conflicts, 0 failed; visits: 1 imported/,
      );
      const pages = peer.requests
        .slice(mark)
        .filter((q) => q.path === '/rest/v3/short-urls')
        .map((q) => q.query.get('page'));
      assert.deepEqual(pages, ['3'], 'pages 1 and 2 are not read again');
      assert.equal(JSON.parse(readFileSync(join(fresh.path, stateFile), 'utf8')).complete, true);
      assert.equal((await exportedLinks(fenv)).length, 6);
    } finally {
      peer.failWhen = null;
      fresh.remove();
    }
  });

  test('a refused key and missing options are said plainly', async () => {
    const bad = await runHopSources(['import', '--from', 'shlink', '--url', peer.url, '--key', 'wrong'], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /shlink refused the request \(401 Unauthorized\): check --key/);
    const missing = await runHopSources(['import', '--from', 'shlink', '--url', peer.url], env);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--key \(a Shlink API key\) is required/);
    const unknown = await runHopSources(['import', '--from', 'tinyurl'], env);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /--from must be one of shlink, kutt, yourls, bitly, csv/);
    const help = await runHopSources(['import', '--help'], env);
    assert.match(help.stdout, /--from\s+shlink, kutt, yourls, bitly or csv/);
    assert.match(help.stdout, /--on-clash/);
  });
});

describe('import rate', () => {
  test('a Shlink with thousands of links and visits (printed, not asserted)', async () => {
    const links = 3_000;
    const shortUrls: ShlinkFixture[] = Array.from({ length: links }, (_, i) => ({
      shortCode: `bulk${i}`,
      domain: null,
      longUrl: `https://bulk.example/${i}`,
      dateCreated: new Date(BASE_HOUR - (links - i) * 60_000).toISOString(),
      tags: [`t${i % 10}`],
      // Two or three visits each, within an hour or two.
      visits: Array.from({ length: 2 + (i % 2) }, (_, j) =>
        shlinkVisit(at((i % 24) + (j === 2 ? 1 : 0), 50 - j * 10), {
          country: j === 0 ? 'FR' : 'NL',
          city: `c${i % 7}`,
        }),
      ),
    }));
    const peer = await peerServer(
      shlinkRoutes(
        { defaultHost: 's.example', shortUrls, orphans: [], pageSize: 100, visitsPageSize: 1000 },
        SHLINK_KEY,
      ),
    );
    const dir = tempDir();
    try {
      const started = performance.now();
      const r = await runHopSources(['import', '--from', 'shlink', '--url', peer.url, '--key', SHLINK_KEY], {
        HOP_DATA_DIR: dir.path,
      });
      const wall = (performance.now() - started) / 1000;
      assert.equal(r.code, 0, r.stderr);
      const visits = shortUrls.reduce((n, s) => n + (s.visits ?? []).length, 0);
      assert.match(
        r.stdout,
        new RegExp(
          `shlink: ${links} imported, 0 unchanged, 0 conflicts, 0 failed; visits: ${visits} imported`,
        ),
      );
      console.log(
        `import rate (shlink, ${links} links, ${visits} visits, ${peer.requests.length} requests): ${r.stdout.trim()}`,
      );
      console.log(
        `import rate (shlink, whole command incl. start-up, ${wall.toFixed(1)} s): ${(links / wall).toFixed(0)} links/s, ${(visits / wall).toFixed(0)} visits/s`,
      );
      const again = await runHopSources(
        ['import', '--from', 'shlink', '--url', peer.url, '--key', SHLINK_KEY],
        {
          HOP_DATA_DIR: dir.path,
        },
      );
      console.log(`import rate (shlink, second run, all unchanged): ${again.stdout.trim()}`);
    } finally {
      await peer.close();
      dir.remove();
    }
  });
});

// ---- Kutt ---------------------------------------------------------------------------------------

describe('hop import --from kutt', () => {
  const KEY = 'kutt-test-key';
  const links: KuttFixture[] = [
    {
      address: 'k-one',
      target: 'https://k1.example/',
      description: 'Kutt one',
      expire_in: '2024-06-01T00:00:00.000Z',
      visit_count: 12,
      created_at: '2024-05-01T10:20:00.000Z',
    },
    {
      address: 'k-two',
      target: 'https://k2.example/',
      domain: 'kutt.branded.example',
      visit_count: 3,
      created_at: '2024-05-02T10:20:00.000Z',
    },
    {
      address: 'k-pass',
      target: 'https://secret.example/',
      password: true,
      visit_count: 4,
      created_at: '2024-05-03T10:00:00Z',
    },
    {
      address: 'k-banned',
      target: 'https://bad.example/',
      banned: true,
      visit_count: 7,
      created_at: '2024-05-04T10:00:00Z',
    },
    { address: 'k-five', target: 'https://k5.example/', visit_count: 0, created_at: '2024-05-05T10:00:00Z' },
    { address: 'k-six', target: 'https://k6.example/', visit_count: 1, created_at: '2024-05-06T10:00:00Z' },
    {
      address: 'k-seven',
      target: 'https://k7.example/',
      expire_in: '2030-01-01T00:00:00.000Z',
      visit_count: 0,
      created_at: '2024-05-07T10:00:00Z',
    },
    { address: 'k-eight', target: 'https://k8.example/', visit_count: 5, created_at: '2024-05-08T10:00:00Z' },
  ];
  const dir = tempDir();
  const env = { HOP_DATA_DIR: dir.path };
  let peer: Peer;
  before(async () => {
    peer = await peerServer(kuttRoutes(links, KEY, 3));
  });
  after(async () => {
    await peer.close();
    dir.remove();
  });

  test('links and their visit counts come over, once however often it runs', async () => {
    peer.throttleNext(1);
    const args = ['import', '--from', 'kutt', '--url', peer.url, '--key', KEY];
    const r = await runHopSources(args, env);
    assert.equal(r.code, 1, 'a link with a password cannot come over');
    assert.match(
      r.stdout,
      /kutt: 7 imported, 0 unchanged, 0 conflicts, 1 failed \(1 with warnings\); clicks counted: 28 imported, 0 already there/,
    );
    assert.match(r.stderr, /kutt\.example\/k-pass: failed: it has a password in Kutt/);
    assert.match(r.stderr, /k-banned: banned in Kutt: imported disabled/);
    assertRetriedAfter(peer, 1);
    const pages = peer.requests.filter((q) => q.status === 200).map((q) => q.query.get('skip'));
    assert.deepEqual(pages, ['0', '3', '6']);

    // Another state file: read from the start again.
    const state = join(dir.path, 'kutt-state.json');
    const again = await runHopSources([...args, '--state', state], env);
    assert.match(
      again.stdout,
      /kutt: 0 imported, 7 unchanged, 0 conflicts, 1 failed \(1 with warnings\); clicks counted: 0 imported, 28 already there/,
    );
    assert.equal(JSON.parse(readFileSync(state, 'utf8')).complete, true);

    const exported = await exportedLinks(env);
    const one = linkOf(exported, 'k-one');
    assert.equal(one.title, 'Kutt one');
    assert.equal(one.expiresAt, '2024-06-01T00:00:00.000Z');
    assert.equal(one.createdAt, '2024-05-01T10:20:00.000Z');
    assert.equal(linkOf(exported, 'k-banned').disabled, true);
    assert.equal(linkOf(exported, 'k-two', 'kutt.branded.example').url, 'https://k2.example/');
    assert.equal(linkOf(exported, 'k-seven').expiresAt, '2030-01-01T00:00:00.000Z');
    await withHop(env, async (api) => {
      assert.equal((await api('/links/k-one')).clicks, 12);
      assert.equal((await api('/links/k-two?domain=kutt.branded.example')).clicks, 3);
      assert.equal((await api('/links/k-eight')).clicks, 5);
      const hourly = await api(`/links/k-one/stats?from=2024-05-01T00:00:00Z&to=2024-05-02T00:00:00Z`);
      assert.deepEqual(
        hourly.series.filter((p: { clicks: number }) => p.clicks > 0),
        [{ t: '2024-05-01T10:00:00.000Z', clicks: 12 }],
        'the count lands at the link’s creation hour',
      );
    });
  });
});

// ---- YOURLS -------------------------------------------------------------------------------------

describe('hop import --from yourls', () => {
  const SIG = 'abc123signature';
  const rows: YourlsFixture[] = [
    {
      keyword: 'y1',
      url: 'https://y1.example/',
      title: "It's one",
      timestamp: '2024-01-01 10:00:00',
      ip: '203.0.113.1',
      clicks: 4,
    },
    {
      keyword: 'y2',
      url: 'https://y2.example/?a=1&b=2',
      title: 'Two, "quoted"',
      timestamp: '2024-01-02 11:30:00',
      ip: '203.0.113.2',
      clicks: 0,
    },
    {
      keyword: 'y3',
      url: 'https://y3.example/',
      title: 'Three',
      timestamp: '2024-01-03 12:00:00',
      ip: '203.0.113.3',
      clicks: 10,
    },
    {
      keyword: 'y4',
      url: 'https://y4.example/',
      title: 'Back\\slash',
      timestamp: '2024-01-04 13:00:00',
      ip: '203.0.113.4',
      clicks: 1,
    },
    {
      keyword: 'y5',
      url: 'https://y5.example/',
      title: 'Five',
      timestamp: '2024-01-05 14:00:00',
      ip: '203.0.113.5',
      clicks: 2,
    },
  ];
  const dir = tempDir();
  const env = { HOP_DATA_DIR: dir.path };
  let peer: Peer;
  before(async () => {
    peer = await peerServer(yourlsRoutes(rows, SIG, 2));
  });
  after(async () => {
    await peer.close();
    dir.remove();
  });

  const sqlString = (s: string) =>
    `'${s.replaceAll('\\', '\\\\').replaceAll("'", "\\'").replaceAll('"', '\\"')}'`;
  const tuple = (r: YourlsFixture) =>
    `(${[r.keyword, r.url, r.title, r.timestamp, r.ip].map(sqlString).join(',')},${r.clicks})`;

  test('the API, then a dump and a CSV of the same table: links once, clicks once', async () => {
    peer.throttleNext(1);
    const api = await runHopSources(
      ['import', '--from', 'yourls', '--url', `${peer.url}/yourls-api.php`, '--signature', SIG],
      env,
    );
    assert.equal(api.code, 0, api.stderr);
    assert.match(
      api.stdout,
      /yourls: 5 imported, 0 unchanged, 0 conflicts, 0 failed; clicks counted: 17 imported/,
    );
    assertRetriedAfter(peer, 1);
    assert.deepEqual(
      peer.requests.filter((q) => q.status === 200).map((q) => [q.query.get('filter'), q.query.get('start')]),
      [
        ['last', '0'],
        ['last', '2'],
        ['last', '4'],
      ],
    );

    // mysqldump's shape: comments, conditional comments, other tables, one extended INSERT; then
    // phpMyAdmin's: a column list and a tuple a line.
    const dump = join(dir.path, 'yourls.sql');
    writeFileSync(
      dump,
      [
        '-- MySQL dump 10.13  Distrib 8.0',
        "-- Host: localhost    Database: yourls; it's a test",
        '/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;',
        'DROP TABLE IF EXISTS `yourls_url`;',
        'CREATE TABLE `yourls_url` (`keyword` varchar(100) NOT NULL, PRIMARY KEY (`keyword`));',
        'LOCK TABLES `yourls_url` WRITE;',
        `INSERT INTO \`yourls_url\` VALUES ${rows.slice(0, 3).map(tuple).join(',')};`,
        'UNLOCK TABLES;',
        "INSERT INTO `yourls_log` VALUES (1,'2024-01-01 10:00:00','y1','direct','Mozilla','203.0.113.9','FR');",
        '# phpMyAdmin',
        'INSERT INTO `yourls_url` (`keyword`, `url`, `title`, `timestamp`, `ip`, `clicks`) VALUES',
        `${rows.slice(3).map(tuple).join(',\n')};`,
        '',
      ].join('\n'),
    );
    const sql = await runHopSources(['import', '--from', 'yourls', '--file', dump], env);
    assert.equal(sql.code, 0, sql.stderr);
    assert.match(
      sql.stdout,
      /yourls: 0 imported, 5 unchanged, 0 conflicts, 0 failed; clicks counted: 0 imported, 17 already there/,
    );

    const csv = join(dir.path, 'yourls_url.csv');
    writeFileSync(
      csv,
      `keyword,url,title,timestamp,ip,clicks\n${rows
        .map((r) =>
          [r.keyword, r.url, r.title, r.timestamp, r.ip, String(r.clicks)]
            .map((v) => (/[",]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v))
            .join(','),
        )
        .join('\n')}\n`,
    );
    const fromCsv = await runHopSources(['import', '--from', 'yourls', '--file', csv], env);
    assert.equal(fromCsv.code, 0, fromCsv.stderr);
    assert.match(
      fromCsv.stdout,
      /yourls: 0 imported, 5 unchanged, 0 conflicts, 0 failed; clicks counted: 0 imported, 17 already there/,
    );

    const links = await exportedLinks(env);
    assert.equal(linkOf(links, 'y1').title, "It's one");
    assert.equal(linkOf(links, 'y4').title, 'Back\\slash');
    assert.equal(linkOf(links, 'y2').url, 'https://y2.example/?a=1&b=2');
    assert.equal(linkOf(links, 'y3').createdAt, '2024-01-03T12:00:00.000Z');
    await withHop(env, async (api) => {
      assert.equal((await api('/links/y1')).clicks, 4);
      assert.equal((await api('/links/y3')).clicks, 10);
      assert.equal((await api('/links/y2')).clicks, 0);
    });
  });
});

// ---- Bitly --------------------------------------------------------------------------------------

describe('hop import --from bitly', () => {
  const TOKEN = 'bitly-test-token';
  const groups: Record<string, BitlyFixture[]> = {
    Ba1: [
      {
        id: 'bit.ly/b-one',
        long_url: 'https://b1.example/',
        title: 'Bitly one',
        tags: ['launch'],
        created_at: '2023-02-01T10:00:00+0000',
        custom_bitlinks: ['https://go.brand.example/launch', 'https://bit.ly/b-one'],
      },
      {
        id: 'go.brand.example/brandx',
        long_url: 'https://b2.example/',
        created_at: '2023-02-02T10:00:00+0000',
      },
      { id: 'bit.ly/b-three', long_url: 'https://b3.example/', created_at: '2023-02-03T10:00:00+0000' },
      { id: 'bit.ly/b-four', long_url: 'https://b4.example/', created_at: '2023-02-04T10:00:00+0000' },
      { id: 'j.mp/b-five', long_url: 'https://b5.example/', created_at: '2023-02-05T10:00:00+0000' },
    ],
    Bb2: [
      { id: 'bit.ly/b-six', long_url: 'https://b6.example/', created_at: '2023-03-01T10:00:00+0000' },
      { id: 'bit.ly/b-seven', long_url: 'https://b7.example/', created_at: '2023-03-02T10:00:00+0000' },
      { id: 'bit.ly/b-eight', long_url: 'https://b8.example/', created_at: '2023-03-03T10:00:00+0000' },
    ],
  };
  const dir = tempDir();
  const env = { HOP_DATA_DIR: dir.path };
  let peer: Peer;
  before(async () => {
    peer = await peerServer(bitlyRoutes(groups, TOKEN));
  });
  after(async () => {
    await peer.close();
    dir.remove();
  });

  test("every group's bitlinks come over, custom back-halves as aliases, pages asked of the given base", async () => {
    peer.throttleNext(1);
    const args = ['import', '--from', 'bitly', '--token', TOKEN, '--url', peer.url];
    const r = await runHopSources(args, env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /bitly: 9 imported, 0 unchanged, 0 conflicts, 0 failed/);
    assert.match(r.stderr, /Registered domain go\.brand\.example\./);
    assertRetriedAfter(peer, 1);
    const bitlinks = peer.requests.filter((q) => q.status === 200 && q.path.endsWith('/bitlinks'));
    assert.deepEqual(
      bitlinks.map((q) => [q.path.split('/')[3], q.query.get('search_after'), q.query.get('page')]),
      [
        ['Ba1', null, null],
        ['Ba1', '2', null],
        ['Ba1', '4', null],
        ['Bb2', null, null],
        ['Bb2', null, '2'],
      ],
    );
    const links = await exportedLinks(env);
    const one = linkOf(links, 'b-one');
    assert.deepEqual(
      [one.url, one.title, one.tags, one.createdAt],
      ['https://b1.example/', 'Bitly one', ['launch'], '2023-02-01T10:00:00.000Z'],
    );
    const alias = linkOf(links, 'launch', 'go.brand.example');
    assert.deepEqual([alias.url, alias.title], ['https://b1.example/', 'Bitly one']);
    assert.equal(linkOf(links, 'brandx', 'go.brand.example').url, 'https://b2.example/');
    assert.equal(linkOf(links, 'b-five').url, 'https://b5.example/', "Bitly's own domains are Hop's default");
    assert.equal(links.length, 9);

    const again = await runHopSources(args, env);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /bitly: 0 imported, 9 unchanged, 0 conflicts, 0 failed/);
  });
});

// ---- CSV ----------------------------------------------------------------------------------------

describe('hop import --from csv', () => {
  const dir = tempDir();
  const env = { HOP_DATA_DIR: dir.path };
  after(() => dir.remove());

  test("Shlink's CSV columns: a BOM, ';' as delimiter, a quoted field with a newline, Short URL instead of a code", async () => {
    const semicolons = join(dir.path, 'links.csv');
    writeFileSync(
      semicolons,
      '\uFEFFLong URL;Short code;Domain;Title;Tags\r\n' +
        'https://c1.example/;c-one;;"Line one\nline two; with a semicolon";news, sport\r\n' +
        'https://c2.example/;c-two;Csv.Example;"He said ""hi""";solo\r\n' +
        'https://c3.example/;;;No code;\r\n' +
        'not a url;c-four;;;\r\n',
    );
    const r = await runHopSources(['import', '--from', 'csv', '--file', semicolons], env);
    assert.equal(r.code, 1, 'two rows cannot be imported');
    assert.match(r.stdout, /csv: 2 imported, 0 unchanged, 0 conflicts, 2 failed/);
    assert.match(r.stderr, /line 5: failed: no short code/);
    assert.match(r.stderr, /line 6 \(c-four\): failed: invalid_url/);
    assert.match(r.stderr, /Registered domain csv\.example\./);

    const commas = join(dir.path, 'short-urls.csv');
    writeFileSync(
      commas,
      'long_url,short_url,title,tags\nhttps://c5.example/,https://csv.example/c-five,Five,a|b\nhttps://c6.example/,s.example/c-six,,\n',
    );
    const r2 = await runHopSources(['import', '--from', 'csv', '--file', commas], env);
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(r2.stdout, /csv: 2 imported, 0 unchanged, 0 conflicts, 0 failed/);

    const links = await exportedLinks(env);
    const one = linkOf(links, 'c-one');
    assert.equal(one.title, 'Line one\nline two; with a semicolon');
    assert.deepEqual(one.tags, ['news', 'sport']);
    const two = linkOf(links, 'c-two', 'csv.example');
    assert.deepEqual([two.title, two.tags], ['He said "hi"', ['solo']]);
    const five = linkOf(links, 'c-five', 'csv.example');
    assert.deepEqual([five.url, five.title, five.tags], ['https://c5.example/', 'Five', ['a', 'b']]);
    assert.equal(linkOf(links, 'c-six', 's.example').url, 'https://c6.example/');

    const again = await runHopSources(['import', '--from', 'csv', '--file', semicolons], env);
    assert.match(again.stdout, /csv: 0 imported, 2 unchanged, 0 conflicts, 2 failed/);
  });
});
