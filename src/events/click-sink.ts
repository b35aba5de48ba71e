// The click pipeline's ports. The redirect hands a click to the ClickIntake and returns at once;
// where the click is enriched and where it goes (an in-process batch writer, the embedded
// database's own thread, Redis Streams) is the adapters' business.
import type { ClickRequest } from '../analytics/click-enricher.ts';
import type { ClickEvent, ClickStats, ClickStore, PendingClicks, StatsQuery } from '../storage/ports.ts';

/** The redirect's side: the click as the request told it. Never blocks and never throws. */
export interface ClickIntake {
  /** False when clicks go nowhere: the redirect then skips even this call. */
  readonly active: boolean;
  take(code: string, req: ClickRequest): void;
}

/** What holds clicks not yet written: the process flushes it and closes it, and stats ask it. */
export interface ClickSink {
  readonly active: boolean;
  /** Writes everything buffered so far. */
  flush(): Promise<void>;
  /** Flushes and stops; after it, new clicks are dropped. */
  close(): Promise<void>;
  /**
   * Writes everything held into the rollups and visit lists, where a sink holds clicks it has
   * stored but not summed (the embedded writer between folds); other sinks just flush.
   */
  settle?(): Promise<void>;
  /** A link's clicks held in this process that its stored total lacks yet (a sink that folds them later). */
  heldClicks?(code: string): number;
  /** Stats with the clicks this sink holds counted in step with the rollups. */
  clickStats(query: StatsQuery): Promise<ClickStats>;
}

/** A sink of enriched events, on the redirect's thread. */
export interface EventSink extends Omit<ClickSink, 'clickStats'> {
  /** Never blocks and never throws: a full sink drops and counts. */
  record(event: ClickEvent): void;
  /** Clicks held here that stats must count too (a sink that folds them later). */
  heldFor?(query: StatsQuery): PendingClicks;
}

/** Stats from the store, the sink's held clicks (if any) counted in the same statements. */
export function statsCounting(
  store: Pick<ClickStore, 'clickStats'>,
  sink: Pick<EventSink, 'heldFor'>,
  query: StatsQuery,
): Promise<ClickStats> {
  if (sink.heldFor === undefined) return store.clickStats(query);
  return store.clickStats({ ...query, pending: () => sink.heldFor!(query) });
}

/** Clicks go nowhere; stats read the store. */
export function noClickSink(store: Pick<ClickStore, 'clickStats'>): ClickSink & ClickIntake {
  return {
    active: false,
    take() {},
    async flush() {},
    async close() {},
    clickStats: (q) => store.clickStats(q),
  };
}
