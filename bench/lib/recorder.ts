// What both generators count while they run, and the result shape every report reads.
// Kept apart from the generators so that open- and closed-loop numbers mean exactly the same thing.
import { type CurvePoint, LatencyHistogram, type LatencySummary } from './histogram.ts';
import { ERROR_KINDS, type ErrorKind } from './http-client.ts';

/** What a request counts as a correct answer: any 3xx, or one exact status. */
export type Expect = 'redirect' | number;

export interface TimelinePoint {
  /** Seconds since the measured window opened. */
  t: number;
  completed: number;
  /** Responses per second over the part of this second inside the window (the last one is partial). */
  rate: number;
  errors: number;
  maxMs: number;
}

export interface GeneratorOverhead {
  /** CPU the generator process used (user + system) during the measured window. */
  cpuMs: number;
  /** That CPU as a percentage of one core over the window's wall time. */
  cpuPercent: number;
  /** Open loop only: how late the generator noticed that a request was due (its own scheduling lag). */
  lag: LatencySummary | null;
  /** Open loop only: the most requests that were due but waiting for a free connection at once. */
  maxBacklog: number | null;
}

export interface ServerStats {
  pid: number;
  rssKbBefore: number | null;
  rssKbAfter: number | null;
  /** CPU the server used during the run, as a percentage of one core. */
  cpuPercent: number | null;
  /**
   * The same, of its main thread (which answers requests) and of its busiest other thread (for Hop
   * on its embedded database: that database's thread); null where unavailable.
   */
  threads?: { mainPercent: number; busiestOtherPercent: number } | null;
  /** Share of the whole machine's CPU time (all cores) that nothing used during the run. */
  machineIdlePercent?: number | null;
}

export interface RunResult {
  label: string;
  mode: 'open-loop' | 'closed-loop';
  connections: number;
  /** Open loop: the fixed arrival rate asked for. */
  targetRate: number | null;
  /** Requests the schedule called for (open loop) or that were sent (closed loop). */
  scheduled: number;
  completed: number;
  /** Wall time of the measured window, in seconds. */
  elapsedS: number;
  achievedRate: number;
  latency: LatencySummary;
  /**
   * From the actual send to the response, without the wait for a free connection or the generator's
   * own lateness: what a closed-loop tool would report. Equal to `latency` in closed-loop runs.
   */
  serviceTime: LatencySummary;
  latencyByKind: Record<string, LatencySummary>;
  curve: CurvePoint[];
  statusCounts: Record<string, number>;
  errors: Record<ErrorKind, number>;
  errorCount: number;
  /** Answers whose status did not match what the request expected. */
  unexpected: number;
  expectation: string;
  /** Requests still unanswered when the run's drain deadline passed (also counted as timeouts). */
  unfinished: number;
  generator: GeneratorOverhead;
  timeline: TimelinePoint[];
  server: ServerStats | null;
}

// Results are plain JSON; the full histogram behind one stays reachable for tests and merges.
const histograms = new WeakMap<RunResult, LatencyHistogram>();

export function histogramOf(r: RunResult): LatencyHistogram | undefined {
  return histograms.get(r);
}

export function describeExpect(e: Expect): string {
  return e === 'redirect' ? '3xx' : String(e);
}

export function emptyErrors(): Record<ErrorKind, number> {
  const e = {} as Record<ErrorKind, number>;
  for (const k of ERROR_KINDS) e[k] = 0;
  return e;
}

export class Recorder {
  readonly histogram = new LatencyHistogram();
  readonly #service = new LatencyHistogram();
  readonly #byKind = new Map<string, LatencyHistogram>();
  readonly #status = new Map<number, number>();
  readonly errors = emptyErrors();
  errorCount = 0;
  completed = 0;
  unexpected = 0;
  readonly #expectations = new Set<string>();
  #lastExpect: Expect | null = null;
  #t0 = 0;
  #cpu0: NodeJS.CpuUsage = process.cpuUsage();
  #secCompleted: number[] = [];
  #secErrors: number[] = [];
  #secMax: number[] = [];

  /** Opens the measured window; timeline seconds count from here. */
  start(now: number): void {
    this.#t0 = now;
    this.#cpu0 = process.cpuUsage();
  }

  get startedAt(): number {
    return this.#t0;
  }

  response(
    now: number,
    latencyMs: number,
    serviceMs: number,
    status: number,
    expect: Expect,
    kind: string | undefined,
  ): void {
    this.completed++;
    this.histogram.recordMillis(latencyMs);
    this.#service.recordMillis(serviceMs);
    if (kind !== undefined) {
      let h = this.#byKind.get(kind);
      if (h === undefined) {
        h = new LatencyHistogram();
        this.#byKind.set(kind, h);
      }
      h.recordMillis(latencyMs);
    }
    this.#status.set(status, (this.#status.get(status) ?? 0) + 1);
    if (expect !== this.#lastExpect) {
      this.#lastExpect = expect;
      this.#expectations.add(describeExpect(expect));
    }
    const ok = expect === 'redirect' ? status >= 300 && status < 400 : status === expect;
    if (!ok) this.unexpected++;
    const sec = Math.floor((now - this.#t0) / 1000);
    if (sec >= 0) {
      this.#secCompleted[sec] = (this.#secCompleted[sec] ?? 0) + 1;
      if (latencyMs > (this.#secMax[sec] ?? 0)) this.#secMax[sec] = latencyMs;
    }
  }

  error(now: number, kind: ErrorKind): void {
    this.errorCount++;
    this.errors[kind]++;
    const sec = Math.floor((now - this.#t0) / 1000);
    if (sec >= 0) this.#secErrors[sec] = (this.#secErrors[sec] ?? 0) + 1;
  }

  cpuMsSinceStart(): number {
    const d = process.cpuUsage(this.#cpu0);
    return (d.user + d.system) / 1000;
  }

  finish(fields: {
    label: string;
    mode: RunResult['mode'];
    connections: number;
    targetRate: number | null;
    scheduled: number;
    unfinished: number;
    elapsedS: number;
    expect: Expect;
    lag: LatencySummary | null;
    maxBacklog: number | null;
  }): RunResult {
    const cpuMs = this.cpuMsSinceStart();
    const statusCounts: Record<string, number> = {};
    for (const [k, v] of [...this.#status].sort((a, b) => a[0] - b[0])) statusCounts[String(k)] = v;
    const latencyByKind: Record<string, LatencySummary> = {};
    for (const [k, h] of this.#byKind) latencyByKind[k] = h.summary();
    const seconds = Math.max(this.#secCompleted.length, this.#secErrors.length);
    const timeline: TimelinePoint[] = [];
    for (let i = 0; i < seconds; i++) {
      const span = Math.min(1, fields.elapsedS - i);
      // A sliver of a last second would chart as a collapse in throughput that never happened.
      if (span < 0.25 && i > 0) break;
      timeline.push({
        t: i,
        completed: this.#secCompleted[i] ?? 0,
        rate: (this.#secCompleted[i] ?? 0) / Math.max(span, 0.25),
        errors: this.#secErrors[i] ?? 0,
        maxMs: this.#secMax[i] ?? 0,
      });
    }
    const expectation =
      this.#expectations.size > 0 ? [...this.#expectations].join(' or ') : describeExpect(fields.expect);
    const result: RunResult = {
      label: fields.label,
      mode: fields.mode,
      connections: fields.connections,
      targetRate: fields.targetRate,
      scheduled: fields.scheduled,
      completed: this.completed,
      elapsedS: fields.elapsedS,
      achievedRate: fields.elapsedS > 0 ? this.completed / fields.elapsedS : 0,
      latency: this.histogram.summary(),
      serviceTime: this.#service.summary(),
      latencyByKind,
      curve: this.histogram.curve(),
      statusCounts,
      errors: { ...this.errors },
      errorCount: this.errorCount,
      unexpected: this.unexpected,
      expectation,
      unfinished: fields.unfinished,
      generator: {
        cpuMs,
        cpuPercent: fields.elapsedS > 0 ? cpuMs / (fields.elapsedS * 10) : 0,
        lag: fields.lag,
        maxBacklog: fields.maxBacklog,
      },
      timeline,
      server: null,
    };
    histograms.set(result, this.histogram);
    return result;
  }
}

/** Once-a-second status line on stderr; the timer is unref'd so it never keeps a run alive. */
export function startProgress(enabled: boolean, line: () => string): () => void {
  if (!enabled) return () => {};
  const timer = setInterval(() => process.stderr.write(`${line()}\n`), 1000);
  timer.unref();
  return () => clearInterval(timer);
}
