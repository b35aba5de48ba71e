// The click upkeep job: sums whole past days into daily rollups and drops raw events, batch ids
// and visitor salts that have left the retention window. Runs soon after start, then on an interval.
import type { Logger } from '../logger.ts';
import type { ClickStore } from '../storage/ports.ts';

export class ClickUpkeep {
  private timer: NodeJS.Timeout | null = null;
  private first: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private readonly store: ClickStore;
  private readonly retentionDays: number;
  private readonly log: Logger;

  constructor(store: ClickStore, retentionDays: number, log: Logger) {
    this.store = store;
    this.retentionDays = retentionDays;
    this.log = log;
  }

  start(everyMs: number): void {
    const tick = () => void this.runOnce(Date.now()).catch(() => {});
    this.first = setTimeout(tick, Math.min(everyMs, 5_000));
    this.first.unref();
    this.timer = setInterval(tick, everyMs);
    this.timer.unref();
  }

  /** One pass; a pass already running is shared rather than doubled. */
  runOnce(now: number): Promise<void> {
    this.running ??= this.store
      .maintainClicks(now, this.retentionDays)
      .then((r) => {
        if (r.prunedEvents > 0 || r.prunedBatches > 0) this.log.info({ ...r }, 'click upkeep');
      })
      .catch((err: unknown) => {
        this.log.warn({ err }, 'click upkeep failed; will try again');
        throw err;
      })
      .finally(() => {
        this.running = null;
      });
    return this.running;
  }

  async stop(): Promise<void> {
    if (this.first !== null) clearTimeout(this.first);
    if (this.timer !== null) clearInterval(this.timer);
    await this.running?.catch(() => {});
  }
}
