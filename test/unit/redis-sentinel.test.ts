// Redis behind Sentinel, the parts that need no server: HOP_REDIS_URL's redis-sentinel:// form, the
// replica wait's default, and the click sink keeping appends no replica has confirmed (appended again,
// same batch ids, when their connection closes first; bounded by half the buffer).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import type { ClickEvent } from '../../src/domain/clicks.ts';
import { parseEntry } from '../../src/events/click-stream.ts';
import { StreamClickSink } from '../../src/events/stream-click-sink.ts';
import { uuid7 } from '../../src/events/uuid7.ts';
import { createLogger } from '../../src/logger.ts';
import { noopMetrics } from '../../src/metrics/metrics.ts';
import type { RedisClient } from '../../src/redis/connect-redis.ts';
import { ReplicaAck } from '../../src/redis/replica-ack.ts';

describe('HOP_REDIS_URL with Sentinels', () => {
  test('redis-sentinel://h:p,h:p/name names the Sentinels and the primary they watch', () => {
    const c = loadConfig({}, { HOP_REDIS_URL: 'redis-sentinel://10.0.0.1:26379,sentinel-b:26380/hop' });
    assert.deepEqual(c.redis, {
      kind: 'sentinel',
      sentinels: [
        { host: '10.0.0.1', port: 26379 },
        { host: 'sentinel-b', port: 26380 },
      ],
      name: 'hop',
      password: null,
    });
    const withPassword = loadConfig({}, { HOP_REDIS_URL: 'redis-sentinel://s%40cret@h:1/main' }).redis;
    assert.deepEqual(withPassword, {
      kind: 'sentinel',
      sentinels: [{ host: 'h', port: 1 }],
      name: 'main',
      password: 's@cret',
    });
    const colon = loadConfig({}, { HOP_REDIS_URL: 'redis-sentinel://:pw@h:1/main' }).redis;
    assert.equal(colon?.kind === 'sentinel' ? colon.password : null, 'pw', 'as in redis-cluster://:pw@…');
  });

  test('a malformed one stops the boot with a message naming HOP_REDIS_URL', () => {
    for (const bad of [
      'redis-sentinel://h:26379',
      'redis-sentinel://h:26379,h2/hop',
      'redis-sentinel://h:99999/hop',
      'redis-sentinel:///hop',
    ]) {
      assert.throws(
        () => loadConfig({}, { HOP_REDIS_URL: bad }),
        (err: Error) => err.message.includes('HOP_REDIS_URL') && /Sentinel|redis-sentinel/.test(err.message),
        bad,
      );
    }
  });

  test('the click stream waits for a replica by default under Sentinel only, and can be told otherwise', () => {
    const sentinel = 'redis-sentinel://h:1/hop';
    assert.equal(loadConfig({}, { HOP_REDIS_URL: sentinel }).clickStreamReplicaWaitMs, 500);
    assert.equal(loadConfig({}, { HOP_REDIS_URL: 'redis://h:1' }).clickStreamReplicaWaitMs, 0);
    assert.equal(loadConfig({}, {}).clickStreamReplicaWaitMs, 0);
    const off = { HOP_REDIS_URL: sentinel, HOP_CLICK_STREAM_REPLICA_WAIT_MS: '0' };
    assert.equal(loadConfig({}, off).clickStreamReplicaWaitMs, 0);
    const on = { HOP_REDIS_URL: 'redis://h:1', HOP_CLICK_STREAM_REPLICA_WAIT_MS: '250' };
    assert.equal(loadConfig({}, on).clickStreamReplicaWaitMs, 250);
    assert.throws(
      () => loadConfig({}, { HOP_CLICK_STREAM_REPLICA_WAIT_MS: 'soon' }),
      /HOP_CLICK_STREAM_REPLICA_WAIT_MS="soon" must be auto or a whole number/,
    );
  });
});

const click = (code: string): ClickEvent => ({
  id: uuid7(),
  code,
  at: 1_700_000_000_000,
  referrerHost: null,
  country: null,
  browser: null,
  os: null,
  device: null,
  bot: false,
  visitor: '00ff00ff00ff00ff',
});

/** A primary with `replicas` attached that confirm (WAIT answers) as told, and a connection that can close. */
function primaryWithReplicas(replicas: number) {
  const appended: string[][] = [];
  const state = { replicas, confirming: true, waitFails: false, waits: 0 };
  const closeHandlers: (() => void)[] = [];
  const client = {
    status: 'ready',
    on(event: string, fn: () => void) {
      if (event === 'close') closeHandlers.push(fn);
    },
    async xadd(_key: string, _id: string, ...fields: string[]) {
      appended.push(fields);
      return `${appended.length}-0`;
    },
    async xlen() {
      return 0;
    },
    async info() {
      return `# Replication\r\nrole:master\r\nconnected_slaves:${state.replicas}\r\n`;
    },
    async wait() {
      state.waits++;
      if (state.waitFails) throw new Error('Connection is closed.');
      return state.confirming ? state.replicas : 0;
    },
  } as unknown as RedisClient;
  const close = () => {
    for (const fn of closeHandlers) fn();
  };
  const batchIds = () => appended.map((f, i) => parseEntry(`${i}-0`, f).batchId);
  return { client, appended, state, close, batchIds };
}

const quiet = createLogger('silent');

function sink(client: RedisClient, replicaWaitMs: number, maxBuffered = 1_000) {
  return new StreamClickSink(
    client,
    {
      partitions: 1,
      flushMs: 60_000,
      batchSize: 1_000_000,
      maxBuffered,
      maxStreamEntries: 100,
      replicaWaitMs,
    },
    noopMetrics,
    quiet,
  );
}

describe('appends a replica must hold', () => {
  test('kept until a replica confirms them; appended again, same batch id, if their connection closes first', async () => {
    const r = primaryWithReplicas(1);
    const s = sink(r.client, 500);
    s.record(click('abc'));
    r.state.confirming = false;
    await s.flush();
    assert.equal(r.appended.length, 1);
    assert.equal(s.buffered, 1, 'kept: no replica has it yet');
    r.close(); // the primary died (a failover): the connection that appended it is gone
    r.state.confirming = true;
    await s.flush();
    assert.equal(s.buffered, 0);
    const ids = r.batchIds();
    assert.equal(ids.length, 2, 'appended again, to the primary there is now');
    assert.equal(ids[0], ids[1], 'with its batch id: the ledger counts it once');
    await s.close();
  });

  test('confirmed later on the same connection: done, appended once', async () => {
    const r = primaryWithReplicas(1);
    const s = sink(r.client, 500);
    s.record(click('abc'));
    r.state.confirming = false;
    await s.flush();
    r.state.confirming = true;
    await s.flush();
    assert.equal(s.buffered, 0);
    assert.equal(r.appended.length, 1);
    await s.close();
  });

  test('a WAIT cut off with its primary counts as not appended: the batch goes out again', async () => {
    const r = primaryWithReplicas(1);
    const s = sink(r.client, 500);
    s.record(click('abc'));
    r.state.waitFails = true;
    await s.flush();
    assert.equal(s.buffered, 1);
    r.state.waitFails = false;
    await s.flush();
    assert.equal(s.buffered, 0);
    const ids = r.batchIds();
    assert.equal(ids.length, 2);
    assert.equal(ids[0], ids[1]);
    await s.close();
  });

  test('with no replica attached nothing is waited on; unconfirmed clicks take at most half the buffer', async () => {
    const alone = primaryWithReplicas(0);
    const s = sink(alone.client, 500, 10);
    for (let i = 0; i < 8; i++) s.record(click('abc'));
    await s.flush();
    assert.equal(alone.state.waits, 0, 'no WAIT without a replica');
    assert.equal(s.buffered, 0, 'one batch of 8 over the bound of 5: let go');
    s.record(click('abc'));
    await s.flush();
    assert.equal(s.buffered, 1, 'kept: within the bound');
    await s.close();
  });

  test('the wait off never asks a replica', async () => {
    const r = primaryWithReplicas(1);
    r.state.confirming = false;
    const s = sink(r.client, 0);
    s.record(click('abc'));
    await s.flush();
    assert.equal(s.buffered, 0);
    assert.equal(r.state.waits, 0);
    assert.equal(await new ReplicaAck(r.client, 0).held(), 'held');
    await s.close();
  });
});
