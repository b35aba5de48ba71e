import { MemoryRateLimiter } from '../../src/ratelimit/memory-rate-limiter.ts';
import { runRateLimiterConformance } from '../conformance/rate-limiter-conformance.ts';

runRateLimiterConformance('memory', async () => ({
  limiter: new MemoryRateLimiter(),
  close: async () => {},
}));
