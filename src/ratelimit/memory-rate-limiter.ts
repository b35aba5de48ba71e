// GCRA in process memory: one number per key (the theoretical arrival time). Keys are swept
// once their bucket is full again, so memory follows active clients, not all clients ever seen.
import type { RateDecision, RateLimiter, RatePolicy } from './rate-limiter.ts';

export class MemoryRateLimiter implements RateLimiter {
  private readonly tat = new Map<string, number>();
  private readonly now: () => number;
  private lastSweep = 0;

  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  take(policy: RatePolicy, key: string): RateDecision {
    const now = this.now();
    const interval = 1000 / policy.perSecond;
    const tolerance = interval * (policy.burst - 1);
    const k = `${policy.name}\u0000${key}`;
    const tat = Math.max(this.tat.get(k) ?? now, now);
    const allowAt = tat - tolerance;
    if (now < allowAt) {
      return {
        allowed: false,
        remaining: 0,
        resetSeconds: Math.ceil((tat - now) / 1000),
        retryAfterSeconds: Math.max(1, Math.ceil((allowAt - now) / 1000)),
      };
    }
    const newTat = tat + interval;
    this.tat.set(k, newTat);
    this.sweep(now);
    return {
      allowed: true,
      remaining: Math.max(0, Math.floor((now - (newTat - tolerance)) / interval) + 1),
      resetSeconds: Math.ceil((newTat - now) / 1000),
      retryAfterSeconds: 0,
    };
  }

  private sweep(now: number): void {
    if (now - this.lastSweep < 10_000) return;
    this.lastSweep = now;
    for (const [k, t] of this.tat) if (t <= now) this.tat.delete(k);
  }
}
