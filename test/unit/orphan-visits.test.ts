import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_PATHS, OrphanCounter } from '../../src/analytics/orphan-visits.ts';
import { generateCode } from '../../src/domain/codes.ts';
import { createLogger } from '../../src/logger.ts';
import { MemoryStore } from '../../src/storage/memory/memory-store.ts';
import type { OrphanBatch } from '../../src/storage/ports.ts';

const BROWSER = 'Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0';

test('a scan of 10,000 random codes is counted whole in a bounded number of rows', async () => {
  const store = new MemoryStore();
  const written: OrphanBatch[] = [];
  const spy = {
    recordOrphans: (b: OrphanBatch) => {
      written.push(b);
      return store.recordOrphans(b);
    },
    orphanStats: store.orphanStats.bind(store),
  };
  const counter = new OrphanCounter(spy, createLogger('silent'));
  const at = Date.UTC(2029, 0, 1, 12, 30);
  for (let i = 0; i < 3; i++) counter.count('', 'unknown_code', '/hot-path', BROWSER, at);
  for (let i = 0; i < 10_000; i++) counter.count('', 'unknown_code', `/${generateCode(7)}`, BROWSER, at);
  await counter.flush();
  assert.equal(written.length, 1);
  const rows = written[0]!.rows;
  assert.ok(rows.length <= MAX_PATHS + 1, `${rows.length} rows`);
  assert.equal(
    rows.reduce((n, r) => n + r.visits, 0),
    10_003,
  );
  const hour = at - (at % 3_600_000);
  const s = await store.orphanStats({
    from: hour,
    to: hour + 3_600_000,
    interval: 'hour',
    domain: '',
    includeBots: false,
    top: 5,
  });
  assert.deepEqual(s.series, [{ t: hour, clicks: 10_003 }]);
  assert.deepEqual(s.paths[0], { key: '/hot-path', clicks: 3 });
  assert.equal(s.paths.length, 5);
});

test('bots apart; a failed write is kept and written once when the store is back', async () => {
  const store = new MemoryStore();
  let down = true;
  const flaky = {
    recordOrphans: (b: OrphanBatch) => (down ? Promise.reject(new Error('down')) : store.recordOrphans(b)),
    orphanStats: store.orphanStats.bind(store),
  };
  const counter = new OrphanCounter(flaky, createLogger('silent'));
  const at = Date.UTC(2029, 0, 1, 12);
  counter.count('d.example', 'root', '/', BROWSER, at);
  counter.count('d.example', 'root', '/', 'Googlebot/2.1 (+http://www.google.com/bot.html)', at);
  await counter.flush();
  counter.count('d.example', 'other', '/x'.repeat(500), BROWSER, at);
  down = false;
  await counter.flush();
  await counter.flush();
  const q = { from: at, to: at + 3_600_000, interval: 'hour' as const, domain: 'd.example', top: 10 };
  const people = await store.orphanStats({ ...q, includeBots: false });
  const all = await store.orphanStats({ ...q, includeBots: true });
  assert.deepEqual(people.series, [{ t: at, clicks: 2 }]);
  assert.deepEqual(all.series, [{ t: at, clicks: 3 }]);
  assert.ok(people.paths.every((p) => p.key.length <= 200));
});

test('off when click recording is off', async () => {
  const store = new MemoryStore();
  const counter = new OrphanCounter(store, createLogger('silent'), false);
  counter.count('', 'root', '/', BROWSER);
  await counter.flush();
  const s = await store.orphanStats({
    from: 0,
    to: Date.now() + 3_600_000,
    interval: 'day',
    domain: null,
    includeBots: true,
    top: 10,
  });
  assert.deepEqual(s.series, []);
});
