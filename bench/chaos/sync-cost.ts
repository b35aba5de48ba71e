// What synchronous replication costs creates: the same cluster, Patroni's synchronous_mode turned on
// and off through its REST API (PATCH /config), alternating so drift on a noisy machine hits both
// sides alike; closed loop at a fixed concurrency, so each side's throughput and latency show.
import { withClient } from '../../scripts/cluster/pg-cluster.ts';
import { LatencyHistogram } from '../lib/histogram.ts';
import { CHAOS_KEY } from './load.ts';
import type { ChaosSystem } from './system.ts';

export interface SyncSide {
  createsPerS: number;
  p50Ms: number;
  p99Ms: number;
}

export interface SyncCost {
  on: SyncSide;
  off: SyncSide;
  concurrency: number;
  seconds: number;
}

const CONCURRENCY = 16;

export async function measureSyncCost(
  sys: ChaosSystem,
  msPerSide: number,
  log: (line: string) => void,
): Promise<SyncCost> {
  const sides = {
    on: { n: 0, ms: 0, h: new LatencyHistogram() },
    off: { n: 0, ms: 0, h: new LatencyHistogram() },
  };
  const order: ('on' | 'off')[] = ['on', 'off', 'off', 'on'];
  try {
    for (const side of order) {
      await setSync(sys, side === 'on');
      log(`sync cost: synchronous replication ${side}`);
      const r = await createsFor(sys, msPerSide / 2, sides[side].h);
      sides[side].n += r.n;
      sides[side].ms += r.ms;
    }
  } finally {
    await setSync(sys, sys.ha.sync !== 'off');
  }
  const view = (s: { n: number; ms: number; h: LatencyHistogram }): SyncSide => ({
    createsPerS: s.n / (s.ms / 1000),
    p50Ms: s.h.percentileMs(50),
    p99Ms: s.h.percentileMs(99),
  });
  return { on: view(sides.on), off: view(sides.off), concurrency: CONCURRENCY, seconds: msPerSide / 1000 };
}

/** Patroni's synchronous_mode for shard 0, and waits until its primary runs with it. */
async function setSync(sys: ChaosSystem, on: boolean): Promise<void> {
  const member = sys.ha.members.find((m) => m.shard === 0)!;
  const res = await fetch(`http://127.0.0.1:${member.apiPort}/config`, {
    method: 'PATCH',
    body: JSON.stringify({ synchronous_mode: on }),
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new Error(`Patroni refused synchronous_mode=${on}: ${res.status} ${await res.text()}`);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const names = await withClient(sys.ha.balancer.primaryPorts[0]!, 'postgres', async (c) => {
      const { rows } = await c.query<{ s: string }>(
        "SELECT current_setting('synchronous_standby_names') AS s",
      );
      return rows[0]?.s ?? '';
    }).catch(() => null);
    if (names !== null && (names !== '') === on) return;
    if (Date.now() > deadline)
      throw new Error(`synchronous_standby_names did not follow synchronous_mode=${on}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function createsFor(
  sys: ChaosSystem,
  ms: number,
  h: LatencyHistogram,
): Promise<{ n: number; ms: number }> {
  const base = sys.fleet.balancer.url;
  const began = performance.now();
  const end = began + ms;
  let n = 0;
  let i = 0;
  const worker = async () => {
    while (performance.now() < end) {
      const t = performance.now();
      const res = await fetch(`${base}/api/v1/links`, {
        method: 'POST',
        headers: { authorization: `Bearer ${CHAOS_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ url: `https://example.com/sync-cost/${i++}` }),
        signal: AbortSignal.timeout(10_000),
      });
      await res.arrayBuffer();
      if (res.status === 201) {
        n++;
        h.recordMillis(performance.now() - t);
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return { n, ms: performance.now() - began };
}
