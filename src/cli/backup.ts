// `hop backup` and `hop restore`: the embedded database's logical backup. A serving Hop holds the
// data directory, so the backup is asked of it over its control socket; with none serving, this
// process opens the data directory itself. Either way the file is written here, checked, fsynced.
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Config } from '../config.ts';
import { afterBackupHook } from '../deps.ts';
import { backupFileName } from '../storage/embedded/backup-service.ts';
import {
  confirmBackup,
  controlSocketPath,
  NoServer,
  requestBackup,
  socketPathFits,
} from '../storage/embedded/control-socket.ts';
import {
  RestoreRefused,
  readBackupFile,
  restoreBackup,
  writeBackupFile,
  writeDurably,
} from '../storage/embedded/embedded-backup.ts';
import { openPglite } from '../storage/embedded/pglite-client.ts';

type Out = (line: string) => void;

function embeddedDataDir(config: Config, err: Out): string | null {
  if (config.databaseUrls !== null) {
    err(
      'hop backup and hop restore work on the embedded database; HOP_DATABASE_URLS names PostgreSQL servers.',
    );
    return null;
  }
  if (config.dataDir === null) {
    err(
      'The embedded database is in memory (HOP_DATA_DIR=:memory:): there is nothing to back up or restore.',
    );
    return null;
  }
  return config.dataDir;
}

const mb = (bytes: number) => `${(bytes / 1_048_576).toFixed(1)} MB`;

export async function runBackup(config: Config, output: string | null, out: Out, err: Out): Promise<number> {
  const dataDir = embeddedDataDir(config, err);
  if (dataDir === null) return 2;
  const file = resolve(output ?? join(config.backupDir ?? '.', backupFileName(new Date())));
  const started = performance.now();
  const socket = controlSocketPath(dataDir);
  const afterBackup = afterBackupHook(config, null);
  let summary: {
    tables: number;
    rows: number;
    pauseMs: number;
    lastChangeSeq: number;
    bytes: number;
    via: string;
  };
  try {
    const offer = socketPathFits(socket) ? await requestBackup(socket) : null;
    if (offer === null) throw new NoServer('socket path too long');
    // The file is checked whole before it takes its name: a cut connection leaves no backup behind.
    const bytes = await writeDurably(file, offer.body, async (tmp) => {
      await readBackupFile(tmp);
    });
    await confirmBackup(socket, offer.id);
    summary = { ...offer.totals(), bytes, via: 'the running server' };
  } catch (e) {
    if (!(e instanceof NoServer)) throw e;
    if (!existsSync(join(dataDir, 'pg')) || readdirSync(join(dataDir, 'pg')).length === 0) {
      err(`No embedded database in ${dataDir} (HOP_DATA_DIR): nothing to back up.`);
      return 1;
    }
    // No server answers: open the data directory here (its lock says if a server holds it after all).
    let db: Awaited<ReturnType<typeof openPglite>>;
    try {
      db = await openPglite(dataDir);
    } catch (e2) {
      err(
        `${(e2 as Error).message.replace(/ Stop that Hop first.*$/, '')} It does not answer on its control socket (${socket}): is it an older Hop, or was its data directory path too long for a socket?`,
      );
      return 1;
    }
    try {
      const snap = await writeBackupFile(db.thread!, file);
      await afterBackup(snap.manifest.lastChangeSeq);
      summary = {
        tables: snap.tables,
        rows: snap.rows,
        pauseMs: snap.pauseMs,
        lastChangeSeq: snap.manifest.lastChangeSeq,
        bytes: snap.bytes,
        via: 'the data directory (no server running)',
      };
    } finally {
      await db.close();
    }
  }
  const seconds = (performance.now() - started) / 1000;
  out(`Backup written to ${file}`);
  out(
    `  from ${summary.via}: ${summary.tables} tables, ${summary.rows} rows, changes through seq ${summary.lastChangeSeq}`,
  );
  out(
    `  ${mb(summary.bytes)} in ${seconds.toFixed(2)} s; the database answered nothing else for ${summary.pauseMs.toFixed(0)} ms`,
  );
  return 0;
}

export async function runRestore(
  config: Config,
  file: string | undefined,
  out: Out,
  err: Out,
  untilText: string | null = null,
): Promise<number> {
  const until = untilText === null ? null : new Date(untilText);
  if (file === undefined || (until !== null && Number.isNaN(until.getTime()))) {
    err('Usage: hop restore FILE [--data-dir DIR] [--until ISO8601 --change-log LOG]');
    return 2;
  }
  const logDir = config.changeLog;
  if (until !== null && (logDir === null || !existsSync(logDir))) {
    err(`--until replays a change log: name it with --change-log (${logDir ?? 'none'} does not exist).`);
    return 2;
  }
  const dataDir = embeddedDataDir(config, err);
  if (dataDir === null) return 2;
  let report: Awaited<ReturnType<typeof restoreBackup>>;
  try {
    report = await restoreBackup(resolve(file), dataDir);
  } catch (e) {
    if (e instanceof RestoreRefused) {
      err(e.message);
      return 1;
    }
    throw e;
  }
  const m = report.manifest;
  out(`Restored ${file} (taken ${m.createdAt}, changes through seq ${m.lastChangeSeq}) into ${dataDir}`);
  out('Compared with the backup (rows, and sha256 of the ordered CSV of each table):');
  const width = Math.max(...report.tables.map((t) => t.table.length), 5);
  for (const t of report.tables) {
    const rows = t.ok ? String(t.rows) : `${t.restoredRows} restored, ${t.rows} in the backup`;
    out(`  ${t.table.padEnd(width)}  ${rows.padStart(10)}  ${t.ok ? 'OK' : 'MISMATCH'}`);
  }
  const total = report.tables.reduce((n, t) => n + t.rows, 0);
  if (!report.ok) {
    const bad = report.tables.filter((t) => !t.ok).length;
    err(
      `Restore FAILED: ${bad} of ${report.tables.length} tables differ from the backup; nothing was kept in ${dataDir}.`,
    );
    return 1;
  }
  if (report.newerMigrations.length > 0)
    out(`Then applied the migrations newer than the backup: ${report.newerMigrations.join(', ')}`);
  out(`OK: ${report.tables.length} tables, ${total} rows, in ${report.seconds.toFixed(2)} s.`);
  if (until !== null && logDir !== null) {
    // The copy as it was just before `until`: for hop recover-links to read, never to serve (a Hop
    // started on it with that log would replay the rest).
    const { ChangeLog } = await import('../storage/embedded/change-log.ts');
    const { openEmbeddedStore } = await import('../storage/embedded/open-embedded-store.ts');
    const store = await openEmbeddedStore({ dataDir, codeLength: config.codeLength });
    try {
      const applied = await ChangeLog.replayUntil(logDir, store, until);
      out(
        `Then replayed ${applied} changes from ${logDir} made before ${until.toISOString()} (through seq ${await store.lastChangeSeq()}).`,
      );
    } finally {
      await store.close();
    }
  }
  return 0;
}
