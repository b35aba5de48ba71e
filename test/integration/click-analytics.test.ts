// Click analytics end to end on the embedded default: a redirect's click shows in the stats API
// and on the live feed, enriched (referrer, country, browser, OS, device, bot, visitors).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { baseUrl, type Harness, startHarness } from '../support/harness.ts';

const CHROME =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36';
const IPHONE =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1';
const GOOGLEBOT = 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)';

interface Stats {
  totals: { clicks: number; visitors: number };
  series: { t: string; clicks: number }[];
  referrers: { key: string; clicks: number }[];
  countries: { key: string; clicks: number }[];
  browsers: { key: string; clicks: number }[];
  oses: { key: string; clicks: number }[];
  devices: { key: string; clicks: number }[];
  topLinks?: { code: string; domain: string; clicks: number }[];
}

async function within<T>(ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Reads a Server-Sent Events stream until `done` says it has seen enough. */
async function readStream(
  url: string,
  headers: Record<string, string>,
  done: (text: string) => boolean,
  opened: () => Promise<void> = async () => {},
): Promise<string> {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), 5_000);
  const res = await fetch(url, { headers, signal: ctl.signal });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  await opened();
  try {
    while (!done(text)) {
      const { value, done: ended } = await reader.read();
      if (ended) break;
      text += decoder.decode(value, { stream: true });
    }
  } finally {
    clearTimeout(timer);
    ctl.abort();
  }
  return text;
}

describe('click analytics', () => {
  let h: Harness;
  let base: string;
  const click = (code: string, headers: Record<string, string> = {}) =>
    fetch(`${base}/${code}`, { redirect: 'manual', headers: { 'user-agent': CHROME, ...headers } });
  const stats = async (path: string) => {
    const r = await fetch(`${base}/api/v1${path}`, { headers: h.auth });
    assert.equal(r.status, 200, await r.clone().text());
    return (await r.json()) as Stats;
  };
  const create = async (alias: string, extra: Record<string, unknown> = {}) => {
    const r = await fetch(`${base}/api/v1/links`, {
      method: 'POST',
      headers: { ...h.auth, 'content-type': 'application/json' },
      body: JSON.stringify({ url: `https://${alias}.example/`, alias, ...extra }),
    });
    assert.equal(r.status, 201);
  };

  before(async () => {
    h = await startHarness(
      { HOP_TRUST_PROXY: '127.0.0.1', HOP_COUNTRY_HEADER: 'cf-ipcountry', HOP_FEED_HEARTBEAT_MS: '200' },
      { listen: true },
    );
    base = baseUrl(h.app);
  });
  after(() => h.close());

  test('a click shows in the stats within 2 seconds, enriched', async () => {
    await create('fresh');
    const started = Date.now();
    assert.equal((await click('fresh', { referer: 'https://news.example/story' })).status, 302);
    const s = await within(2_000, async () => {
      const s = await stats('/links/fresh/stats');
      return s.totals.clicks === 1 ? s : undefined;
    });
    assert.ok(Date.now() - started < 2_000);
    assert.deepEqual(s.referrers, [{ key: 'news.example', clicks: 1 }]);
    assert.deepEqual(s.browsers, [{ key: 'Chrome', clicks: 1 }]);
    assert.deepEqual(s.oses, [{ key: 'Windows', clicks: 1 }]);
    assert.deepEqual(s.devices, [{ key: 'desktop', clicks: 1 }]);
    assert.deepEqual(s.countries, [{ key: '(unknown)', clicks: 1 }], 'loopback has no country');
    assert.equal(s.totals.visitors, 1);
    assert.equal(s.series.filter((p) => p.clicks > 0).length, 1);
    assert.equal(s.series.length, 8, 'the default window is 7 days, by day, rounded out to whole days');
  });

  test('countries come from a trusted proxy address or the configured CDN header', async () => {
    await create('geo');
    await click('geo', { 'x-forwarded-for': '81.2.69.142' });
    await click('geo', { 'cf-ipcountry': 'jp' });
    await click('geo', { 'x-forwarded-for': '2001:4860:4860::8888' });
    await h.deps.clicks.flush();
    const s = await stats('/links/geo/stats');
    assert.deepEqual(s.countries.map((c) => c.key).sort(), ['GB', 'JP', 'US']);
  });

  test('an untrusted peer cannot choose its country with X-Forwarded-For', async () => {
    const other = await startHarness({}, { listen: true });
    try {
      const url = baseUrl(other.app);
      await fetch(`${url}/api/v1/links`, {
        method: 'POST',
        headers: { ...other.auth, 'content-type': 'application/json' },
        body: JSON.stringify({ url: 'https://x.example/', alias: 'spoof' }),
      });
      await fetch(`${url}/spoof`, {
        redirect: 'manual',
        headers: { 'user-agent': CHROME, 'x-forwarded-for': '81.2.69.142', 'cf-ipcountry': 'JP' },
      });
      await other.deps.clicks.flush();
      const r = await fetch(`${url}/api/v1/links/spoof/stats`, { headers: other.auth });
      assert.deepEqual(((await r.json()) as Stats).countries, [{ key: '(unknown)', clicks: 1 }]);
    } finally {
      await other.close();
    }
  });

  test('bots are left out unless asked for, yet count toward the link total and maxClicks', async () => {
    await create('botty', { maxClicks: 3 });
    await click('botty', { 'user-agent': GOOGLEBOT });
    await click('botty', { 'user-agent': IPHONE });
    await h.deps.clicks.flush();
    const human = await stats('/links/botty/stats');
    assert.equal(human.totals.clicks, 1);
    assert.deepEqual(human.devices, [{ key: 'mobile', clicks: 1 }]);
    const all = await stats('/links/botty/stats?includeBots=true');
    assert.equal(all.totals.clicks, 2);
    assert.ok(all.devices.some((d) => d.key === 'bot' && d.clicks === 1));
    const link = (await (await fetch(`${base}/api/v1/links/botty`, { headers: h.auth })).json()) as {
      clicks: number;
    };
    assert.equal(link.clicks, 2);
    assert.equal((await click('botty', { 'user-agent': GOOGLEBOT })).status, 302);
    assert.equal((await click('botty')).status, 410, 'the bot clicks used up the limit too');
  });

  test('a visitor clicking twice is one visitor; another browser is another', async () => {
    await create('twice');
    await click('twice');
    await click('twice');
    await click('twice', { 'user-agent': IPHONE });
    await h.deps.clicks.flush();
    const s = await stats('/links/twice/stats');
    assert.equal(s.totals.clicks, 3);
    assert.equal(s.totals.visitors, 2);
  });

  test('the all-links view sums every link and names the top links', async () => {
    await create('top-a');
    await create('top-b');
    for (let i = 0; i < 3; i++) await click('top-a');
    await click('top-b');
    await h.deps.clicks.flush();
    const s = await stats('/stats');
    const a = s.topLinks?.find((l) => l.code === 'top-a');
    assert.deepEqual(a, { code: 'top-a', domain: 'hop.test', clicks: 3 });
    assert.ok(s.totals.clicks >= 4);
    const day = await stats('/stats?interval=day');
    assert.equal(day.series.length, 8, 'seven days rounded out to whole days');
    assert.equal(
      day.series.reduce((n, p) => n + p.clicks, 0),
      s.totals.clicks,
    );
  });

  test('stats of an unknown link are 404; a bad window is a 400 naming the field', async () => {
    const missing = await fetch(`${base}/api/v1/links/nope404/stats`, { headers: h.auth });
    assert.equal(missing.status, 404);
    assert.match(missing.headers.get('content-type') ?? '', /application\/problem\+json/);
    assert.equal(((await missing.json()) as { code: string }).code, 'not_found');
    for (const [q, field] of [
      ['from=yesterday', 'from'],
      ['from=2026-01-02&to=2026-01-01', 'from'],
      ['from=2026-01-01&to=2026-03-01&interval=hour', 'interval'],
    ] as const) {
      const r = await fetch(`${base}/api/v1/stats?${q}`, { headers: h.auth });
      assert.equal(r.status, 400, q);
      const body = (await r.json()) as { code: string; field?: string };
      assert.equal(body.code, 'validation_failed', q);
      assert.equal(body.field, field, q);
    }
    const bad = await fetch(`${base}/api/v1/stats?interval=week`, { headers: h.auth });
    assert.equal(bad.status, 400);
    assert.equal(((await fetch(`${base}/api/v1/stats`)) as Response).status, 401);
  });

  test('the live feed streams each click, naming its link, with heartbeats', async () => {
    await create('live');
    await create('other');
    const seen = readStream(
      `${base}/api/v1/links/live/events`,
      h.auth,
      (t) => t.includes('event: click') && t.includes(': heartbeat'),
      async () => {
        await click('other');
        await click('live', { referer: 'https://chat.example/' });
      },
    );
    const all = readStream(
      `${base}/api/v1/events`,
      h.auth,
      (t) => t.includes('"code":"other"'),
      async () => {
        await new Promise((r) => setTimeout(r, 100));
        await click('other');
      },
    );
    const text = await seen;
    const events = text
      .split('\n\n')
      .filter((b) => b.startsWith('event: click'))
      .map((b) => JSON.parse(b.slice(b.indexOf('data: ') + 6)) as Record<string, unknown>);
    assert.deepEqual(
      events.map((e) => e.code),
      ['live'],
      'a link feed carries only its link',
    );
    assert.equal(events[0]!.referrerHost, 'chat.example');
    assert.equal(events[0]!.browser, 'Chrome');
    assert.ok(!('visitor' in events[0]!), 'no visitor hash leaves the server');
    assert.match(await all, /"code":"other"/);
    const missing = await fetch(`${base}/api/v1/links/nope404/events`, { headers: h.auth });
    assert.equal(missing.status, 404);
  });
});
