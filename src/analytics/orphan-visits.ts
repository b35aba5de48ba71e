// Orphan visits: requests that found no link (a domain's root, an unknown code, any other 404),
// counted per hour, domain, bot flag, type and path, and written every HOP_ORPHAN_FLUSH_MS as one
// batch (exactly once: the batch id goes into the click ledger). Memory is bounded whatever arrives:
// a flush keeps at most MAX_PATHS distinct paths and counts the rest under '' (a scan of random
// codes costs a counter, not a row per code).
import { isbot } from 'isbot';
import { uuid7 } from '../events/uuid7.ts';
import type { Logger } from '../logger.ts';
import type { OrphanBatch, OrphanStore, OrphanType, OrphanVisit } from '../storage/ports.ts';

export const MAX_PATHS = 1_000;
/** Visits a flush lists one by one (the rest are only counted): a scan of random codes costs no more. */
export const MAX_LISTED = 1_000;
/** Longer paths are cut: they name nothing Hop has, and the length is the visitor's to choose. */
const MAX_PATH_LENGTH = 200;
const HOUR_MS = 3_600_000;
/** A batch that fails to write is kept and retried; beyond this many waiting, new visits are dropped. */
const MAX_WAITING_BATCHES = 10;

type Row = OrphanBatch['rows'][number];

export class OrphanCounter {
  private rows = new Map<string, Row>();
  private listed: OrphanVisit[] = [];
  private paths = 0;
  private readonly waiting: OrphanBatch[] = [];
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  /** Visits dropped because writes kept failing (reported in the log). */
  dropped = 0;
  private readonly store: Pick<OrphanStore, 'recordOrphans'>;
  private readonly log: Logger;
  readonly active: boolean;

  constructor(store: Pick<OrphanStore, 'recordOrphans'>, log: Logger, active = true) {
    this.store = store;
    this.log = log;
    this.active = active;
  }

  /** Counts a visit; `path` is the request's path without its query. Never throws, never waits. */
  count(
    domain: string,
    type: OrphanType,
    path: string,
    userAgent: string | undefined,
    at = Date.now(),
    referer?: string,
  ): void {
    if (!this.active) return;
    if (this.waiting.length >= MAX_WAITING_BATCHES) {
      this.dropped++;
      return;
    }
    const bot = userAgent !== undefined && userAgent !== '' && isbot(userAgent);
    const hour = at - (at % HOUR_MS);
    let p = path.length > MAX_PATH_LENGTH ? path.slice(0, MAX_PATH_LENGTH) : path;
    if (this.listed.length < MAX_LISTED)
      this.listed.push({
        id: uuid7(at),
        at,
        domain,
        type,
        path: p,
        bot,
        userAgent: userAgent === undefined || userAgent === '' ? null : userAgent.slice(0, 512),
        referer: referer === undefined || referer === '' ? null : referer.slice(0, 1024),
      });
    let key = `${hour}\u0000${domain}\u0000${bot ? 1 : 0}\u0000${type}\u0000${p}`;
    let row = this.rows.get(key);
    if (row === undefined && this.paths >= MAX_PATHS) {
      p = '';
      key = `${hour}\u0000${domain}\u0000${bot ? 1 : 0}\u0000${type}\u0000`;
      row = this.rows.get(key);
    }
    if (row === undefined) {
      this.rows.set(key, { domain, hour, bot, type, path: p, visits: 1 });
      if (p !== '') this.paths++;
    } else (row as { visits: number }).visits++;
  }

  start(flushMs: number): void {
    if (!this.active) return;
    this.timer = setInterval(() => void this.flush(), flushMs);
    this.timer.unref();
  }

  /** Writes what is counted (and any batch that failed before). One flush at a time. */
  flush(): Promise<void> {
    if (this.flushing !== null) return this.flushing;
    this.flushing = this.writeAll().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  private async writeAll(): Promise<void> {
    if (this.rows.size > 0) {
      this.waiting.push({ id: uuid7(), rows: [...this.rows.values()], list: this.listed });
      this.rows = new Map();
      this.listed = [];
      this.paths = 0;
    }
    while (this.waiting.length > 0) {
      try {
        await this.store.recordOrphans(this.waiting[0]!);
        this.waiting.shift();
      } catch (err) {
        this.log.warn({ err, waiting: this.waiting.length }, 'could not write orphan visits; will retry');
        return;
      }
    }
  }

  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.flush();
    if (this.dropped > 0)
      this.log.warn({ dropped: this.dropped }, 'orphan visits dropped while the store failed');
  }
}
