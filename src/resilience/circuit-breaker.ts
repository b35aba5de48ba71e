// A small circuit breaker for calls to a server (Redis, each PostgreSQL server): after
// `failureThreshold` failures in a row it opens, so callers skip the server at once instead of
// paying a timeout per call; after a cool-down it lets one probe through (half-open), whose outcome
// closes or reopens it. With `maxCoolDownMs`, each failed probe doubles the cool-down up to that cap
// and every cool-down is drawn with full jitter, so the processes that lost one server do not
// all probe (and reconnect to) it in step when it returns.
import { fullJitterMs } from './backoff.ts';

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the breaker (1: the first failure does). */
  readonly failureThreshold: number;
  /** How long an open breaker refuses before it lets a probe through (the first bound, with a cap). */
  readonly coolDownMs: number;
  /**
   * Grow and jitter the cool-down: after the n-th failed probe in a row it is drawn uniformly from
   * [0, min(maxCoolDownMs, coolDownMs·2^n)). Without it every cool-down is coolDownMs exactly.
   */
  readonly maxCoolDownMs?: number;
  /** Told of every change of state. */
  readonly onChange?: (state: BreakerState) => void;
  /** Milliseconds; injectable for tests. */
  readonly now?: () => number;
  /** [0, 1); injectable for tests. */
  readonly random?: () => number;
}

export class CircuitBreaker {
  private current: BreakerState = 'closed';
  private failures = 0;
  /** Failed probes since the breaker last closed: the exponent of the cool-down's bound. */
  private reopened = 0;
  /** When the breaker last opened, or when the half-open probe went out. */
  private since = 0;
  /** The cool-down in force since then. */
  private wait: number;
  private readonly threshold: number;
  private readonly coolDownMs: number;
  private readonly maxCoolDownMs: number | null;
  private readonly onChange: ((state: BreakerState) => void) | null;
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(opts: CircuitBreakerOptions) {
    if (!Number.isInteger(opts.failureThreshold) || opts.failureThreshold < 1) {
      throw new RangeError(`failureThreshold must be an integer ≥ 1, got ${opts.failureThreshold}`);
    }
    if (!Number.isFinite(opts.coolDownMs) || opts.coolDownMs < 0) {
      throw new RangeError(`coolDownMs must be ≥ 0, got ${opts.coolDownMs}`);
    }
    const cap = opts.maxCoolDownMs;
    if (cap !== undefined && (!Number.isFinite(cap) || cap < opts.coolDownMs)) {
      throw new RangeError(`maxCoolDownMs must be ≥ coolDownMs (${opts.coolDownMs}), got ${cap}`);
    }
    this.threshold = opts.failureThreshold;
    this.coolDownMs = opts.coolDownMs;
    this.maxCoolDownMs = cap ?? null;
    this.wait = opts.coolDownMs;
    this.onChange = opts.onChange ?? null;
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
  }

  get state(): BreakerState {
    return this.current;
  }

  /** How long until a call would be let through: 0 when closed (or a probe is due). */
  retryInMs(): number {
    if (this.current === 'closed') return 0;
    return Math.max(0, this.since + this.wait - this.now());
  }

  /** Whether to make the call now. A true answer must be followed by success() or failure(). */
  allow(): boolean {
    if (this.current === 'closed') return true;
    // Open: wait out the cool-down. Half-open: one probe at a time, but a probe whose outcome never
    // came back (its caller threw before reporting) must not shut the server out for good.
    if (this.now() - this.since < this.wait) return false;
    this.since = this.now();
    this.set('half-open');
    return true;
  }

  success(): void {
    // A late success of a call made before the breaker opened says nothing about the server now.
    if (this.current === 'open') return;
    this.failures = 0;
    this.reopened = 0;
    this.set('closed');
  }

  failure(): void {
    if (this.current === 'open') return;
    this.failures++;
    if (this.current === 'half-open' || this.failures >= this.threshold) {
      if (this.current === 'half-open') this.reopened++;
      this.since = this.now();
      this.wait =
        this.maxCoolDownMs === null
          ? this.coolDownMs
          : fullJitterMs(this.reopened, this.coolDownMs, this.maxCoolDownMs, this.random);
      this.set('open');
    }
  }

  private set(state: BreakerState): void {
    if (state === this.current) return;
    this.current = state;
    this.onChange?.(state);
  }
}
