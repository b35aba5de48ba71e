// A small circuit breaker for calls to a shared server (Redis): after `failureThreshold` failures in a
// row it opens, so callers skip the server at once instead of paying a timeout per call; after
// `coolDownMs` it lets one probe through (half-open), whose outcome closes or reopens it.

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the breaker (1: the first failure does). */
  readonly failureThreshold: number;
  /** How long an open breaker refuses before it lets a probe through. */
  readonly coolDownMs: number;
  /** Milliseconds; injectable for tests. */
  readonly now?: () => number;
}

export class CircuitBreaker {
  private current: BreakerState = 'closed';
  private failures = 0;
  /** When the breaker last opened, or when the half-open probe went out. */
  private since = 0;
  private readonly threshold: number;
  private readonly coolDownMs: number;
  private readonly now: () => number;

  constructor(opts: CircuitBreakerOptions) {
    if (!Number.isInteger(opts.failureThreshold) || opts.failureThreshold < 1) {
      throw new RangeError(`failureThreshold must be an integer ≥ 1, got ${opts.failureThreshold}`);
    }
    if (!Number.isFinite(opts.coolDownMs) || opts.coolDownMs < 0) {
      throw new RangeError(`coolDownMs must be ≥ 0, got ${opts.coolDownMs}`);
    }
    this.threshold = opts.failureThreshold;
    this.coolDownMs = opts.coolDownMs;
    this.now = opts.now ?? Date.now;
  }

  get state(): BreakerState {
    return this.current;
  }

  /** Whether to make the call now. A true answer must be followed by success() or failure(). */
  allow(): boolean {
    if (this.current === 'closed') return true;
    // Open: wait out the cool-down. Half-open: one probe at a time, but a probe whose outcome never
    // came back (its caller threw before reporting) must not shut the server out for good.
    if (this.now() - this.since < this.coolDownMs) return false;
    this.current = 'half-open';
    this.since = this.now();
    return true;
  }

  success(): void {
    // A late success of a call made before the breaker opened says nothing about the server now.
    if (this.current === 'open') return;
    this.current = 'closed';
    this.failures = 0;
  }

  failure(): void {
    if (this.current === 'open') return;
    this.failures++;
    if (this.current === 'half-open' || this.failures >= this.threshold) {
      this.current = 'open';
      this.since = this.now();
    }
  }
}
