// The playbook's bookkeeping, without load: which stages run and in what order, how a stage that could
// not keep up is told apart from one that answered wrongly, and the parsers behind the CPU quota and
// the cache check. A mistake here would misreport a stage rather than crash, so it is tested alone.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cacheCountsDelta, parseCacheCounts } from '../../../bench/lib/hop-metrics.ts';
import { Recorder, type RunResult } from '../../../bench/lib/recorder.ts';
import { executionOrder, PLAYBOOK_STAGES, parseStageList } from '../../../bench/playbook.ts';
import { errorRate, fmtShare, resultsTable, type StageOutcome } from '../../../bench/scenarios/playbook.ts';
import { cfsQuotaUs, parseCpuStat } from '../../../scripts/lib/cpu-cgroup.ts';

function openRun(o: {
  scheduled: number;
  ok: number;
  wrong?: number;
  errors?: number;
  unfinished?: number;
}): RunResult {
  const rec = new Recorder();
  rec.start(0);
  for (let i = 0; i < o.ok; i++) rec.response(10, 2, 1, 302, 'redirect', undefined);
  for (let i = 0; i < (o.wrong ?? 0); i++) rec.response(10, 2, 1, 404, 'redirect', undefined);
  for (let i = 0; i < (o.errors ?? 0); i++) rec.error(10, 'reset');
  // The open-loop generator counts what is left at its deadline as timeouts, and says how many.
  for (let i = 0; i < (o.unfinished ?? 0); i++) rec.error(10, 'timeout');
  return rec.finish({
    label: 'hop',
    mode: 'open-loop',
    connections: 1,
    targetRate: 100,
    scheduled: o.scheduled,
    unfinished: o.unfinished ?? 0,
    elapsedS: 1,
    expect: 'redirect',
    lag: null,
    maxBacklog: 0,
  });
}

describe('playbook stages', () => {
  it('gives every stage either a runner or the reason it has none', () => {
    assert.deepEqual(
      PLAYBOOK_STAGES.map((s) => s.stage),
      [1, 2, 3, 4, 5, 6],
    );
    for (const s of PLAYBOOK_STAGES) {
      assert.notEqual(s.start === undefined, s.unavailable === undefined, `stage ${s.stage}`);
    }
    const runnable = PLAYBOOK_STAGES.filter((s) => s.start !== undefined).map((s) => s.stage);
    assert.deepEqual(runnable, [1, 2, 3, 4, 5, 6]);
  });

  it('parses --stages into known stage numbers, sorted and once each', () => {
    assert.deepEqual(parseStageList('4,1, 2,4'), [1, 2, 4]);
    assert.throws(() => parseStageList('1,7'), /--stages/);
    assert.throws(() => parseStageList('1,,2'), /--stages/);
    assert.throws(() => parseStageList('two'), /--stages/);
  });

  it('runs the rate reference first, and otherwise keeps the playbook order', () => {
    const stages = [{ stage: 1 }, { stage: 2 }, { stage: 4 }];
    assert.deepEqual(
      executionOrder(stages, 2).map((s) => s.stage),
      [2, 1, 4],
    );
    assert.deepEqual(
      executionOrder(stages, null).map((s) => s.stage),
      [1, 2, 4],
    );
    assert.deepEqual(
      executionOrder([{ stage: 1 }, { stage: 4 }], 2).map((s) => s.stage),
      [1, 4],
    );
  });

  it('counts requests left at the deadline as unfinished, not as errors', () => {
    const overloaded = openRun({ scheduled: 1000, ok: 300, unfinished: 700 });
    assert.equal(errorRate(overloaded), 0);
    const wrong = openRun({ scheduled: 1000, ok: 990, wrong: 6, errors: 4 });
    assert.equal(errorRate(wrong), 0.01);
    assert.equal(fmtShare(0), '0%');
    assert.equal(fmtShare(0.00001), '<0.01%');
    assert.equal(fmtShare(0.01), '1.00%');
    assert.equal(fmtShare(0.7), '70.0%');
  });

  it('tabulates measured stages and says why the others have no numbers', () => {
    const stage = (n: number) => PLAYBOOK_STAGES.find((s) => s.stage === n)!;
    const [s1, s2] = [stage(1), stage(2)];
    // Every stage runs now; a later one that cannot yet looks like this.
    const s3 = { stage: 7, name: 'geo-distributed', change: 'regions', unavailable: 'needs regions' };
    const probe = openRun({ scheduled: 50, ok: 50 });
    const outcomes: StageOutcome[] = [
      {
        stage: s1,
        status: 'measured',
        reason: null,
        probe,
        open: openRun({ scheduled: 1000, ok: 300, unfinished: 700 }),
        details: [],
        notes: [],
      },
      { stage: s2, status: 'not selected', reason: null, probe: null, open: null, details: [], notes: [] },
      {
        stage: s3,
        status: 'not available yet',
        reason: s3.unavailable ?? null,
        probe: null,
        open: null,
        details: [],
        notes: [],
      },
    ];
    const t = resultsTable(outcomes, 100, "half of stage 2's max");
    assert.match(t.title, /100\/s \(half of stage 2's max\)/);
    assert.equal(t.rows.length, 2, 'stages left out by --stages get no row');
    const [row1, row3] = t.rows as [string[], string[]];
    assert.equal(row1.length, t.head.length);
    assert.equal(row1[t.head.indexOf('max req/s')], '50');
    assert.equal(row1[t.head.indexOf('unfinished')], '700 (70.0%)');
    assert.equal(row1[t.head.indexOf('error rate')], '0%');
    assert.equal(row1[t.head.indexOf('achieved/s')], '300');
    assert.equal(row3[t.head.indexOf('p99 ms')], '-');
    assert.equal(row3.at(-1), 'not available yet');
  });
});

describe('playbook helpers', () => {
  it('turns cores into a CFS quota and refuses what the kernel would', () => {
    assert.equal(cfsQuotaUs(0.5), 50_000);
    assert.equal(cfsQuotaUs(2), 200_000);
    assert.throws(() => cfsQuotaUs(0));
    assert.throws(() => cfsQuotaUs(Number.NaN));
    assert.throws(() => cfsQuotaUs(0.001));
  });

  it('reads throttling from cpu.stat', () => {
    const t = parseCpuStat('nr_periods 200\nnr_throttled 50\nthrottled_time 2500000000\n');
    assert.deepEqual(t, { periods: 200, throttledPeriods: 50, throttledMs: 2500 });
    assert.equal(parseCpuStat('usage 1\n'), null);
  });

  it("reads Hop's l1 cache counters from /metrics", () => {
    const text = [
      '# HELP hop_cache_requests_total Cache lookups by tier and result',
      '# TYPE hop_cache_requests_total counter',
      'hop_cache_requests_total{tier="l1",result="hit"} 90',
      'hop_cache_requests_total{tier="l1",result="miss"} 10',
      'hop_cache_requests_total{tier="l2",result="hit"} 7',
      'hop_cache_loads_coalesced_total 3',
    ].join('\n');
    const after = parseCacheCounts(text);
    assert.deepEqual(after, { hit: 90, miss: 10, negative: 0 });
    assert.deepEqual(cacheCountsDelta({ hit: 40, miss: 10, negative: 0 }, after), {
      hit: 50,
      miss: 0,
      negative: 0,
    });
    assert.deepEqual(parseCacheCounts(''), { hit: 0, miss: 0, negative: 0 });
  });
});
