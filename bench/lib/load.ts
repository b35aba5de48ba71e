// Pieces the open- and closed-loop generators share: the request a scenario hands them, and the sweep
// that turns a silent server into counted timeouts instead of a run that never ends.
import type { HttpConnection, RequestSpec, Target } from './http-client.ts';
import type { Expect } from './recorder.ts';

export interface BenchRequest extends RequestSpec {
  /** What counts as a correct answer; 200 when absent. */
  expect?: Expect;
  /** Latency is also kept per kind when set (the read/write mix reports reads and writes apart). */
  kind?: string;
}

/** Builds request number `i` of a run; called on the hot path, so it should not allocate much. */
export type RequestFactory = (i: number) => BenchRequest;

export interface CommonRunOptions {
  target: Target;
  label: string;
  connections: number;
  durationS: number;
  /** Hard cap on measured requests, so that no run is unbounded even at an absurd rate. */
  maxRequests: number;
  request: RequestFactory;
  /** A discarded lead-in on the same connections: JIT, caches and pools warm up outside the window. */
  warmupS?: number;
  /** A request unanswered after this long fails as a timeout. */
  timeoutMs?: number;
  /** Once-a-second progress line on stderr. */
  progress?: boolean;
  /** Called as the measured window starts, after the warm-up (e.g. to read the server's CPU then). */
  onMeasureStart?: () => void;
}

export const DEFAULT_TIMEOUT_MS = 10_000;

/** One timer for all connections: a per-request timer would cost more than the request. */
export function startTimeoutSweep(conns: readonly HttpConnection[], timeoutMs: number): () => void {
  const timer = setInterval(
    () => {
      const now = performance.now();
      for (const c of conns) c.expire(now, timeoutMs);
    },
    Math.min(250, Math.max(10, timeoutMs / 4)),
  );
  return () => clearInterval(timer);
}
