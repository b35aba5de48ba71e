// The change-log scenario's arithmetic, without servers: the log's figures out of /metrics, deltas
// around runs, the group-commit factor and quantiles, and which mount holds the log's directory.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  addChangeLogCounts,
  changeLogDelta,
  fmtBucketMs,
  mountOf,
  parseChangeLogCounts,
  summarizeChangeLog,
} from '../../../bench/scenarios/change-log.ts';

const exposition = (counts: number[], sum: number, changes: number) =>
  [
    '# HELP hop_change_log_sync_seconds Embedded: one group commit of the change log',
    '# TYPE hop_change_log_sync_seconds histogram',
    ...[0.001, 0.01, 0.1].map((le, i) => `hop_change_log_sync_seconds_bucket{le="${le}"} ${counts[i]}`),
    `hop_change_log_sync_seconds_bucket{le="+Inf"} ${counts[3]}`,
    `hop_change_log_sync_seconds_sum ${sum}`,
    `hop_change_log_sync_seconds_count ${counts[3]}`,
    '# TYPE hop_change_log_changes_total counter',
    `hop_change_log_changes_total ${changes}`,
    'hop_change_log_other 99',
    'hop_clicks_recorded_total 5',
  ].join('\n');

describe('change-log bench figures', () => {
  it('parses the histogram and the counter, and a Hop without the log as zeros', () => {
    const c = parseChangeLogCounts(exposition([1, 5, 9, 10], 0.2, 80));
    assert.equal(c.syncs, 10);
    assert.equal(c.changes, 80);
    assert.equal(c.syncSeconds, 0.2);
    assert.deepEqual(
      c.buckets.map((b) => [b.le, b.count]),
      [
        [0.001, 1],
        [0.01, 5],
        [0.1, 9],
        [Number.POSITIVE_INFINITY, 10],
      ],
    );
    const none = parseChangeLogCounts('hop_clicks_recorded_total 5\n');
    assert.deepEqual(none, { syncs: 0, syncSeconds: 0, buckets: [], changes: 0 });
    assert.equal(summarizeChangeLog(none).perSync, null);
    assert.equal(fmtBucketMs(summarizeChangeLog(none).p99), '-');
  });

  it('takes deltas around runs, adds windows and summarizes them', () => {
    const before = parseChangeLogCounts(exposition([1, 5, 9, 10], 0.2, 80));
    const after = parseChangeLogCounts(exposition([1, 105, 109, 110], 0.7, 1080));
    const d = changeLogDelta(before, after);
    assert.equal(d.syncs, 100);
    assert.equal(d.changes, 1000);
    assert.deepEqual(
      d.buckets.map((b) => b.count),
      [0, 100, 100, 100],
    );
    const s = summarizeChangeLog(d);
    assert.equal(s.perSync, 10);
    assert.ok(Math.abs(s.meanMs! - 5) < 1e-9);
    // Every sync fell in (1 ms, 10 ms]: the median is interpolated halfway through it.
    assert.ok(Math.abs(s.p50!.seconds - 0.0055) < 1e-9);
    assert.equal(s.p50!.overflow, false);
    const twice = addChangeLogCounts(d, d);
    assert.equal(twice.syncs, 200);
    assert.deepEqual(
      twice.buckets.map((b) => b.count),
      [0, 200, 200, 200],
    );
    // A delta from an empty reading (the first one before the log had synced) counts from zero.
    assert.equal(changeLogDelta(parseChangeLogCounts(''), after).buckets.at(-1)!.count, 110);
  });

  it('marks a quantile in the +Inf bucket', () => {
    const s = summarizeChangeLog(parseChangeLogCounts(exposition([0, 0, 0, 4], 2, 8)));
    assert.equal(s.p99!.overflow, true);
    assert.equal(fmtBucketMs(s.p99), '> 100');
  });

  it('finds the mount holding a path: the longest mount point, the last line on top', () => {
    const mounts = [
      '/dev/vda / ext4 rw,relatime 0 0',
      'tmpfs /tmp tmpfs rw,nosuid 0 0',
      '/dev/vdb /tmp/my\\040disk xfs rw 0 0',
      'tmpfs /tmpx tmpfs rw 0 0',
      'overlay /tmp tmpfs rw,size=1k 0 0',
    ].join('\n');
    assert.equal(mountOf('/tmp/hop-bench-x/log-on/changes', mounts)?.options, 'rw,size=1k');
    assert.equal(mountOf('/tmp', mounts)?.device, 'overlay');
    assert.equal(mountOf('/tmpfoo/a', mounts)?.mountPoint, '/');
    assert.deepEqual(mountOf('/tmp/my disk/log', mounts), {
      device: '/dev/vdb',
      mountPoint: '/tmp/my disk',
      fsType: 'xfs',
      options: 'rw',
    });
    assert.equal(mountOf('/work', ''), null);
  });
});
