import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DomainDirectory } from '../../src/domains/domain-directory.ts';
import { createLogger } from '../../src/logger.ts';
import { MemoryStore } from '../../src/storage/memory/memory-store.ts';

async function directory(publicUrl: string, strictHosts = false) {
  const store = new MemoryStore();
  await store.createDomain({
    host: 'go.example.com',
    rootRedirect: null,
    notFoundRedirect: null,
    expiredRedirect: null,
    otherNotFoundRedirect: null,
    createdAt: new Date(),
  });
  const ownHosts = new Set<string>();
  const dir = new DomainDirectory({
    store,
    publicUrl,
    strictHosts,
    l2: null,
    ownHosts,
    log: createLogger('silent'),
  });
  await dir.refresh();
  return { dir, ownHosts };
}

test('the default domain is named by its host even when that is an IP address or localhost', async () => {
  for (const [url, host] of [
    ['http://127.0.0.1:8080', '127.0.0.1'],
    ['http://localhost:3000', 'localhost'],
    ['https://Hop.Example.com', 'hop.example.com'],
  ] as const) {
    const { dir } = await directory(url);
    assert.equal(dir.defaultHost, host);
    assert.equal(await dir.storedDomain(host), '');
    assert.equal(await dir.storedDomain(undefined), '');
    assert.equal(await dir.storedDomain('GO.example.com'), 'go.example.com');
    await assert.rejects(dir.storedDomain('nope.example.com'), { code: 'unknown_domain' });
    assert.equal(dir.hostOf(''), host);
  }
});

test('Host picks the domain; unknown hosts are the default unless strict; registered hosts are own hosts', async () => {
  const loose = await directory('http://hop.test');
  assert.equal(loose.dir.forRequest('go.example.com:443')?.host, 'go.example.com');
  assert.equal(loose.dir.forRequest('other.example')?.host, '');
  assert.equal(loose.dir.forRequest(undefined)?.host, '');
  assert.ok(loose.ownHosts.has('go.example.com'));
  const strict = await directory('http://hop.test', true);
  assert.equal(strict.dir.forRequest('other.example'), null);
  assert.equal(strict.dir.forRequest('HOP.test:80')?.host, '');
  assert.equal(strict.dir.forRequest('go.example.com')?.host, 'go.example.com');
  assert.equal(strict.dir.shortUrl('go.example.com', 'abc'), 'http://go.example.com/abc');
  assert.equal(strict.dir.shortUrl('', 'abc'), 'http://hop.test/abc');
});
