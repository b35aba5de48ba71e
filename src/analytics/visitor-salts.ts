// The daily salts of visitor hashes. Kept in the store so every process (and a restart) hashes a
// visitor alike within a day; old salts are deleted by the click upkeep job, after which a day's
// hashes can no longer be recomputed from an IP. Today's and tomorrow's are held in memory so
// the redirect path never waits for them, midnight included.
import { randomBytes } from 'node:crypto';
import { DAY_MS, floorTo } from '../domain/clicks.ts';
import type { Logger } from '../logger.ts';
import type { ClickStore } from '../storage/ports.ts';

const REFRESH_MS = 10 * 60_000;

export class VisitorSalts {
  private salts = new Map<number, string>();
  /** Used only until the store answers, so a click never waits and never goes unhashed. */
  private readonly fallback = randomBytes(16).toString('hex');
  private timer: NodeJS.Timeout | null = null;
  private readonly store: ClickStore;
  private readonly log: Logger;

  constructor(store: ClickStore, log: Logger) {
    this.store = store;
    this.log = log;
  }

  async refresh(now: number = Date.now()): Promise<void> {
    const today = floorTo(now, DAY_MS);
    this.salts = await this.store.daySalts([today, today + DAY_MS], () => randomBytes(16).toString('hex'));
  }

  /** Loads the salts and keeps them fresh. */
  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => {
      this.refresh().catch((err: unknown) => this.log.warn({ err }, 'visitor salts not refreshed'));
    }, REFRESH_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
  }

  saltFor(at: number): string {
    return this.salts.get(floorTo(at, DAY_MS)) ?? this.fallback;
  }
}
