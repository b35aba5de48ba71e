// Scheduled embedded backups: files named by UTC time, the newest KEEP kept, the after-backup hook
// told each backup's newest change, and the metrics (the last success read back from the
// directory at start, skipping a file that does not read back whole).
import assert from 'node:assert/strict';
import { copyFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '../../src/logger.ts';
import { createPrometheusMetrics } from '../../src/metrics/prometheus-metrics.ts';
import { EmbeddedBackups, listBackups } from '../../src/storage/embedded/backup-service.ts';
import { openEmbeddedStore } from '../../src/storage/embedded/open-embedded-store.ts';
import type { SqlStore } from '../../src/storage/sql/sql-store.ts';
import { tempDir } from '../support/hop-process.ts';

const gauge = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);

describe('scheduled backups', () => {
  let store: SqlStore;
  const dir = tempDir('hop-sched-');
  before(async () => {
    store = await openEmbeddedStore({ dataDir: null, codeLength: 7 });
  });
  after(async () => {
    await store.close();
    dir.remove();
  });

  test('keeps the newest KEEP files and reports each success; a restart reads the newest good one', async () => {
    const backups = join(dir.path, 'backups');
    const metrics = createPrometheusMetrics({ defaultMetrics: false });
    const seqs: number[] = [];
    const service = new EmbeddedBackups(
      store.databaseThread!,
      { dataDir: join(dir.path, 'data'), dir: backups, intervalMs: 150, keep: 2 },
      {
        beforeSnapshot: async () => {},
        afterBackup: async (seq) => {
          seqs.push(seq);
        },
      },
      metrics,
      createLogger('silent'),
    );
    await service.start();
    const deadline = Date.now() + 15_000;
    while (seqs.length < 4) {
      assert.ok(Date.now() < deadline, `${seqs.length} backups`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await service.stop();
    const files = listBackups(backups);
    assert.equal(files.length, 2, `kept ${files}`);
    assert.deepEqual(readdirSync(backups).sort(), [...files].sort(), 'no temporary files left');
    assert.ok(files.every((f) => /^hop-backup-\d{8}T\d{6}\.\d{3}Z\.gz$/.test(f)));
    assert.ok(seqs.every((s) => s === 0));
    const text = (await metrics.render()).body;
    const last = gauge(text, 'hop_backup_last_success_timestamp_seconds');
    assert.ok(Math.abs(last - Date.now() / 1000) < 10, `last success ${last}`);
    assert.ok(gauge(text, 'hop_backup_size_bytes') > 0);
    assert.ok(gauge(text, 'hop_backup_duration_seconds') > 0);
    assert.equal(gauge(text, 'hop_backup_interval_seconds'), 0.15);
    assert.equal(gauge(text, 'hop_backup_failures_total'), 0);

    // A newer file that is cut short is passed over; the metric names the good one.
    const newest = files[0]!;
    const stamp = /hop-backup-(.*)\.gz/.exec(newest)![1]!;
    copyFileSync(join(backups, newest), join(backups, 'hop-backup-29990101T000000.000Z.gz'));
    writeFileSync(join(backups, 'hop-backup-29990101T000000.000Z.gz'), 'cut');
    const restarted = createPrometheusMetrics({ defaultMetrics: false });
    const again = new EmbeddedBackups(
      store.databaseThread!,
      { dataDir: join(dir.path, 'data'), dir: backups, intervalMs: 3_600_000, keep: 2 },
      { beforeSnapshot: async () => {}, afterBackup: async () => {} },
      restarted,
      createLogger('silent'),
    );
    await again.start();
    await again.stop();
    const at = gauge((await restarted.render()).body, 'hop_backup_last_success_timestamp_seconds');
    const expected =
      Date.parse(stamp.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})/, '$1-$2-$3T$4:$5:$6')) / 1000;
    assert.ok(Math.abs(at - expected) < 1, `${at} vs ${expected}`);
  });

  test('a failed backup counts a failure and removes no older file', async () => {
    const backups = join(dir.path, 'failing');
    const metrics = createPrometheusMetrics({ defaultMetrics: false });
    const ok = new EmbeddedBackups(
      store.databaseThread!,
      { dataDir: join(dir.path, 'data2'), dir: backups, intervalMs: 3_600_000, keep: 1 },
      { beforeSnapshot: async () => {}, afterBackup: async () => {} },
      metrics,
      createLogger('silent'),
    );
    await ok.backupNow();
    const failing = new EmbeddedBackups(
      store.databaseThread!,
      { dataDir: join(dir.path, 'data2'), dir: backups, intervalMs: 3_600_000, keep: 1 },
      {
        beforeSnapshot: async () => {
          throw new Error('disk on fire');
        },
        afterBackup: async () => {},
      },
      metrics,
      createLogger('silent'),
    );
    await assert.rejects(failing.backupNow(), /disk on fire/);
    assert.equal(listBackups(backups).length, 1);
    assert.equal(gauge((await metrics.render()).body, 'hop_backup_failures_total'), 1);
  });
});
