// Applies a rate policy to a request: standard RateLimit headers on every answer, and a
// 429 `rate_limited` with Retry-After when the budget is spent.
import type { FastifyReply } from 'fastify';
import type { Deps } from '../deps.ts';
import { HopError } from '../domain/errors.ts';
import type { RatePolicy } from '../ratelimit/rate-limiter.ts';

export async function enforceRateLimit(deps: Deps, reply: FastifyReply, policy: RatePolicy, key: string) {
  if (!deps.config.rateLimits) return;
  const d = await deps.rateLimiter.take(policy, key);
  // IETF httpapi RateLimit header fields: quota per window, remaining and seconds to reset.
  const window = Math.max(1, Math.ceil(policy.burst / policy.perSecond));
  reply.header('ratelimit-policy', `"${policy.name}";q=${policy.burst};w=${window}`);
  reply.header('ratelimit', `"${policy.name}";r=${d.remaining};t=${d.resetSeconds}`);
  if (!d.allowed) {
    deps.metrics.rateLimited(policy.name);
    throw new HopError('rate_limited', `Too many requests; retry in ${d.retryAfterSeconds} s.`, {
      headers: { 'retry-after': String(d.retryAfterSeconds) },
    });
  }
}

export function policies(deps: Deps) {
  const c = deps.config;
  return {
    api: { name: 'api', ...c.rateLimitApi },
    create: { name: 'create', ...c.rateLimitCreate },
    redirect: c.rateLimitRedirect === null ? null : { name: 'redirect', ...c.rateLimitRedirect },
  } satisfies Record<string, RatePolicy | null>;
}
