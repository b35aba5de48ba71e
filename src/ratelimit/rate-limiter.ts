// The RateLimiter port. GCRA semantics: `perSecond` sustained, `burst` requests at once.
// In-process here; the Redis tier runs the same algorithm in a Lua script.

export interface RatePolicy {
  readonly name: string;
  readonly perSecond: number;
  readonly burst: number;
}

export interface RateDecision {
  readonly allowed: boolean;
  /** Requests that could be made right now. */
  readonly remaining: number;
  /** Seconds until the bucket is full again. */
  readonly resetSeconds: number;
  /** Seconds to wait before retrying (0 when allowed). */
  readonly retryAfterSeconds: number;
}

export interface RateLimiter {
  take(policy: RatePolicy, key: string): Promise<RateDecision> | RateDecision;
}
