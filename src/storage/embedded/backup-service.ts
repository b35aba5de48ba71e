// A serving embedded Hop's backups: the control socket `hop backup` asks, and scheduled backups
// into HOP_BACKUP_DIR with retention and metrics. One snapshot at a time: each holds the database
// for its transaction, and two at once would only double the pause.
import { randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import type { Logger } from '../../logger.ts';
import type { Metrics } from '../../metrics/metrics.ts';
import type { DatabaseThread } from '../ports.ts';
import {
  closeControlSocket,
  controlSocketPath,
  listenControlSocket,
  socketPathFits,
} from './control-socket.ts';
import { type BackupRun, readBackupFile, startBackup, writeDurably } from './embedded-backup.ts';

export interface BackupSettings {
  readonly dataDir: string;
  /** null: no scheduled backups (the control socket still answers). */
  readonly dir: string | null;
  readonly intervalMs: number;
  readonly keep: number;
}

export interface BackupHooks {
  /** Runs before each snapshot: clicks held outside the database thread are written first. */
  readonly beforeSnapshot: () => Promise<void>;
  /** Runs after each backup that is safely written, with the newest change it holds. */
  readonly afterBackup: (lastChangeSeq: number) => Promise<void>;
}

const FILE = /^hop-backup-(\d{8}T\d{6}\.\d{3}Z)\.gz$/;

/** hop-backup-20250102T060000.000Z.gz: UTC, sorts by time. */
export const backupFileName = (at: Date): string => `hop-backup-${at.toISOString().replace(/[-:]/g, '')}.gz`;

/** The backups in a directory, newest first. */
export function listBackups(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => FILE.test(n))
    .sort()
    .reverse();
}

/** How long a backup the CLI asked for stays confirmable (it is written meanwhile). */
const OFFER_TTL_MS = 3_600_000;

export class EmbeddedBackups {
  private readonly thread: DatabaseThread;
  private readonly settings: BackupSettings;
  private readonly hooks: BackupHooks;
  private readonly metrics: Metrics;
  private readonly log: Logger;
  private queue: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;
  private stopped = false;
  private socket: { server: Server; path: string } | null = null;
  private readonly offers = new Map<string, { seq: number; at: number }>();

  constructor(
    thread: DatabaseThread,
    settings: BackupSettings,
    hooks: BackupHooks,
    metrics: Metrics,
    log: Logger,
  ) {
    this.thread = thread;
    this.settings = settings;
    this.hooks = hooks;
    this.metrics = metrics;
    this.log = log;
  }

  /** One snapshot at a time, in the order asked: the next starts when the last one's transaction ends. */
  snapshot(): Promise<BackupRun> {
    const next = this.queue.then(async () => {
      await this.hooks.beforeSnapshot();
      return startBackup(this.thread);
    });
    this.queue = next.then((run) => run.done).catch(() => {});
    return next;
  }

  /** Opens the control socket and starts the schedule (if a directory is set). */
  async start(): Promise<void> {
    const path = controlSocketPath(this.settings.dataDir);
    if (!socketPathFits(path)) {
      this.log.warn(
        { path },
        'no control socket: the path is too long for a Unix socket, so `hop backup` cannot reach this server (use a shorter HOP_DATA_DIR)',
      );
    } else {
      try {
        this.socket = { server: await listenControlSocket(path, this.handlers()), path };
      } catch (err) {
        this.log.warn({ err, path }, 'no control socket: `hop backup` cannot reach this server');
      }
    }
    const dir = this.settings.dir;
    if (dir === null) return;
    mkdirSync(dir, { recursive: true });
    this.metrics.backupScheduled(this.settings.intervalMs / 1000);
    const newest = await this.newestGood(dir);
    const due = newest === null ? 0 : newest.getTime() + this.settings.intervalMs - Date.now();
    this.schedule(Math.max(0, due));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    await this.running?.catch(() => {});
    if (this.socket !== null) await closeControlSocket(this.socket.server, this.socket.path);
    this.socket = null;
  }

  /** Takes a scheduled backup now: written, then older ones beyond the limit removed. */
  async backupNow(): Promise<{ file: string; bytes: number; seconds: number; pauseMs: number }> {
    const dir = this.settings.dir;
    if (dir === null) throw new Error('no HOP_BACKUP_DIR');
    const started = performance.now();
    try {
      const run = await this.snapshot();
      let file: string;
      let bytes: number;
      try {
        mkdirSync(dir, { recursive: true });
        file = join(dir, backupFileName(run.createdAt));
        bytes = await writeDurably(file, run.body);
      } finally {
        run.body.destroy();
      }
      const snap = await run.done;
      const seconds = (performance.now() - started) / 1000;
      this.metrics.backupSucceeded(Date.parse(snap.manifest.createdAt) / 1000, seconds, bytes);
      this.log.info({ file, bytes, seconds, pauseMs: Math.round(snap.pauseMs) }, 'backup written');
      this.prune(dir);
      await this.afterBackup(snap.manifest.lastChangeSeq);
      return { file, bytes, seconds, pauseMs: snap.pauseMs };
    } catch (err) {
      this.metrics.backupFailed();
      throw err;
    }
  }

  private async afterBackup(seq: number): Promise<void> {
    try {
      await this.hooks.afterBackup(seq);
    } catch (err) {
      this.log.error({ err, lastChangeSeq: seq }, 'the after-backup work failed (the backup itself is good)');
    }
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.backupNow()
        .catch((err: unknown) => this.log.error({ err }, 'scheduled backup failed'))
        .finally(() => {
          this.running = null;
          this.schedule(this.settings.intervalMs);
        });
    }, delayMs);
    this.timer.unref();
  }

  /** Keeps the newest `keep` backups; runs only after a new one was written. */
  private prune(dir: string): void {
    for (const name of listBackups(dir).slice(this.settings.keep)) {
      rmSync(join(dir, name), { force: true });
      this.log.info({ file: join(dir, name) }, 'old backup removed');
    }
  }

  /** The newest backup in the directory that reads back whole; its time feeds the metric. */
  private async newestGood(dir: string): Promise<Date | null> {
    for (const name of listBackups(dir)) {
      const file = join(dir, name);
      try {
        const manifest = await readBackupFile(file);
        const at = new Date(manifest.createdAt);
        this.metrics.backupSucceeded(at.getTime() / 1000, null, statSync(file).size);
        return at;
      } catch (err) {
        this.log.warn(
          { file, err: (err as Error).message },
          'a backup in HOP_BACKUP_DIR does not read back whole',
        );
      }
    }
    return null;
  }

  private handlers() {
    return {
      backup: async () => {
        const run = await this.snapshot();
        const id = randomUUID();
        const totals = run.done.then((snap) => {
          const now = Date.now();
          for (const [k, o] of this.offers) if (now - o.at > OFFER_TTL_MS) this.offers.delete(k);
          this.offers.set(id, { seq: snap.manifest.lastChangeSeq, at: now });
          this.log.info({ pauseMs: Math.round(snap.pauseMs) }, 'backup taken for hop backup');
          return {
            lastChangeSeq: snap.manifest.lastChangeSeq,
            pauseMs: snap.pauseMs,
            tables: snap.tables,
            rows: snap.rows,
          };
        });
        totals.catch((err: unknown) => this.log.warn({ err }, 'backup for hop backup failed'));
        return { id, body: run.body, totals };
      },
      backupDone: async (id: string) => {
        const offer = this.offers.get(id);
        if (offer === undefined) return false;
        this.offers.delete(id);
        await this.afterBackup(offer.seq);
        return true;
      },
    };
  }
}
