// Latency histogram for the bench: HdrHistogram in microseconds (1 µs .. 60 s, 3 significant digits),
// so percentiles stay exact to 0.1% whatever the sample count, at a fixed memory cost.
import * as hdr from 'hdr-histogram-js';

/** Values in milliseconds: what every report prints. */
export interface LatencySummary {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export interface CurvePoint {
  percentile: number;
  ms: number;
}

const LOWEST_US = 1;
const HIGHEST_US = 60_000_000;

// Percentiles for the HdrHistogram-style curve: dense towards the tail, where the story is.
const CURVE_PERCENTILES = [
  0, 10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 92.5, 95, 96, 97, 98, 99, 99.25, 99.5, 99.75, 99.9, 99.95,
  99.99, 99.995, 99.999, 100,
];

export class LatencyHistogram {
  // The pure-JS build: WebAssembly would need an async init and buys nothing at these rates.
  readonly #h = hdr.build({
    useWebAssembly: false,
    autoResize: false,
    lowestDiscernibleValue: LOWEST_US,
    highestTrackableValue: HIGHEST_US,
    numberOfSignificantValueDigits: 3,
  });

  /** Out-of-range values are clamped rather than dropped: a lost 90 s stall would flatter the tail. */
  recordMicros(us: number): void {
    const v = us < LOWEST_US ? LOWEST_US : us > HIGHEST_US ? HIGHEST_US : Math.round(us);
    this.#h.recordValue(v);
  }

  recordMillis(ms: number): void {
    this.recordMicros(ms * 1000);
  }

  get count(): number {
    return this.#h.totalCount;
  }

  /** Latency in ms at percentile p (0..100). */
  percentileMs(p: number): number {
    if (this.#h.totalCount === 0) return 0;
    return this.#h.getValueAtPercentile(p) / 1000;
  }

  /**
   * How many samples are at or above `ms`, to within the histogram's resolution: a binary search over
   * ranks, since the library exposes values by percentile but not counts by value.
   */
  countAtOrAboveMs(ms: number): number {
    const total = this.#h.totalCount;
    if (total === 0) return 0;
    const threshold = ms * 1000;
    let lo = 1;
    let hi = total + 1; // first rank whose value reaches the threshold; total + 1 means none does
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#h.getValueAtPercentile((100 * mid) / total) >= threshold) hi = mid;
      else lo = mid + 1;
    }
    return total + 1 - lo;
  }

  summary(): LatencySummary {
    const h = this.#h;
    if (h.totalCount === 0) return { count: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
    return {
      count: h.totalCount,
      mean: h.mean / 1000,
      p50: h.getValueAtPercentile(50) / 1000,
      p90: h.getValueAtPercentile(90) / 1000,
      p99: h.getValueAtPercentile(99) / 1000,
      p999: h.getValueAtPercentile(99.9) / 1000,
      max: h.maxValue / 1000,
    };
  }

  curve(): CurvePoint[] {
    if (this.#h.totalCount === 0) return [];
    return CURVE_PERCENTILES.map((percentile) => ({ percentile, ms: this.percentileMs(percentile) }));
  }

  add(other: LatencyHistogram): void {
    this.#h.add(other.#h);
  }

  reset(): void {
    this.#h.reset();
  }
}
