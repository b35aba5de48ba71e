// Analytics rules without I/O: rollup sums, the visitor estimate, the stats window, the feed.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { describe, test } from 'node:test';
import { ClickEnricher } from '../../src/analytics/click-enricher.ts';
import { ClickFeed } from '../../src/analytics/click-feed.ts';
import type { VisitorSalts } from '../../src/analytics/visitor-salts.ts';
import { ALL_LINKS, estimateVisitors, hllRegister, summarizeClicks } from '../../src/domain/clicks.ts';
import { HopError } from '../../src/domain/errors.ts';
import { fillSeries, statsWindow } from '../../src/domain/stats-window.ts';
import { clickEvent } from '../support/fixtures.ts';

const hash = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 16);

describe('click rollups', () => {
  test('clicks are summed per link, hour, bot flag and value, and again across all links', () => {
    const at = Date.UTC(2030, 5, 1, 12, 30);
    const { rollups, visitors } = summarizeClicks([
      clickEvent({ code: 'a', at, country: 'DE' }),
      clickEvent({ code: 'a', at: at + 60_000, country: 'DE' }),
      clickEvent({ code: 'b', at, country: 'FR', bot: true }),
    ]);
    const find = (code: string, dim: string, value: string, bot = false) =>
      rollups.find((r) => r.code === code && r.dim === dim && r.value === value && r.bot === bot)?.clicks;
    assert.equal(find('a', 'country', 'DE'), 2);
    assert.equal(find('a', 'agent', 'Chrome\u001fWindows\u001fdesktop'), 2);
    assert.equal(find('b', 'country', 'FR', true), 1);
    assert.equal(find(ALL_LINKS, 'referrer', ''), 2);
    assert.equal(find(ALL_LINKS, 'country', 'FR', true), 1);
    assert.equal(rollups.filter((r) => r.code === 'a').length, 3, 'three rows per link and hour');
    assert.ok(rollups.every((r) => r.hour === Date.UTC(2030, 5, 1, 12)));
    assert.ok(visitors.every((v) => v.day === Date.UTC(2030, 5, 1)));
  });

  test('the visitor estimate is exact when small and within 5% at a hundred thousand', () => {
    const ranks = (n: number) => {
      const regs = new Map<number, number>();
      for (let i = 0; i < n; i++) {
        const { reg, rank } = hllRegister(hash(`v${i}`));
        regs.set(reg, Math.max(regs.get(reg) ?? 0, rank));
      }
      return regs.values();
    };
    assert.equal(estimateVisitors([]), 0);
    assert.equal(estimateVisitors(ranks(1)), 1);
    assert.equal(estimateVisitors(ranks(20)), 20);
    const big = estimateVisitors(ranks(100_000));
    assert.ok(Math.abs(big - 100_000) < 5_000, `estimated ${big}`);
  });
});

describe('stats window', () => {
  const now = Date.UTC(2030, 0, 10, 15, 20);
  test('defaults to the last 7 days by day, rounded out to whole hours', () => {
    const w = statsWindow({}, now);
    assert.equal(w.to, Date.UTC(2030, 0, 10, 16));
    assert.equal(w.from, Date.UTC(2030, 0, 3, 15));
    assert.equal(w.interval, 'day');
    assert.equal(w.includeBots, false);
    assert.equal(statsWindow({ from: '2030-01-09T00:00:00Z' }, now).interval, 'hour');
  });

  test('rejects what it cannot answer, naming the field', () => {
    const field = (p: Record<string, string>) => {
      try {
        statsWindow(p, now);
        return null;
      } catch (e) {
        assert.ok(e instanceof HopError && e.code === 'validation_failed');
        return e.extra.field;
      }
    };
    assert.equal(field({ from: 'last week' }), 'from');
    assert.equal(field({ to: '2030-13-45' }), 'to');
    assert.equal(field({ from: '2030-01-05', to: '2030-01-04' }), 'from');
    assert.equal(field({ from: '2020-01-01' }), 'from');
    assert.equal(field({ from: '2029-10-01', interval: 'hour' }), 'interval');
    assert.equal(field({ includeBots: 'yes' }), 'includeBots');
  });

  test('series have every bucket, zero where nothing was clicked', () => {
    const w = statsWindow({ from: '2030-01-01', to: '2030-01-01T03:00:00Z' }, now);
    assert.deepEqual(
      fillSeries(w, [{ t: Date.UTC(2030, 0, 1, 1), clicks: 4 }]).map((p) => p.clicks),
      [0, 4, 0],
    );
  });
});

describe('click enrichment', () => {
  const req = (ip: string, ua: string, headers: Record<string, string> = {}) =>
    ({
      headers: { 'user-agent': ua, ...headers },
      socket: { remoteAddress: ip },
    }) as unknown as IncomingMessage;
  const CHROME =
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36';
  const day1 = Date.UTC(2030, 0, 1, 12);
  const day2 = day1 + 86_400_000;
  const salts = {
    saltFor: (at: number) => (at < day2 - 12 * 3_600_000 ? 'salt-1' : 'salt-2'),
  } as VisitorSalts;

  test('one visitor per (IP, user agent) within a day, another the next day; no raw IP in the event', () => {
    const e = new ClickEnricher({ trustProxy: false, countryHeader: null }, salts);
    const a = e.eventFor('x', req('81.2.69.142', CHROME), day1);
    const again = e.eventFor('y', req('81.2.69.142', CHROME), day1 + 1000);
    const otherUa = e.eventFor('x', req('81.2.69.142', `${CHROME} Edg/131`), day1);
    const nextDay = e.eventFor('x', req('81.2.69.142', CHROME), day2);
    assert.equal(a.visitor, again.visitor);
    assert.notEqual(a.visitor, otherUa.visitor);
    assert.notEqual(a.visitor, nextDay.visitor);
    assert.equal(a.country, 'GB');
    assert.equal(a.browser, 'Chrome');
    assert.equal(a.device, 'desktop');
    assert.equal(a.bot, false);
    assert.ok(!JSON.stringify(a).includes('81.2.69.142'));
  });

  test('forwarded addresses count only from trusted proxies; a CDN header only when configured', () => {
    const trusting = new ClickEnricher({ trustProxy: '127.0.0.1', countryHeader: 'cf-ipcountry' }, salts);
    const viaProxy = req('127.0.0.1', CHROME, { 'x-forwarded-for': '8.8.8.8' });
    assert.equal(trusting.eventFor('x', viaProxy, day1).country, 'US');
    assert.equal(
      trusting.eventFor('x', req('127.0.0.1', CHROME, { 'cf-ipcountry': 'de' }), day1).country,
      'DE',
    );
    assert.equal(
      trusting.eventFor('x', req('127.0.0.1', CHROME, { 'cf-ipcountry': 'XX' }), day1).country,
      null,
    );
    const plain = new ClickEnricher({ trustProxy: false, countryHeader: null }, salts);
    const spoofed = req('127.0.0.1', CHROME, { 'x-forwarded-for': '8.8.8.8', 'cf-ipcountry': 'DE' });
    assert.equal(plain.eventFor('x', spoofed, day1).country, null);
  });

  test('the client address is the one proxy-addr picks, with one proxy in front or a chain', () => {
    const trusting = new ClickEnricher({ trustProxy: '127.0.0.1', countryHeader: null }, salts);
    const visitorOf = (peer: string, forwarded?: string) =>
      trusting.eventFor(
        'x',
        req(peer, CHROME, forwarded === undefined ? {} : { 'x-forwarded-for': forwarded }),
        day1,
      ).visitor;
    assert.equal(
      visitorOf('127.0.0.1', ' 8.8.8.8 '),
      visitorOf('8.8.8.8'),
      'a trusted proxy names the client',
    );
    assert.equal(visitorOf('10.9.9.9', '8.8.8.8'), visitorOf('10.9.9.9'), 'an untrusted peer is the client');
    assert.equal(visitorOf('10.9.9.9', '8.8.8.8'), visitorOf('10.9.9.9', '9.9.9.9'), 'whatever it forwards');
    assert.equal(
      visitorOf('127.0.0.1', '8.8.8.8, 1.1.1.1'),
      visitorOf('1.1.1.1'),
      'the nearest untrusted hop',
    );
    assert.equal(visitorOf('127.0.0.1', '8.8.8.8, 127.0.0.1'), visitorOf('8.8.8.8'), 'past trusted hops');
    assert.equal(visitorOf('127.0.0.1', ''), visitorOf('127.0.0.1'), 'an empty header names nobody');
  });
});

describe('live feed', () => {
  test('a subscriber that cannot keep up is dropped; the others still get every click', () => {
    const feed = new ClickFeed({ heartbeatMs: 60_000 });
    const fast: string[] = [];
    let slowEnded = false;
    feed.subscribe({
      code: null,
      send: (c) => {
        fast.push(c);
        return true;
      },
      end: () => {},
    });
    feed.subscribe({ code: null, send: () => false, end: () => (slowEnded = true) });
    feed.subscribe({ code: 'other', send: () => assert.fail('not its link'), end: () => {} });
    for (let i = 0; i < 3; i++) feed.publish(clickEvent({ code: 'abc' }));
    assert.equal(fast.length, 3);
    assert.ok(slowEnded);
    assert.equal(feed.dropped, 1);
    assert.equal(feed.size, 2);
    assert.match(fast[0]!, /^event: click\nid: [0-9a-f-]{36}\ndata: \{"code":"abc",/);
    feed.close();
    assert.equal(feed.size, 0);
  });
});
