// Closed-loop "max throughput" mode: C connections send back to back. Good for finding capacity;
// its latencies are measured from the actual send time and so hide queueing (coordinated omission),
// which is why every report labels them closed-loop.
import {
  encodeRequest,
  type HttpConnection,
  type HttpError,
  openConnections,
  type ParsedResponse,
} from './http-client.ts';
import { type CommonRunOptions, DEFAULT_TIMEOUT_MS, startTimeoutSweep } from './load.ts';
import { type Expect, Recorder, type RunResult, startProgress } from './recorder.ts';

export type ClosedLoopOptions = CommonRunOptions;

interface Slot {
  conn: HttpConnection;
  sentAt: number;
  expect: Expect;
  kind: string | undefined;
  done: (err: HttpError | null, res: ParsedResponse | null) => void;
}

/** After an error a connection pauses briefly, so a refused port is not hammered in a tight loop. */
const ERROR_BACKOFF_MS = 20;

export async function runClosedLoop(opts: ClosedLoopOptions): Promise<RunResult> {
  const conns = await openConnections(opts.target, opts.connections);
  try {
    const warmupS = opts.warmupS ?? 0;
    let indexBase = 0;
    if (warmupS > 0) {
      const warm = await runPhase(conns, opts, warmupS, opts.maxRequests, 0, false);
      indexBase = warm.scheduled;
    }
    opts.onMeasureStart?.();
    return await runPhase(conns, opts, opts.durationS, opts.maxRequests, indexBase, opts.progress ?? true);
  } finally {
    for (const c of conns) c.close();
  }
}

function runPhase(
  conns: HttpConnection[],
  opts: ClosedLoopOptions,
  durationS: number,
  maxRequests: number,
  indexBase: number,
  progress: boolean,
): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const rec = new Recorder();
  const hostHeader = conns[0]!.hostHeader;

  return new Promise((resolve) => {
    const t0 = performance.now();
    rec.start(t0);
    const endAt = t0 + durationS * 1000;
    let sent = 0;
    let settled = 0;
    let lastSettleAt = t0;
    let finished = false;

    const send = (slot: Slot): void => {
      const now = performance.now();
      if (finished || now >= endAt || sent >= maxRequests) {
        if (settled === sent) finish(lastSettleAt, 0);
        return;
      }
      const spec = opts.request(indexBase + sent++);
      slot.sentAt = now;
      slot.expect = spec.expect ?? 200;
      slot.kind = spec.kind;
      slot.conn.send(encodeRequest(spec, hostHeader), slot.done, now);
    };

    const onDone = (slot: Slot, err: HttpError | null, res: ParsedResponse | null): void => {
      if (finished) return;
      const now = performance.now();
      settled++;
      lastSettleAt = now;
      if (err !== null) {
        rec.error(now, err.kind);
        setTimeout(() => send(slot), ERROR_BACKOFF_MS);
        return;
      }
      const ms = now - slot.sentAt;
      rec.response(now, ms, ms, res!.status, slot.expect, slot.kind);
      send(slot);
    };

    const stopSweep = startTimeoutSweep(conns, timeoutMs);
    const stopProgress = startProgress(progress, () => {
      const t = (performance.now() - t0) / 1000;
      return (
        `[${opts.label}] closed-loop ${t.toFixed(0)}s/${durationS}s done=${rec.completed}` +
        ` rate=${(rec.completed / Math.max(t, 0.001)).toFixed(0)}/s` +
        ` p99=${rec.histogram.percentileMs(99).toFixed(2)}ms errors=${rec.errorCount}`
      );
    });
    const deadline = setTimeout(
      () => finish(performance.now(), sent - settled),
      durationS * 1000 + timeoutMs + 1000,
    );

    function finish(end: number, unfinished: number): void {
      if (finished) return;
      finished = true;
      clearTimeout(deadline);
      stopSweep();
      stopProgress();
      for (let i = 0; i < unfinished; i++) rec.error(end, 'timeout');
      if (unfinished > 0) for (const c of conns) c.close();
      resolve(
        rec.finish({
          label: opts.label,
          mode: 'closed-loop',
          connections: conns.length,
          targetRate: null,
          scheduled: sent,
          unfinished,
          elapsedS: (end - t0) / 1000,
          expect: 200,
          lag: null,
          maxBacklog: null,
        }),
      );
    }

    for (const conn of conns) {
      const slot: Slot = { conn, sentAt: 0, expect: 200, kind: undefined, done: () => {} };
      slot.done = (err, res) => onDone(slot, err, res);
      send(slot);
    }
  });
}
