// The arithmetic behind the scale scenario and the PostgreSQL playbook stages, without servers: pool
// waits from Prometheus histogram deltas, each server's CPU and throttling over a window, which part
// of a system held it at its max, and the scale-out verdict. A slip here would misreport a target as
// met (or not) rather than crash, so it is tested alone.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type ClusterSample,
  clusterWindow,
  fmtRefused,
  poolWait,
  saturatedParts,
  serverWindowsTable,
} from '../../../bench/lib/bench-cluster.ts';
import { readCpuMs, readMachineBusyMs, readProcessTreeCpuMs } from '../../../bench/lib/child.ts';
import { bucketQuantile, parsePoolCounts, poolCountsDelta } from '../../../bench/lib/hop-metrics.ts';
import { Recorder, type RunResult } from '../../../bench/lib/recorder.ts';
import {
  bestByGoodput,
  cpuParts,
  goodput,
  type Measured,
  otherCores,
  probesRows,
  scaleVerdict,
} from '../../../bench/scenarios/scale.ts';

const BOUNDS = [
  '0.0001',
  '0.0005',
  '0.001',
  '0.005',
  '0.01',
  '0.05',
  '0.1',
  '0.25',
  '0.5',
  '1',
  '2.5',
  '+Inf',
];

/** A /metrics text as Hop writes it: le first, then server. */
function exposition(server: string, cumulative: number[], sum: number, refused: Record<string, number> = {}) {
  const lines = [
    '# HELP hop_db_pool_acquire_seconds Time a query waited for a pooled connection, per database server',
    '# TYPE hop_db_pool_acquire_seconds histogram',
    ...BOUNDS.map(
      (le, i) => `hop_db_pool_acquire_seconds_bucket{le="${le}",server="${server}"} ${cumulative[i]}`,
    ),
    `hop_db_pool_acquire_seconds_sum{server="${server}"} ${sum}`,
    `hop_db_pool_acquire_seconds_count{server="${server}"} ${cumulative.at(-1)}`,
    ...Object.entries(refused).map(
      ([reason, n]) => `hop_db_pool_refused_total{server="${server}",reason="${reason}"} ${n}`,
    ),
    'hop_db_pool_waiting{server="x"} 3',
  ];
  return lines.join('\n');
}

function run(o: {
  ok: number;
  wrong?: number;
  elapsedS?: number;
  connections?: number;
  cpu?: number;
}): RunResult {
  const rec = new Recorder();
  rec.start(0);
  for (let i = 0; i < o.ok; i++) rec.response(10, 2, 1, 302, 'redirect', undefined);
  for (let i = 0; i < (o.wrong ?? 0); i++) rec.response(10, 2, 1, 503, 'redirect', undefined);
  const r = rec.finish({
    label: 'x',
    mode: 'closed-loop',
    connections: o.connections ?? 32,
    targetRate: null,
    scheduled: o.ok + (o.wrong ?? 0),
    unfinished: 0,
    elapsedS: o.elapsedS ?? 1,
    expect: 'redirect',
    lag: null,
    maxBacklog: 0,
  });
  if (o.cpu !== undefined) r.server = { pid: 1, rssKbBefore: null, rssKbAfter: null, cpuPercent: o.cpu };
  return r;
}

describe('pool wait from hop_db_pool_acquire_seconds', () => {
  it('parses every server, whatever the label order, with refusals by reason', () => {
    const text = [
      exposition('shard0-primary', [8, 14, 14, 14, 14, 15, 15, 15, 15, 15, 15, 15], 0.018),
      'hop_db_pool_acquire_seconds_bucket{server="shard0-replica1",le="+Inf"} 3',
      'hop_db_pool_refused_total{reason="timeout",server="shard0-replica1"} 2',
    ].join('\n');
    const pools = parsePoolCounts(text);
    assert.deepEqual([...pools.keys()], ['shard0-primary', 'shard0-replica1']);
    const p = pools.get('shard0-primary')!;
    assert.equal(p.count, 15);
    assert.equal(p.sum, 0.018);
    assert.equal(p.buckets.length, 12);
    assert.deepEqual(p.buckets.at(-1), { le: Number.POSITIVE_INFINITY, count: 15 });
    assert.deepEqual(pools.get('shard0-replica1')!.refused, { timeout: 2 });
    assert.equal(parsePoolCounts('').size, 0);
  });

  it('subtracts two readings, counting a server first seen later from zero', () => {
    const before = parsePoolCounts(
      exposition('a', [10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10], 0.0005, { timeout: 1 }),
    );
    const after = parsePoolCounts(
      [
        exposition('a', [10, 10, 10, 10, 10, 20, 30, 30, 30, 30, 30, 30], 2.5, { timeout: 4, queue_full: 2 }),
        exposition('b', [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], 0.00005),
      ].join('\n'),
    );
    const d = poolCountsDelta(before, after);
    const a = d.get('a')!;
    assert.equal(a.count, 20);
    assert.ok(Math.abs(a.sum - 2.4995) < 1e-9);
    assert.deepEqual(
      a.buckets.map((b) => b.count),
      [0, 0, 0, 0, 0, 10, 20, 20, 20, 20, 20, 20],
    );
    assert.deepEqual(a.refused, { timeout: 3, queue_full: 2 });
    assert.equal(d.get('b')!.count, 1);
  });

  it('estimates a quantile the way histogram_quantile does', () => {
    const b = (counts: number[]) =>
      counts.map((count, i) => ({
        le: i === counts.length - 1 ? Number.POSITIVE_INFINITY : Number(BOUNDS[i]),
        count,
      }));
    // 100 waits: 50 under 0.1 ms, 40 more under 0.5 ms, 10 between 10 and 50 ms.
    const h = b([50, 90, 90, 90, 90, 100, 100, 100, 100, 100, 100, 100]);
    assert.ok(
      Math.abs(bucketQuantile(h, 0.5)!.seconds - 0.0001) < 1e-12,
      'p50 at the top of the first bucket',
    );
    // Rank 99 is the 9th of 10 in (0.01, 0.05]: 0.01 + 0.04 × 9/10.
    const p99 = bucketQuantile(h, 0.99)!;
    assert.equal(p99.overflow, false);
    assert.ok(Math.abs(p99.seconds - 0.046) < 1e-12);
    // Within the first bucket the lower bound is 0.
    assert.ok(Math.abs(bucketQuantile(h, 0.25)!.seconds - 0.00005) < 1e-12);
    // Past the last finite bound only "more than 2.5 s" is known.
    const slow = b([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 90, 100]);
    assert.deepEqual(bucketQuantile(slow, 0.99), { seconds: 2.5, overflow: true });
    assert.equal(bucketQuantile(b([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), 0.99), null);
    assert.equal(bucketQuantile([], 0.99), null);
  });

  it('formats mean, p99 and refusals for the tables', () => {
    const [p] = parsePoolCounts(
      exposition('a', [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 98, 100], 150, { timeout: 3, queue_full: 0 }),
    ).values();
    assert.deepEqual(poolWait(p!), { count: 100, mean: '1.50 s', p99: '> 2.50 s' });
    assert.equal(fmtRefused(p!), '3 (timeout 3)');
    assert.deepEqual(poolWait(null), { count: 0, mean: 'n/a', p99: 'n/a' });
    assert.deepEqual(poolWait({ buckets: [], sum: 0, count: 0, refused: {} }), {
      count: 0,
      mean: '-',
      p99: '-',
    });
    assert.equal(fmtRefused({ buckets: [], sum: 0, count: 0, refused: {} }), '0');
  });
});

describe('a cluster over a window', () => {
  const cluster = {
    cpuQuota: 0.25,
    servers: [
      { name: 'shard0-primary', role: 'primary' as const, shard: 0, cgroup: '/sys/fs/cgroup/cpu/g0' },
      { name: 'shard0-replica1', role: 'replica' as const, shard: 0, cgroup: null },
    ],
  } as unknown as Parameters<typeof clusterWindow>[0];

  it("gives each server's cores, throttled share and pool wait between two samples", () => {
    const before: ClusterSample = {
      at: 1000,
      servers: [
        {
          name: 'shard0-primary',
          cpuMs: 1000,
          throttling: { periods: 100, throttledPeriods: 10, throttledMs: 50 },
        },
        { name: 'shard0-replica1', cpuMs: 500, throttling: null },
      ],
      pool: parsePoolCounts(exposition('shard0-primary', [5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5], 0.0001)),
      machineBusyMs: 10_000,
    };
    const after: ClusterSample = {
      at: 3000,
      servers: [
        {
          name: 'shard0-primary',
          cpuMs: 1500,
          throttling: { periods: 120, throttledPeriods: 25, throttledMs: 900 },
        },
        { name: 'shard0-replica1', cpuMs: 700, throttling: null },
      ],
      pool: parsePoolCounts(
        exposition('shard0-primary', [5, 5, 5, 5, 5, 15, 15, 15, 15, 15, 15, 15], 0.2001),
      ),
      machineBusyMs: 13_000,
    };
    const w = clusterWindow(cluster, before, after);
    assert.equal(w.elapsedS, 2);
    assert.equal(w.machineBusyCores, 1.5);
    const [primary, replica] = w.servers as [(typeof w.servers)[0], (typeof w.servers)[0]];
    assert.equal(primary.cpuCores, 0.25);
    assert.equal(primary.quotaCores, 0.25);
    assert.equal(primary.throttledShare, 0.75);
    assert.equal(primary.throttledMs, 850);
    assert.equal(primary.pool!.count, 10);
    assert.equal(replica.cpuCores, 0.1);
    assert.equal(replica.quotaCores, null, 'a server without a cgroup has no budget');
    assert.equal(replica.throttledShare, null);
    assert.equal(replica.pool!.count, 0, 'no pool line yet: no acquisitions');

    const t = serverWindowsTable('servers', [{ label: 'probe', window: w }]);
    assert.equal(t.rows.length, 2);
    const row = t.rows[0]!;
    assert.equal(row[t.head.indexOf('CPU cores')], '0.25 of 0.25');
    assert.equal(row[t.head.indexOf('throttled')], '75%');
    assert.equal(row[t.head.indexOf('acquires')], '10');
    assert.equal(row[t.head.indexOf('wait mean ms')], '20.0');
  });

  it('has no pool figures when /metrics did not answer', () => {
    const s = (at: number): ClusterSample => ({ at, servers: [], pool: null, machineBusyMs: null });
    const w = clusterWindow(cluster, s(0), s(1000));
    assert.equal(w.servers[0]!.pool, null);
    assert.equal(w.servers[0]!.cpuCores, null);
    assert.equal(w.machineBusyCores, null);
  });
});

describe('scale verdicts', () => {
  it('compares the scaled max with 1.8 times the base', () => {
    assert.deepEqual(scaleVerdict(1000, 1800), { ratio: 1.8, met: true });
    assert.equal(scaleVerdict(1000, 1790)!.met, false);
    assert.equal(scaleVerdict(0, 1000), null);
    assert.equal(scaleVerdict(null, 1000), null);
  });

  it('counts correct answers only: a 503 is not capacity', () => {
    const refused = run({ ok: 600, wrong: 400, elapsedS: 2 });
    assert.equal(goodput(refused), 300);
    const clean = run({ ok: 700, elapsedS: 2 });
    assert.equal(bestByGoodput([{ run: refused }, { run: clean }])!.run, clean);
    assert.equal(bestByGoodput([]), null);
  });

  it('names the parts at their CPU budget, Hop at most one core', () => {
    const r = run({ ok: 100, cpu: 95 });
    r.generator.cpuPercent = 20;
    const window = {
      elapsedS: 5,
      machineBusyCores: 1.9,
      servers: [
        {
          name: 'shard0-primary',
          role: 'primary' as const,
          shard: 0,
          cpuCores: 0.099,
          quotaCores: 0.1,
          throttledShare: 0.9,
          throttledMs: 1,
          pool: null,
        },
        {
          name: 'shard1-primary',
          role: 'primary' as const,
          shard: 1,
          cpuCores: 0.05,
          quotaCores: 0.1,
          throttledShare: 0,
          throttledMs: 0,
          pool: null,
        },
      ],
    };
    const parts = cpuParts(r, window, 2, 2);
    assert.deepEqual(
      parts.map((p) => [p.name, p.budgetCores]),
      [
        ['shard0-primary', 0.1],
        ['shard1-primary', 0.1],
        ['Hop', 1],
        ['generator', 1],
        ['machine', 2],
      ],
    );
    assert.deepEqual(
      saturatedParts(parts).map((p) => p.name),
      ['shard0-primary', 'Hop', 'machine'],
    );
    assert.ok(Math.abs(otherCores(parts)! - (1.9 - 0.099 - 0.05 - 0.95 - 0.2)) < 1e-9);
    assert.deepEqual(saturatedParts([{ name: 'x', usedCores: 5, budgetCores: null }]), []);
  });

  it('sets the probes of both systems side by side per concurrency', () => {
    const m = (name: string, probes: [number, number][]): Measured =>
      ({
        name,
        system: null,
        open: null,
        probes: probes.map(([c, ok]) => ({ run: run({ ok, connections: c }), window: null })),
      }) as unknown as Measured;
    const rows = probesRows(
      'creates',
      m('1 shard', [
        [32, 400],
        [128, 500],
        [32, 450],
      ]),
      m('2 shards', [
        [32, 600],
        [128, 1000],
      ]),
    );
    assert.deepEqual(rows, [
      ['creates', '32', '400 / 450', '600', '1.33x'],
      ['creates', '128', '500', '1,000', '2.00x'],
    ]);
  });
});

describe('CPU from /proc', () => {
  it("counts a process's children and the whole machine", () => {
    const own = readCpuMs(process.pid);
    const tree = readProcessTreeCpuMs(process.pid);
    assert.ok(own !== null && tree !== null);
    assert.ok(tree >= own);
    assert.equal(readProcessTreeCpuMs(2 ** 22 + 1), null, 'no such process');
    const busy = readMachineBusyMs();
    assert.ok(busy !== null && busy > 0);
  });
});
