// Exponential backoff with full jitter: the delay is drawn uniformly from [0, min(cap, base·2^n)),
// so retries from many workers after one outage spread out instead of arriving in waves.

export function fullJitterMs(attempt: number, baseMs: number, capMs: number, random = Math.random): number {
  return random() * Math.min(capMs, baseMs * 2 ** attempt);
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
