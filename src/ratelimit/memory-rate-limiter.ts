// GCRA in process memory: one number per key (the theoretical arrival time, µs). Keys are swept
// once their bucket is full again, so memory follows active clients, not all clients ever seen.
import { gcraDecision, gcraParams } from './gcra.ts';
import type { RateDecision, RateLimiter, RatePolicy } from './rate-limiter.ts';

export class MemoryRateLimiter implements RateLimiter {
  private readonly tat = new Map<string, number>();
  private readonly now: () => number;
  private lastSweep = 0;

  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  take(policy: RatePolicy, key: string): RateDecision {
    const now = Math.round(this.now() * 1000);
    const { interval, tolerance } = gcraParams(policy);
    const k = `${policy.name}\u0000${key}`;
    const tat = Math.max(this.tat.get(k) ?? now, now);
    if (tat - now > tolerance) return gcraDecision(false, tat - now, interval, tolerance);
    const newTat = tat + interval;
    this.tat.set(k, newTat);
    this.sweep(now);
    return gcraDecision(true, newTat - now, interval, tolerance);
  }

  private sweep(now: number): void {
    if (now - this.lastSweep < 10_000_000) return;
    this.lastSweep = now;
    for (const [k, t] of this.tat) if (t <= now) this.tat.delete(k);
  }
}
