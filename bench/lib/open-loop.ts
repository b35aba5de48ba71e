// Open-loop generator: requests arrive at a fixed rate whatever the server does, and each latency is
// measured from the request's intended send time, so time spent queued behind a stall is counted.
import { LatencyHistogram } from './histogram.ts';
import {
  encodeRequest,
  type HttpConnection,
  type HttpError,
  openConnections,
  type ParsedResponse,
} from './http-client.ts';
import { type CommonRunOptions, DEFAULT_TIMEOUT_MS, startTimeoutSweep } from './load.ts';
import { type Expect, Recorder, type RunResult, startProgress } from './recorder.ts';

export interface OpenLoopOptions extends CommonRunOptions {
  /** Requests per second. */
  rate: number;
  /**
   * Longest stretch (ms) the generator may sleep synchronously, event loop blocked, to hit a send time
   * precisely when nothing is in flight; 0 leaves all waiting to Node's millisecond timers. Precise
   * sleeping halves the generator's lag at a few percent of a core. Default 2.
   */
  preciseSleepMs?: number;
}

const DEFAULT_PRECISE_SLEEP_MS = 2;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

interface Slot {
  conn: HttpConnection;
  intended: number;
  sentAt: number;
  expect: Expect;
  kind: string | undefined;
  done: (err: HttpError | null, res: ParsedResponse | null) => void;
}

interface PhaseSpec {
  rate: number;
  durationS: number;
  maxRequests: number;
  indexBase: number;
  progress: boolean;
}

export async function runOpenLoop(opts: OpenLoopOptions): Promise<RunResult> {
  if (!(opts.rate > 0)) throw new Error('open loop needs a positive rate');
  const conns = await openConnections(opts.target, opts.connections);
  try {
    const warmupS = opts.warmupS ?? 0;
    let indexBase = 0;
    if (warmupS > 0) {
      const warmupCap = Math.max(1, Math.ceil(opts.rate * warmupS));
      await runPhase(conns, opts, new Recorder(), {
        rate: opts.rate,
        durationS: warmupS,
        maxRequests: warmupCap,
        indexBase: 0,
        progress: false,
      });
      indexBase = warmupCap;
    }
    opts.onMeasureStart?.();
    return await runPhase(conns, opts, new Recorder(), {
      rate: opts.rate,
      durationS: opts.durationS,
      maxRequests: opts.maxRequests,
      indexBase,
      progress: opts.progress ?? true,
    });
  } finally {
    for (const c of conns) c.close();
  }
}

function runPhase(
  conns: HttpConnection[],
  opts: OpenLoopOptions,
  rec: Recorder,
  phase: PhaseSpec,
): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const interval = 1000 / phase.rate;
  const total = Math.max(1, Math.min(phase.maxRequests, Math.floor(phase.rate * phase.durationS)));
  const lag = new LatencyHistogram();
  const hostHeader = conns[0]!.hostHeader;
  const preciseMs = opts.preciseSleepMs ?? DEFAULT_PRECISE_SLEEP_MS;

  return new Promise((resolve) => {
    const t0 = performance.now();
    rec.start(t0);
    // The schedule is implicit: request i is due at t0 + i * interval. Indices in [sent, due) are the
    // queue of requests waiting for a free connection, so queueing costs no memory at all.
    let due = 0;
    let sent = 0;
    let settled = 0;
    let maxBacklog = 0;
    let lastSettleAt = t0;
    let timer: NodeJS.Timeout | null = null;
    let finished = false;
    const idle: Slot[] = [];

    const onDone = (slot: Slot, err: HttpError | null, res: ParsedResponse | null): void => {
      if (finished) return;
      const now = performance.now();
      settled++;
      lastSettleAt = now;
      if (err !== null) rec.error(now, err.kind);
      else rec.response(now, now - slot.intended, now - slot.sentAt, res!.status, slot.expect, slot.kind);
      idle.push(slot);
      pump();
    };

    for (const conn of conns) {
      const slot: Slot = { conn, intended: 0, sentAt: 0, expect: 200, kind: undefined, done: () => {} };
      slot.done = (err, res) => onDone(slot, err, res);
      idle.push(slot);
    }

    const onTimer = (): void => {
      timer = null;
      pump();
    };

    // Called from the timer and from every completion: at high rates completions are the finer clock,
    // which keeps the generator's own lateness well under a millisecond without spinning.
    function pump(): void {
      for (;;) {
        if (finished) return;
        const now = performance.now();
        const newDue = Math.min(total, Math.floor((now - t0) / interval) + 1);
        for (let i = due; i < newDue; i++) lag.recordMillis(now - (t0 + i * interval));
        due = newDue;
        while (sent < due && idle.length > 0) {
          const slot = idle.pop()!;
          const i = sent++;
          const spec = opts.request(phase.indexBase + i);
          slot.intended = t0 + i * interval;
          slot.sentAt = now;
          slot.expect = spec.expect ?? 200;
          slot.kind = spec.kind;
          slot.conn.send(encodeRequest(spec, hostHeader), slot.done, now);
        }
        if (due - sent > maxBacklog) maxBacklog = due - sent;
        if (settled === total) {
          finish(now, 0);
          return;
        }
        if (due >= total) return;
        const wait = t0 + due * interval - performance.now();
        if (wait <= 0) continue;
        // Node's timers tick in whole milliseconds and fire up to a millisecond off. With nothing in
        // flight there is no response whose timestamp a blocking sleep could delay, so the last stretch
        // is slept precisely instead; otherwise a completion or the timer wakes the pump.
        if (wait <= preciseMs && idle.length === conns.length) {
          if (timer !== null) {
            clearTimeout(timer);
            timer = null;
          }
          Atomics.wait(sleeper, 0, 0, wait);
          continue;
        }
        if (timer !== null) return;
        // Aim a millisecond early when a precise sleep can finish the job.
        const early = preciseMs > 0 && wait > preciseMs + 1 ? wait - 1 : wait;
        timer = setTimeout(onTimer, Math.max(1, Math.floor(early)));
        return;
      }
    }

    const stopSweep = startTimeoutSweep(conns, timeoutMs);
    const stopProgress = startProgress(phase.progress, () => {
      const t = (performance.now() - t0) / 1000;
      return (
        `[${opts.label}] open-loop ${t.toFixed(0)}s/${phase.durationS}s` +
        ` sent=${sent} done=${rec.completed} rate=${phase.rate.toFixed(0)}/s` +
        ` p99=${rec.histogram.percentileMs(99).toFixed(2)}ms backlog=${due - sent} errors=${rec.errorCount}`
      );
    });
    // Past this point whatever is still queued or in flight is reported as unfinished, so a server
    // that never recovers still ends the run on time.
    const deadline = setTimeout(
      () => {
        const now = performance.now();
        const unfinished = total - settled;
        finish(now, unfinished);
      },
      phase.durationS * 1000 + timeoutMs + 1000,
    );

    function finish(now: number, unfinished: number): void {
      if (finished) return;
      finished = true;
      if (timer !== null) clearTimeout(timer);
      clearTimeout(deadline);
      stopSweep();
      stopProgress();
      for (let i = 0; i < unfinished; i++) rec.error(now, 'timeout');
      if (unfinished > 0) for (const c of conns) c.close();
      const end = unfinished > 0 ? now : lastSettleAt;
      resolve(
        rec.finish({
          label: opts.label,
          mode: 'open-loop',
          connections: conns.length,
          targetRate: phase.rate,
          scheduled: total,
          unfinished,
          elapsedS: (end - t0) / 1000,
          expect: 200,
          lag: lag.summary(),
          maxBacklog,
        }),
      );
    }

    pump();
  });
}
