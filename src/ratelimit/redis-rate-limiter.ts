// Rate limits shared by every Hop process through Redis (one server or a Redis Cluster): the same GCRA
// as the in-process limiter, run by one Lua script per request on the Redis server's clock. While
// Redis fails, each process answers from its own in-process limiter: approximate (every process then
// grants a full budget of its own), but an outage never blocks or slows requests.
import type { RedisClient } from '../redis/connect-redis.ts';
import { type BreakerState, CircuitBreaker } from '../resilience/circuit-breaker.ts';
import { gcraDecision, gcraParams } from './gcra.ts';
import type { RateDecision, RateLimiter, RatePolicy } from './rate-limiter.ts';

/**
 * One bucket per key, holding its theoretical arrival time (TAT) in whole microseconds of Redis's
 * clock, so that every sum below is exact. KEYS[1]: the bucket; ARGV: emission interval and burst
 * tolerance, both in µs. Returns {1 allowed | 0 refused, TAT − now in µs} (the new TAT when allowed).
 * The bucket expires when it would be full again, so Redis holds only active clients.
 */
const GCRA_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
if now < tat - tolerance then return {0, tat - now} end
local new = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', new), 'PX', math.ceil((new - now) / 1000))
return {1, new - now}
`;

const COMMAND = 'hopRateLimitTake';

/** The command ioredis defines from the script: EVALSHA, and EVAL once when Redis lost the script. */
interface WithTakeCommand {
  [COMMAND](key: string, intervalUs: number, toleranceUs: number): Promise<[number, number]>;
}

export interface RedisRateLimiterOptions {
  /**
   * Answers while Redis fails: a per-process limiter (the composition root passes a MemoryRateLimiter;
   * adapters here do not import each other).
   */
  readonly fallback: RateLimiter;
  /** Called once for each request the fallback answered (Redis failed, or the breaker skipped it). */
  readonly onFallback?: () => void;
  /** Default: opens on the first failure and tries Redis again 1 s later. */
  readonly breaker?: CircuitBreaker;
}

export class RedisRateLimiter implements RateLimiter {
  private readonly redis: RedisClient & WithTakeCommand;
  private readonly fallback: RateLimiter;
  private readonly onFallback: () => void;
  private readonly breaker: CircuitBreaker;

  constructor(redis: RedisClient, opts: RedisRateLimiterOptions) {
    // Defining it again on a shared client (a second limiter) replaces it with the same script.
    redis.defineCommand(COMMAND, { numberOfKeys: 1, lua: GCRA_SCRIPT });
    this.redis = redis as RedisClient & WithTakeCommand;
    this.fallback = opts.fallback;
    this.onFallback = opts.onFallback ?? (() => {});
    this.breaker = opts.breaker ?? new CircuitBreaker({ failureThreshold: 1, coolDownMs: 1_000 });
  }

  get breakerState(): BreakerState {
    return this.breaker.state;
  }

  async take(policy: RatePolicy, key: string): Promise<RateDecision> {
    if (this.breaker.allow()) {
      const { interval, tolerance } = gcraParams(policy);
      try {
        // One key per (policy, client): the hash tag keeps it whole on a cluster, whatever the key holds.
        const [allowed, ahead] = await this.redis[COMMAND](
          `hop:rl:{${policy.name}:${key}}`,
          interval,
          tolerance,
        );
        this.breaker.success();
        return gcraDecision(allowed === 1, ahead, interval, tolerance);
      } catch {
        this.breaker.failure();
      }
    }
    this.onFallback();
    return this.fallback.take(policy, key);
  }
}
