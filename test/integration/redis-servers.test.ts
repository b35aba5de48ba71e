// Throwaway Redis (scripts/cluster/redis-servers.ts): one server and a three-master Redis Cluster answer
// real clients, a killed cluster node comes back on its port, and stopping leaves no process or file.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { Cluster, Redis } from 'ioredis';
import {
  killRedisServer,
  type RedisServers,
  redisPids,
  redisUnavailable,
  startRedis,
  startRedisServer,
  stopRedis,
} from '../../scripts/cluster/redis-servers.ts';
import { cpuQuotaUnavailable } from '../../scripts/lib/cpu-cgroup.ts';

const skip = redisUnavailable() ?? false;
// Where cgroups are writable the quota path is exercised too; it costs nothing at one core per server.
const cpuQuota = (await cpuQuotaUnavailable()) === null ? 1 : null;

/** Not a zombie, not gone. */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}

async function assertStopsClean(r: RedisServers, pids: number[]): Promise<void> {
  await stopRedis(r);
  assert.deepEqual(pids.filter(running), [], 'every redis-server pid it started has exited');
  assert.deepEqual(redisPids(r), []);
  assert.equal(existsSync(r.dir), false, `${r.dir} is removed`);
}

describe('throwaway Redis servers', { skip, timeout: 60_000 }, () => {
  test('one server answers on its redis:// URL, keeps nothing on disk, and stops without a trace', async () => {
    const r = await startRedis({ mode: 'single', cpuQuota });
    const pids = r.servers.map((s) => s.pid!);
    try {
      assert.match(r.url, /^redis:\/\/127\.0\.0\.1:\d+$/);
      assert.deepEqual(redisPids(r), pids);
      const client = new Redis(r.url, { maxRetriesPerRequest: 1 });
      try {
        await client.set('greeting', 'hop');
        assert.equal(await client.get('greeting'), 'hop');
        assert.deepEqual(await client.config('GET', 'save'), ['save', '']);
        assert.deepEqual(await client.config('GET', 'appendonly'), ['appendonly', 'no']);
      } finally {
        client.disconnect();
      }
    } finally {
      await assertStopsClean(r, pids);
    }
  });

  test('a three-master cluster serves every slot; a killed master comes back on its port', async (t) => {
    const began = performance.now();
    const r = await startRedis({ mode: 'cluster' });
    const startSeconds = (performance.now() - began) / 1000;
    const pids = r.servers.map((s) => s.pid!);
    const client = new Cluster(
      r.servers.map((s) => ({ host: '127.0.0.1', port: s.port })),
      { redisOptions: { maxRetriesPerRequest: 1 } },
    );
    client.on('error', () => {
      // A killed node: the commands below say what matters.
    });
    try {
      assert.match(r.url, /^redis-cluster:\/\/127\.0\.0\.1:\d+,127\.0\.0\.1:\d+,127\.0\.0\.1:\d+$/);
      assert.equal(r.servers.length, 3);
      const keys = Array.from({ length: 30 }, (_, i) => `link:${i}`);
      for (const k of keys) await client.set(k, k.toUpperCase());
      for (const k of keys) assert.equal(await client.get(k), k.toUpperCase());
      const masters = client.nodes('master');
      assert.equal(masters.length, 3);
      const sizes = await Promise.all(masters.map((m) => m.dbsize()));
      assert.ok(
        sizes.every((n) => n > 0),
        `keys spread over all masters: ${sizes.join(', ')}`,
      );

      const victim = r.servers[1]!;
      const { port, pid } = victim;
      await killRedisServer(r, victim.name);
      assert.equal(victim.pid, null);
      assert.equal(running(pid!), false);
      const restartBegan = performance.now();
      await startRedisServer(r, victim.name);
      const restartSeconds = (performance.now() - restartBegan) / 1000;
      assert.equal(victim.port, port, 'same port');
      assert.notEqual(victim.pid, null);
      pids.push(victim.pid!);
      // Nothing was persisted, but the node kept its slots: every key can be written again.
      const deadline = Date.now() + 10_000;
      for (const k of keys) {
        for (;;) {
          try {
            await client.set(k, 'again');
            break;
          } catch (err) {
            if (Date.now() > deadline) throw err;
            await new Promise((res) => setTimeout(res, 50));
          }
        }
      }
      t.diagnostic(`cluster start ${startSeconds.toFixed(2)} s, node restart ${restartSeconds.toFixed(2)} s`);
    } finally {
      client.disconnect();
      await assertStopsClean(r, pids);
    }
  });
});
