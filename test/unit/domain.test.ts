// Pure rules: placement hash, codes, aliases, URL policy, query merging, input validation.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BUCKET_COUNT, bucketOf, murmur3_32 } from '../../src/domain/bucket.ts';
import { generateCode, validateAlias } from '../../src/domain/codes.ts';
import { HopError } from '../../src/domain/errors.ts';
import { decideRedirect } from '../../src/domain/link.ts';
import { parseExpiry, validateCreate, validatePatch } from '../../src/domain/link-input.ts';
import { mergeQuery, normalizeTargetUrl } from '../../src/domain/url-policy.ts';
import { redirectRecord } from '../support/fixtures.ts';

const enc = new TextEncoder();
const policy = { ownHosts: new Set(['hop.example']), denyHosts: ['evil.example'] };
const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    if (e instanceof HopError) return e.code;
    throw e;
  }
  return 'ok';
};

describe('placement hash (pinned forever: DESIGN §2)', () => {
  test('MurmurHash3 x86_32 matches the published test vectors', () => {
    const vectors: [string, number, number][] = [
      ['', 0, 0x00000000],
      ['', 1, 0x514e28b7],
      ['', 0xffffffff, 0x81f16f39],
      ['a', 0, 0x3c2569b2],
      ['abc', 0, 0xb3dd93fa],
      ['abcd', 0, 0x43ed676a],
      ['Hello, world!', 0, 0xc0363e43],
      ['The quick brown fox jumps over the lazy dog', 0, 0x2e4ff723],
    ];
    for (const [s, seed, want] of vectors)
      assert.equal(murmur3_32(enc.encode(s), seed), want, `${s}/${seed}`);
  });

  test('bucket = hash mod 1024 over UTF-8 bytes', () => {
    assert.equal(BUCKET_COUNT, 1024);
    assert.equal(bucketOf('abc'), 0xb3dd93fa % 1024);
    assert.equal(bucketOf('ünï'), murmur3_32(enc.encode('ünï')) % 1024);
    const counts = new Array(8).fill(0);
    for (let i = 0; i < 80_000; i++) counts[bucketOf(generateCode(7)) % 8]++;
    for (const c of counts) assert.ok(Math.abs(c - 10_000) < 600, `spread ${counts}`);
  });
});

describe('codes and aliases', () => {
  test('generated codes are base62 of the asked length and not sequential', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const c = generateCode(7);
      assert.match(c, /^[0-9A-Za-z]{7}$/);
      seen.add(c);
    }
    assert.equal(seen.size, 10_000);
    assert.equal(generateCode(12).length, 12);
    // Every character position uses the whole alphabet (no counter hiding in a prefix).
    const first = new Set([...seen].map((c) => c[0]));
    assert.ok(first.size > 55);
  });

  test('alias rules', () => {
    assert.equal(validateAlias('a_b-C9'), 'a_b-C9');
    assert.equal(
      code(() => validateAlias('ab')),
      'invalid_alias',
    );
    assert.equal(
      code(() => validateAlias('a/b')),
      'invalid_alias',
    );
    assert.equal(
      code(() => validateAlias('ünï')),
      'invalid_alias',
    );
    assert.equal(
      code(() => validateAlias('Metrics')),
      'reserved_alias',
    );
  });
});

describe('URL policy', () => {
  test('accepts http(s) and normalizes', () => {
    assert.equal(normalizeTargetUrl('HTTPS://Example.COM', policy), 'https://example.com/');
    assert.equal(
      normalizeTargetUrl('http://例え.jp/パス', policy),
      'http://xn--r8jz45g.jp/%E3%83%91%E3%82%B9',
    );
    assert.equal(normalizeTargetUrl('https://127.0.0.1:8443/x', policy), 'https://127.0.0.1:8443/x');
  });

  test('refuses everything else with invalid_url', () => {
    for (const bad of [
      'mailto:a@b.c',
      'data:text/html,hi',
      'https://a:b@example.com',
      'https://user@example.com',
      'https://example.com/\ttab',
      'https://example.com/\u2028',
      'https://hop.example/x',
      'https://HOP.example./x',
      'https://evil.example/',
      'https://sub.evil.example/',
      `https://e.com/${'x'.repeat(8200)}`,
      'not a url',
      42,
    ]) {
      assert.equal(
        code(() => normalizeTargetUrl(bad, policy)),
        'invalid_url',
        String(bad),
      );
    }
    assert.equal(
      code(() => normalizeTargetUrl('https://notevil.example/', policy)),
      'ok',
    );
  });

  test('query merge keeps the stored URL byte for byte and goes before the fragment', () => {
    assert.equal(mergeQuery('https://a.example/p', ''), 'https://a.example/p');
    assert.equal(mergeQuery('https://a.example/p', 'x=1'), 'https://a.example/p?x=1');
    assert.equal(mergeQuery('https://a.example/p?', 'x=1'), 'https://a.example/p?x=1');
    assert.equal(mergeQuery('https://a.example/p?a=%20#f?g', 'x=1'), 'https://a.example/p?a=%20&x=1#f?g');
    assert.equal(mergeQuery('https://a.example/#frag', 'x=1&y'), 'https://a.example/?x=1&y#frag');
  });
});

describe('link input', () => {
  const now = Date.UTC(2030, 0, 1);
  test('expiry: ISO 8601 with zone, in the future', () => {
    assert.equal(parseExpiry('2030-01-02T00:00:00Z', now)?.toISOString(), '2030-01-02T00:00:00.000Z');
    assert.equal(parseExpiry(null, now), null);
    for (const bad of ['2030-01-02', '2030-01-02T00:00:00', 'tomorrow', '2029-12-31T23:59:59Z', 1893456000]) {
      assert.equal(
        code(() => parseExpiry(bad, now)),
        'invalid_expiry',
        String(bad),
      );
    }
  });

  test('create defaults and dedupes tags', () => {
    const { alias, fields } = validateCreate(
      { url: 'https://x.example', tags: ['a', ' a ', 'b'] },
      policy,
      now,
    );
    assert.equal(alias, null);
    assert.deepEqual(fields, {
      url: 'https://x.example/',
      expiresAt: null,
      validSince: null,
      maxClicks: null,
      redirectType: 302,
      forwardQuery: true,
      tags: ['a', 'b'],
      title: null,
      disabled: false,
      crawlable: false,
      rules: null,
      expiredUrl: null,
      passwordHash: null,
    });
  });

  test('patch keeps absent fields and needs at least one', () => {
    assert.deepEqual(validatePatch({ title: null, maxClicks: null }, policy, now), {
      title: null,
      maxClicks: null,
    });
    assert.equal(
      code(() => validatePatch({}, policy, now)),
      'validation_failed',
    );
    assert.equal(
      code(() => validatePatch({ redirectType: null }, policy, now)),
      'validation_failed',
    );
  });
});

describe('redirect decision', () => {
  const rec = redirectRecord({ code: 'abc' });
  test('unknown and deleted are not found; disabled and expired are gone', () => {
    assert.equal(decideRedirect(null, 0), 'not_found');
    assert.equal(decideRedirect({ ...rec, deletedAt: new Date(0) }, 0), 'not_found');
    assert.equal(decideRedirect({ ...rec, disabled: true }, 0), 'disabled');
    assert.equal(decideRedirect({ ...rec, expiresAt: new Date(1000) }, 1000), 'expired');
    assert.equal(decideRedirect({ ...rec, expiresAt: new Date(1001) }, 1000), 'redirect');
  });
});
