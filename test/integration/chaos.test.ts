// The chaos suite's faults, each once under a small steady load (bench/chaos: `npm run chaos` runs
// them longer, three rounds each, and prints the figures). Real servers: etcd, Patroni-managed
// PostgreSQL behind HAProxy, Redis under Sentinel, two Hop processes behind HAProxy and a worker.
// Each fault must lose no acknowledged link, redirect no known link wrongly, store no create twice,
// recover writes within its documented bound, and count no click twice.
import assert from 'node:assert/strict';
import { chmod } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { FAULTS, QUICK_TIMINGS } from '../../bench/chaos/faults.ts';
import { checkAcknowledged } from '../../bench/chaos/load.ts';
import { type ChaosRow, runRound } from '../../bench/chaos/round.ts';
import { type ChaosSystem, startChaosSystem, stopChaosSystem } from '../../bench/chaos/system.ts';
import { tempDir } from '../support/hop-process.ts';

let sys: ChaosSystem;
let dir: ReturnType<typeof tempDir>;
const rows: ChaosRow[] = [];

before(
  async () => {
    dir = tempDir('hop-chaos-');
    await chmod(dir.path, 0o755);
    sys = await startChaosSystem({ dir: dir.path, shards: 1, redis: 'sentinel' });
  },
  { timeout: 180_000 },
);

after(
  async () => {
    if (sys !== undefined) await stopChaosSystem(sys);
    dir?.remove();
  },
  { timeout: 120_000 },
);

describe('chaos: one fault at a time under load, on an HA cluster', { concurrency: 1 }, () => {
  for (const fault of FAULTS) {
    test(`${fault.name}: ${fault.what}`, { timeout: 240_000 }, async (t) => {
      const row = await runRound(sys, fault, {
        rates: { creates: 8, redirects: 30, clicks: 10 },
        timings: QUICK_TIMINGS,
        steadyMs: 1_500,
        afterMs: 2_000,
        round: `test-${fault.name}`,
      });
      rows.push(row);
      t.diagnostic(
        `${row.note}: ${row.acknowledged} acknowledged, ${row.writeErrors} write errors, RTO ${row.rtoMs} ms, ` +
          `redirects ${row.redirects} (${row.redirectErrors} errors, p99 ${row.redirectP99Ms.toFixed(1)} ms), ` +
          `clicks ${row.clicksServed} served / ${row.clicksCounted} counted; failed creates answered ` +
          `${row.writeErrorStatuses || '-'}, failed redirects ${row.redirectErrorStatuses || '-'}`,
      );
      assert.ok(row.acknowledged > 0, 'creates were acknowledged');
      assert.deepEqual(
        { lost: row.lost, wrong: row.wrong, duplicates: row.duplicates, wrongRedirects: row.wrongRedirects },
        { lost: 0, wrong: 0, duplicates: 0, wrongRedirects: 0 },
      );
      // Failed redirects are printed above, not held to a bound: a fresh-clone run saw a burst of
      // 44 answered 503 in both pg-postgres and the switchover (an open defect, in the closing note).
      // A wrong redirect (404 or another URL) is held to zero above.
      assert.ok(
        row.rtoMs <= fault.rtoBoundMs,
        `writes back within ${fault.rtoBoundMs} ms, took ${row.rtoMs} ms`,
      );
      // Never counted twice; exact unless the fault may lose some (documented in the runbooks).
      assert.ok(row.clicksCounted <= row.clicksServed, 'no click counted twice');
      if (!fault.clicksMayBeLost)
        assert.equal(row.clicksCounted, row.clicksServed, 'every click served counted');
    });
  }

  test('after every fault, every link acknowledged in any of them is still there, unchanged', {
    timeout: 120_000,
  }, async () => {
    const links = rows.flatMap((r) => r.links);
    assert.ok(links.length > 0);
    const { lost, wrong } = await checkAcknowledged(sys.fleet.balancer.url, links);
    assert.deepEqual({ lost, wrong }, { lost: [], wrong: [] });
  });
});
