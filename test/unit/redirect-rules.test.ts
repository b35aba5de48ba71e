// Redirect rules without a server: parsing what clients send, choosing a rule from a visit, and
// what a request tells the rules (user agents of real browsers and bots, Accept-Language, address).
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, test } from 'node:test';
import { parseIp } from '../../src/domain/ip-address.ts';
import { chooseRule, compileRules, parseRules, type Visit } from '../../src/domain/redirect-rules.ts';
import { acceptedLanguages, stickyBucket, VisitFacts } from '../../src/redirect/visit-facts.ts';

const policy = { ownHosts: new Set<string>(['hop.test']), denyHosts: [] };

function visitOf(over: Partial<Visit> & { asked?: string[] } = {}): Visit {
  const asked = over.asked ?? [];
  const ask = <T>(what: string, answer: () => T): T => {
    asked.push(what);
    return answer();
  };
  return {
    now: over.now ?? Date.parse('2030-06-01T00:00:00Z'),
    query: over.query ?? '',
    agent: () => ask('agent', () => over.agent?.() ?? { os: null, platform: null, browser: null }),
    languages: () => ask('languages', () => over.languages?.() ?? []),
    country: () => ask('country', () => over.country?.() ?? null),
    ip: () => ask('ip', () => over.ip?.() ?? null),
    bucket: () => ask('bucket', () => over.bucket?.() ?? 0),
  };
}

describe('parsing rules', () => {
  test('normalizes values and keeps the order', () => {
    const rules = parseRules(
      [
        { url: 'https://Example.com/a', conditions: [{ type: 'country', value: ' fr ' }] },
        {
          url: 'https://example.com/b',
          conditions: [
            { type: 'language', value: 'pt_BR' },
            { type: 'device', value: 'IOS' },
          ],
        },
        { url: 'https://example.com/c', conditions: [{ type: 'after', value: '2030-01-01T01:00:00+01:00' }] },
      ],
      policy,
    );
    assert.deepEqual(rules, [
      { url: 'https://example.com/a', conditions: [{ type: 'country', value: 'FR' }] },
      {
        url: 'https://example.com/b',
        conditions: [
          { type: 'language', value: 'pt-br' },
          { type: 'device', value: 'ios' },
        ],
      },
      { url: 'https://example.com/c', conditions: [{ type: 'after', value: '2030-01-01T00:00:00.000Z' }] },
    ]);
  });

  test('refuses what it cannot evaluate, naming the field', () => {
    const refuse = (raw: unknown, field: string) =>
      assert.throws(
        () => parseRules(raw, policy),
        (e: { code?: string; extra?: { field?: string } }) => e.extra?.field === field,
        JSON.stringify(raw),
      );
    refuse({}, 'rules');
    refuse(
      [{ url: 'https://e.com/', conditions: [{ type: 'weather', value: 'rain' }] }],
      'rules[0].conditions[0].type',
    );
    refuse(
      [{ url: 'https://e.com/', conditions: [{ type: 'sample', value: '0' }] }],
      'rules[0].conditions[0].value',
    );
    refuse([{ url: 'https://e.com/', conditions: [{ type: 'sample' }] }], 'rules[0].conditions[0].value');
    refuse([{ url: 'https://hop.test/x', conditions: [{ type: 'sample', value: '5' }] }], 'rules[0].url');
    refuse(
      [{ url: 'https://e.com/', conditions: [{ type: 'ip', value: '300.1.1.1' }] }],
      'rules[0].conditions[0].value',
    );
    refuse(
      [{ url: 'https://e.com/', conditions: [{ type: 'before', value: '2030-01-01' }] }],
      'rules[0].conditions[0].value',
    );
    refuse(
      [{ url: 'https://e.com/', conditions: [{ type: 'query', key: '' }] }],
      'rules[0].conditions[0].key',
    );
    refuse(
      [{ url: 'https://e.com/', extra: 1, conditions: [{ type: 'query', key: 'a' }] }],
      'rules[0].extra',
    );
    refuse(
      [
        {
          url: 'https://e.com/',
          conditions: Array.from({ length: 11 }, () => ({ type: 'query', key: 'a' })),
        },
      ],
      'rules[0].conditions',
    );
  });
});

describe('choosing a rule', () => {
  const compiled = compileRules(
    parseRules(
      [
        {
          url: 'https://e.com/window',
          conditions: [
            { type: 'after', value: '2030-01-01T00:00:00Z' },
            { type: 'before', value: '2030-02-01T00:00:00Z' },
          ],
        },
        { url: 'https://e.com/lan', conditions: [{ type: 'ip', value: '10.1.0.0/16' }] },
        { url: 'https://e.com/third', conditions: [{ type: 'sample', value: '33' }] },
        { url: 'https://e.com/second-third', conditions: [{ type: 'sample', value: '66' }] },
      ],
      policy,
    ),
  );

  test('all conditions of a rule must hold, the first rule that holds wins', () => {
    const jan = Date.parse('2030-01-15T00:00:00Z');
    assert.equal(chooseRule(compiled, visitOf({ now: jan, bucket: () => 99 })), 0);
    assert.equal(
      chooseRule(compiled, visitOf({ now: Date.parse('2030-02-01T00:00:00Z'), bucket: () => 99 })),
      -1,
    );
    assert.equal(chooseRule(compiled, visitOf({ ip: () => parseIp('10.1.200.3'), bucket: () => 99 })), 1);
    assert.equal(chooseRule(compiled, visitOf({ ip: () => parseIp('10.2.0.1'), bucket: () => 10 })), 2);
    assert.equal(
      chooseRule(compiled, visitOf({ bucket: () => 40 })),
      3,
      'samples in order split cumulatively',
    );
    assert.equal(chooseRule(compiled, visitOf({ bucket: () => 66 })), -1);
  });

  test('a visit is asked only what the rules need, once', () => {
    const asked: string[] = [];
    chooseRule(compiled, visitOf({ asked, bucket: () => 80 }));
    assert.deepEqual(asked, ['ip', 'bucket']);
  });
});

describe('what a request tells the rules', () => {
  const facts = new VisitFacts({ trustProxy: '127.0.0.1', countryHeader: 'cf-ipcountry' });
  const request = (headers: Record<string, string>, remoteAddress = '127.0.0.1') =>
    ({ headers, socket: { remoteAddress } }) as unknown as IncomingMessage;
  const agents: [string, { os: string | null; platform: string | null; browser: string | null }][] = [
    [
      'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
      { os: 'ios', platform: 'mobile', browser: 'safari' },
    ],
    [
      'Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1',
      { os: 'ios', platform: 'tablet', browser: 'chrome' },
    ],
    [
      'Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36',
      { os: 'android', platform: 'mobile', browser: 'samsung' },
    ],
    [
      'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0',
      { os: 'windows', platform: 'desktop', browser: 'edge' },
    ],
    [
      'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 OPR/111.0.0.0',
      { os: 'windows', platform: 'desktop', browser: 'opera' },
    ],
    [
      'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15',
      { os: 'macos', platform: 'desktop', browser: 'safari' },
    ],
    [
      'Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0',
      { os: 'linux', platform: 'desktop', browser: 'firefox' },
    ],
    ['', { os: null, platform: null, browser: null }],
  ];

  test('user agents of real browsers', () => {
    for (const [ua, want] of agents) {
      const got = facts.visit('c', '/c', request({ 'user-agent': ua }), 0).agent();
      assert.deepEqual({ ...got }, want, ua);
    }
  });

  test('Accept-Language, most preferred first; q=0 and * left out', () => {
    assert.deepEqual(acceptedLanguages('de;q=0.5, fr-CA, en;q=0.8, *;q=0.1, es;q=0'), ['fr-ca', 'en', 'de']);
    assert.deepEqual(acceptedLanguages(undefined), []);
    assert.deepEqual(acceptedLanguages('garbage;;;q=x'), ['garbage']);
  });

  test('client address through a trusted proxy, country from the CDN header', () => {
    const v = facts.visit(
      'c',
      '/c?a=1',
      request({ 'x-forwarded-for': '203.0.113.5', 'cf-ipcountry': 'de' }),
      0,
    );
    assert.deepEqual(v.ip(), parseIp('203.0.113.5'));
    assert.equal(v.country(), 'DE');
    assert.equal(v.query, 'a=1');
    const untrusted = facts.visit(
      'c',
      '/c',
      request({ 'x-forwarded-for': '203.0.113.5', 'cf-ipcountry': 'XX' }, '192.0.2.1'),
      0,
    );
    assert.deepEqual(untrusted.ip(), parseIp('192.0.2.1'), 'an untrusted peer cannot name another address');
    assert.equal(untrusted.country(), null, 'XX is unknown');
    const mapped = facts.visit('c', '/c', request({}, '::ffff:192.0.2.9'), 0);
    assert.deepEqual(mapped.ip(), parseIp('192.0.2.9'), 'an IPv4-mapped peer is its IPv4 address');
  });

  test('the sample bucket is sticky per visitor and link, and spread evenly', () => {
    assert.equal(stickyBucket('192.0.2.1', 'ua', 'abc'), stickyBucket('192.0.2.1', 'ua', 'abc'));
    const counts = new Array(10).fill(0);
    for (let i = 0; i < 20_000; i++)
      counts[Math.floor(stickyBucket(`10.0.${i >> 8}.${i & 255}`, 'ua', 'abc') / 10)]++;
    for (const c of counts) assert.ok(c > 1700 && c < 2300, `deciles ${counts}`);
  });
});
