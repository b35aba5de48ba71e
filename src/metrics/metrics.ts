// The Metrics port: what Hop counts, named once. The Prometheus adapter serves /metrics;
// the noop adapter keeps unit tests free of global state.

export type CacheResult = 'hit' | 'miss' | 'negative';
export type RedirectOutcome = 'redirect' | 'not_found' | 'gone';

export interface Metrics {
  redirect(outcome: RedirectOutcome): void;
  cacheLookup(tier: 'l1' | 'l2', result: CacheResult): void;
  loadCoalesced(): void;
  httpRequest(route: string, method: string, status: number, seconds: number): void;
  linkCreated(): void;
  clicksRecorded(n: number): void;
  clicksDropped(n: number): void;
  clickBatchWritten(events: number, seconds: number): void;
  clickBatchFailed(): void;
  rateLimited(policy: string): void;
  /** Prometheus text exposition. */
  render(): Promise<{ contentType: string; body: string }>;
}

export const noopMetrics: Metrics = {
  redirect() {},
  cacheLookup() {},
  loadCoalesced() {},
  httpRequest() {},
  linkCreated() {},
  clicksRecorded() {},
  clicksDropped() {},
  clickBatchWritten() {},
  clickBatchFailed() {},
  rateLimited() {},
  async render() {
    return { contentType: 'text/plain; version=0.0.4', body: '' };
  },
};
