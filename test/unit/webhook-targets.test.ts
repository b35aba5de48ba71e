// The rules for where a webhook may send, without any network: address parsing, which addresses
// are global, the allow list, and the verdict on a URL's host whatever its spelling.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { parseIp } from '../../src/domain/ip-address.ts';
import {
  EMPTY_ALLOW_LIST,
  notGlobalReason,
  parseAllowList,
  refuseAddress,
  webhookHostVerdict,
} from '../../src/domain/webhook-targets.ts';

const verdictOf = (url: string, allow = EMPTY_ALLOW_LIST) => webhookHostVerdict(new URL(url).hostname, allow);

test('IP literals parse to their bytes; anything else is not an address', () => {
  assert.deepEqual([...parseIp('192.0.2.1')!], [192, 0, 2, 1]);
  assert.deepEqual([...parseIp('[::1]')!], [...new Array(15).fill(0), 1]);
  assert.deepEqual([...parseIp('::ffff:1.2.3.4')!].slice(10), [0xff, 0xff, 1, 2, 3, 4]);
  assert.deepEqual([...parseIp('2001:db8:0:0:1:0:0:1')!].slice(0, 4), [0x20, 0x01, 0x0d, 0xb8]);
  for (const bad of [
    '1.2.3',
    '1.2.3.256',
    '01.2.3.4',
    '1::2::3',
    '1:2:3:4:5:6:7:8:9',
    ':1',
    'fe80::1%eth0',
    'example.com',
    '',
  ]) {
    assert.equal(parseIp(bad), null, bad);
  }
});

test('public unicast addresses are global; every special-purpose block is not', () => {
  for (const ok of ['93.184.215.14', '8.8.8.8', '2606:4700::1', '64:ff9b::808:808', '2002:808:808::1']) {
    assert.equal(notGlobalReason(parseIp(ok)!), null, ok);
  }
  for (const inside of [
    '0.1.2.3',
    '10.255.0.1',
    '100.64.0.1',
    '100.127.255.254',
    '127.255.255.255',
    '169.254.0.1',
    '172.31.255.255',
    '192.0.0.8',
    '192.0.2.10',
    '192.168.0.1',
    '198.19.0.1',
    '198.51.100.7',
    '203.0.113.9',
    '239.255.255.250',
    '240.0.0.1',
    '::',
    '::1',
    '::ffff:10.0.0.1',
    '64:ff9b:1::1',
    '100::1',
    '2001::1',
    '2001:db8::1',
    '3fff::1',
    'fd12:3456::1',
    'fe80::abcd',
    'fec0::1',
    'ff02::1',
    '4000::1',
  ]) {
    assert.notEqual(notGlobalReason(parseIp(inside)!), null, inside);
  }
  // Just outside the private and shared blocks.
  for (const edge of ['100.63.255.255', '100.128.0.0', '172.15.255.255', '172.32.0.0', '11.0.0.0']) {
    assert.equal(notGlobalReason(parseIp(edge)!), null, edge);
  }
});

test("a URL's host is judged whatever its spelling: the URL parser's dotted form is what is checked", () => {
  for (const u of ['http://2130706433/', 'http://0x7f.1/', 'http://0177.0.0.1/', 'http://[::ffff:7f00:1]/']) {
    const v = verdictOf(u);
    assert.equal(v.kind, 'forbidden', u);
    assert.match(v.kind === 'forbidden' ? v.reason : '', /loopback/);
  }
  assert.deepEqual(verdictOf('https://93.184.215.14/'), { kind: 'allowed' });
  assert.deepEqual(verdictOf('https://Hooks.Example.COM./x'), { kind: 'resolve', host: 'hooks.example.com' });
  for (const u of [
    'http://localhost/',
    'http://a.b.localhost/',
    'http://nas.local/',
    'http://router.home.arpa/',
    'http://db/',
  ]) {
    assert.equal(verdictOf(u).kind, 'forbidden', u);
  }
});

test('the allow list lets named hosts and ranges through, and nothing else', () => {
  const allow = parseAllowList(' 127.0.0.1 , Hooks.Internal., 10.20.0.0/16 , fd00::/8 ');
  assert.deepEqual(verdictOf('http://127.0.0.1:9/', allow), { kind: 'allowed' });
  assert.deepEqual(verdictOf('http://[::ffff:127.0.0.1]:9/', allow), { kind: 'allowed' }, 'mapped form too');
  assert.equal(verdictOf('http://127.0.0.2:9/', allow).kind, 'forbidden');
  assert.deepEqual(verdictOf('http://hooks.internal/', allow), { kind: 'allowed' });
  assert.equal(verdictOf('http://other.internal/', allow).kind, 'forbidden');
  assert.equal(refuseAddress('10.20.255.1', allow), null);
  assert.match(refuseAddress('10.21.0.1', allow)!, /private/);
  assert.equal(refuseAddress('fdff::1', allow), null);
  assert.match(refuseAddress('fe80::1', allow)!, /link-local/);
  assert.deepEqual(parseAllowList(''), { hosts: new Set(), ranges: [] });
});

test('a bad HOP_WEBHOOK_ALLOW_TARGETS stops the process at boot with a message naming it', () => {
  for (const bad of ['10.0.0.0/33', '::1/129', 'http://x', 'a b', '1.2.3.4/8/1', 'host/8']) {
    assert.throws(
      () => loadConfig({}, { HOP_WEBHOOK_ALLOW_TARGETS: bad }),
      /Invalid configuration: HOP_WEBHOOK_ALLOW_TARGETS=/,
      bad,
    );
  }
  const cfg = loadConfig({ 'webhook-allow-targets': '192.168.0.0/16' }, {});
  assert.equal(cfg.webhookAllowTargets.ranges.length, 1);
});
