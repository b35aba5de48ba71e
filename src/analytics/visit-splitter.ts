// Splits raw click batches into visit rows (VisitStore.splitVisits) on an interval, off the redirect
// path: a link's visits are listed from its rows once split, and the raw batches not split yet are
// what every visit list reads besides. Runs in Hop processes on PostgreSQL and in workers (the
// embedded writer splits after each fold); splits claim batches with SKIP LOCKED, so several
// processes share the work.
import type { Logger } from '../logger.ts';
import type { VisitStore } from '../storage/ports.ts';

// One pass splits until nothing is left, but never for longer than this: the next pass goes on.
const PASS_MS = 2_000;

export class VisitSplitter {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;
  private readonly store: Pick<VisitStore, 'splitVisits'>;
  private readonly log: Logger;

  constructor(store: Pick<VisitStore, 'splitVisits'>, log: Logger) {
    this.store = store;
    this.log = log;
  }

  start(everyMs: number): void {
    this.timer = setInterval(() => void this.runOnce().catch(() => {}), everyMs);
    this.timer.unref();
  }

  /** One pass; returns the clicks it split. A pass already running is shared. */
  runOnce(): Promise<number> {
    this.running ??= (async () => {
      const started = performance.now();
      let moved = 0;
      for (;;) {
        const n = await this.store.splitVisits();
        moved += n;
        if (n === 0 || performance.now() - started > PASS_MS) return moved;
      }
    })()
      .catch((err: unknown) => {
        this.log.warn({ err }, 'splitting visits failed; will try again');
        throw err;
      })
      .finally(() => {
        this.running = null;
      });
    return this.running;
  }

  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    await this.running?.catch(() => {});
  }
}
