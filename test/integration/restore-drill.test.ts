// The restore drill of issue #20 at small N (bench/drill.ts runs it at 100,000 links): each embedded
// disaster, and losing a shard's data directory on PostgreSQL, must end with every acknowledged link
// served as acknowledged, the API key and the webhook in place. The cluster case skips where
// PostgreSQL's programs or pgBackRest are missing.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { clusterDrillUnavailable } from '../../bench/drill/cluster.ts';
import { type Disaster, type DrillResult, formatResult } from '../../bench/drill/common.ts';
import { runDrill } from '../../bench/drill.ts';

const LINKS = 1_000;

function assertRecovered(r: DrillResult): void {
  const report = formatResult(r);
  assert.equal(r.rpoWithReplay.lost, 0, report);
  assert.ok(r.checked > LINKS, report);
  assert.ok(r.writes.creates + r.writes.edits + r.writes.deletes > 0, report);
  assert.equal(r.apiKeyOk, true, report);
  assert.equal(r.webhookOk, true, report);
  assert.equal(r.ok, true, report);
  assert.ok(r.rtoS > 0 && r.restore.rows > LINKS && r.backup.bytes > 0, report);
}

const clusterSkip = (await clusterDrillUnavailable()) ?? false;

// Two drills at a time (each has its own directories, ports and servers): four at once on two cores
// would test the machine's patience more than the recovery.
describe('the restore drill', { concurrency: 2 }, () => {
  for (const disaster of ['lose-data-dir', 'drop-table', 'mass-delete'] as Disaster[]) {
    test(`embedded, ${disaster}: every acknowledged link is back`, async () => {
      const r = await runDrill('embedded', { links: LINKS, disaster, writeMs: 1_000 });
      assertRecovered(r);
      // The backup alone misses the writes made after it (or, after a mass delete, the copy from
      // before the mistake misses the later writes): the replay step is what closes the gap.
      assert.ok(r.rpoWithoutReplay.lost > 0, formatResult(r));
    });
  }

  test('PostgreSQL shards, lose-data-dir: restored from the WAL archive, then replayed from the change stream', {
    skip: clusterSkip,
  }, async () => {
    const r = await runDrill('cluster', {
      links: LINKS,
      disaster: 'lose-data-dir',
      writeMs: 1_000,
      replicas: 0,
    });
    assertRecovered(r);
  });
});
