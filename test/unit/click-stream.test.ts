// The click stream's pure parts (entry format, stream ids, backoff) and the producer sink against
// a scripted Redis client: appends per partition, keeps batch ids across failed appends, holds
// back while a partition's backlog is full, and drops (counted) beyond its buffer.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ClickEvent } from '../../src/domain/clicks.ts';
import {
  compareStreamIds,
  entryFields,
  MalformedEntry,
  nextStreamId,
  parseEntry,
  partitionKey,
  partitionOf,
} from '../../src/events/click-stream.ts';
import { StreamClickSink } from '../../src/events/stream-click-sink.ts';
import { uuid7 } from '../../src/events/uuid7.ts';
import { createLogger } from '../../src/logger.ts';
import { noopMetrics } from '../../src/metrics/metrics.ts';
import type { RedisClient } from '../../src/redis/connect-redis.ts';
import { fullJitterMs } from '../../src/resilience/backoff.ts';

const click = (code: string, at = 1_700_000_000_000): ClickEvent => ({
  id: uuid7(at),
  code,
  at,
  referrerHost: 'news.example',
  country: 'DE',
  browser: 'Firefox',
  os: 'Linux',
  device: 'desktop',
  bot: false,
  visitor: '00ff00ff00ff00ff',
});

test('an entry carries its batch id and events, and parses back to the same', () => {
  const events = [click('abc'), click('xyz', 1_700_000_360_000)];
  const id = uuid7();
  const parsed = parseEntry('1-0', entryFields(id, events));
  assert.equal(parsed.batchId, id);
  assert.deepEqual(parsed.events, events);
});

test('malformed entries are refused with the reason, not half-read', () => {
  const id = uuid7();
  assert.throws(() => parseEntry('1-0', ['b', 'nope', 'e', '{}']), MalformedEntry);
  assert.throws(() => parseEntry('1-0', ['b', id, 'e', '{']), /not JSON/);
  assert.throws(() => parseEntry('1-0', ['b', id]), MalformedEntry);
  const bad = entryFields(id, [{ ...click('abc'), code: 'no spaces allowed' }]);
  assert.throws(() => parseEntry('1-0', bad), /not a valid click/);
  const noTime = entryFields(id, [{ ...click('abc'), at: Number.NaN }]);
  assert.throws(() => parseEntry('1-0', noTime), /not a valid click/);
});

test('a code always lands in the same partition, and codes spread over all of them', () => {
  const seen = new Set<number>();
  for (let i = 0; i < 200; i++) {
    const p = partitionOf(`c${i}`, 4);
    assert.equal(p, partitionOf(`c${i}`, 4));
    seen.add(p);
  }
  assert.deepEqual([...seen].sort(), [0, 1, 2, 3]);
  assert.equal(partitionKey(3), 'hop:clicks:{3}');
});

test('stream ids compare by milliseconds, then sequence, beyond 2^53', () => {
  assert.equal(compareStreamIds('1-2', '1-10'), -1);
  assert.equal(compareStreamIds('2-0', '1-99'), 1);
  assert.equal(compareStreamIds('5-5', '5-5'), 0);
  assert.equal(nextStreamId('1700000000000-9007199254740993'), '1700000000000-9007199254740994');
});

test('full jitter stays within [0, min(cap, base·2^n))', () => {
  assert.equal(fullJitterMs(3, 100, 5_000, () => 0.999999) < 800, true);
  assert.equal(
    fullJitterMs(10, 100, 5_000, () => 0.5),
    2_500,
  );
  assert.equal(
    fullJitterMs(0, 100, 5_000, () => 0),
    0,
  );
});

/** A Redis client that records XADDs and fails or reports lengths as told. */
function scriptedRedis() {
  const appended: { key: string; fields: string[] }[] = [];
  const state = { failing: false, length: 0 };
  const client = {
    status: 'ready',
    async xadd(key: string, _id: string, ...fields: string[]) {
      if (state.failing) throw new Error('Connection is closed.');
      appended.push({ key, fields });
      return `${appended.length}-0`;
    },
    async xlen() {
      return state.length;
    },
  } as unknown as RedisClient;
  return { client, appended, state };
}

const quiet = createLogger('silent');

function sink(client: RedisClient, maxBuffered = 1_000, maxStreamEntries = 100) {
  return new StreamClickSink(
    client,
    { partitions: 4, flushMs: 60_000, batchSize: 1_000_000, maxBuffered, maxStreamEntries },
    noopMetrics,
    quiet,
  );
}

test('the sink appends one entry per partition per flush, each with its own batch id', async () => {
  const r = scriptedRedis();
  const s = sink(r.client);
  const codes = Array.from({ length: 50 }, (_, i) => `code${i}`);
  for (const c of codes) s.record(click(c));
  await s.flush();
  const keys = r.appended.map((a) => a.key);
  assert.equal(new Set(keys).size, keys.length);
  const parsed = r.appended.map((a, i) => ({ key: a.key, ...parseEntry(`${i}-0`, a.fields) }));
  assert.equal(
    parsed.reduce((n, p) => n + p.events.length, 0),
    50,
  );
  for (const p of parsed) for (const e of p.events) assert.equal(p.key, partitionKey(partitionOf(e.code, 4)));
  assert.equal(new Set(parsed.map((p) => p.batchId)).size, parsed.length);
  assert.equal(s.buffered, 0);
  await s.close();
});

test('a failed append is retried with the same batch id, so the ledger can count it once', async () => {
  const r = scriptedRedis();
  const s = sink(r.client);
  s.record(click('abc'));
  r.state.failing = true;
  await s.flush();
  assert.equal(r.appended.length, 0);
  assert.equal(s.buffered, 1);
  r.state.failing = false;
  s.record(click('abc'));
  await s.flush();
  const ids = r.appended.map((a, i) => parseEntry(`${i}-0`, a.fields));
  assert.equal(
    ids.reduce((n, p) => n + p.events.length, 0),
    2,
  );
  assert.equal(s.buffered, 0);
  await s.close();
});

test('while a backlog is over its bound, clicks wait; beyond the buffer they are dropped and counted', async () => {
  const r = scriptedRedis();
  let dropped = 0;
  const metrics = {
    ...noopMetrics,
    clicksDropped(n: number) {
      dropped += n;
    },
  };
  const s = new StreamClickSink(
    r.client,
    { partitions: 1, flushMs: 60_000, batchSize: 1_000_000, maxBuffered: 3, maxStreamEntries: 10 },
    metrics,
    quiet,
  );
  r.state.length = 10;
  for (let i = 0; i < 5; i++) s.record(click('abc'));
  await s.flush();
  assert.equal(r.appended.length, 0);
  assert.equal(s.buffered, 3);
  assert.equal(dropped, 2);
  await s.close(); // the backlog is still full: what is left is dropped, and counted, at exit
  assert.equal(dropped, 5);
});
