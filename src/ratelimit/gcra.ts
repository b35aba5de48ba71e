// GCRA arithmetic shared by the in-process limiter and the Redis one (whose Lua script makes the
// same decision on the Redis server's clock): whole microseconds, so bursts are exact.

/** The emission interval and the burst tolerance of a policy, in µs. */
export function gcraParams(policy: { perSecond: number; burst: number }): {
  interval: number;
  tolerance: number;
} {
  // A rate over 10⁶/s is not a limit anyway.
  const interval = Math.max(1, Math.round(1_000_000 / policy.perSecond));
  return { interval, tolerance: interval * (policy.burst - 1) };
}

/** The answer, from how far the theoretical arrival time leads now (µs) after the decision. */
export function gcraDecision(
  allowed: boolean,
  ahead: number,
  interval: number,
  tolerance: number,
): { allowed: boolean; remaining: number; resetSeconds: number; retryAfterSeconds: number } {
  const resetSeconds = Math.ceil(ahead / 1_000_000);
  if (!allowed) {
    return {
      allowed: false,
      remaining: 0,
      resetSeconds,
      retryAfterSeconds: Math.max(1, Math.ceil((ahead - tolerance) / 1_000_000)),
    };
  }
  return {
    allowed: true,
    remaining: Math.max(0, Math.floor((tolerance - ahead) / interval) + 1),
    resetSeconds,
    retryAfterSeconds: 0,
  };
}
