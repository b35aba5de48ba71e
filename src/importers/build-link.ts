// A link as another shortener describes it, checked into a Hop Link by the same rules as a create
// (URL policy, tags, title, limits), keeping its code, dates and expiry as they were (an expiry may
// lie in the past). A rule Hop cannot take is left out and reported, never changed to fit.
import { bucketOf } from '../domain/bucket.ts';
import { looksLikeCode, RESERVED_WORDS } from '../domain/codes.ts';
import { DEFAULT_DOMAIN, normalizeHost } from '../domain/domains.ts';
import { HopError, isHopError } from '../domain/errors.ts';
import type { Link } from '../domain/link.ts';
import { validateCreate } from '../domain/link-input.ts';
import { parseRules, type RedirectRule, RULE_LIMITS } from '../domain/redirect-rules.ts';
import type { UrlPolicy } from '../domain/url-policy.ts';
import type { SourceLink, SourceRule } from './source.ts';

export interface BuildContext {
  readonly policy: UrlPolicy;
  readonly now: number;
  /** Hop's default host: a source link on it lands on the default domain. */
  readonly defaultHost: string;
}

/** Where a source puts a link, as a stored domain ('' the default). */
export function storedDomain(host: string | null | undefined, defaultHost: string): string {
  if (host === null || host === undefined || host === '') return DEFAULT_DOMAIN;
  const h = normalizeHost(host, 'domain');
  return h === defaultHost ? DEFAULT_DOMAIN : h;
}

/** Why a code cannot be used as it is, or null. */
export function codeProblem(code: string): HopError | null {
  if (!looksLikeCode(code))
    return new HopError('invalid_alias', `"${code}" is not 1-64 characters of A-Z, a-z, 0-9, "_" and "-".`);
  if (RESERVED_WORDS.has(code.toLowerCase())) return new HopError('reserved_alias', `"${code}" is reserved.`);
  return null;
}

/** Each rule checked alone: the ones Hop accepts, and why each other one was left out. */
function checkRules(
  rules: readonly SourceRule[] | undefined,
  policy: UrlPolicy,
): { rules: RedirectRule[] | null; skipped: string[] } {
  const kept: RedirectRule[] = [];
  const skipped: string[] = [];
  (rules ?? []).forEach((r, i) => {
    if (kept.length >= RULE_LIMITS.maxRules) {
      skipped.push(`rule ${i + 1} (to ${r.url}) left out: Hop keeps at most ${RULE_LIMITS.maxRules} rules`);
      return;
    }
    try {
      kept.push(...parseRules([r], policy));
    } catch (e) {
      if (!isHopError(e)) throw e;
      skipped.push(`rule ${i + 1} (to ${r.url}) left out: ${e.detail}`);
    }
  });
  return { rules: kept.length === 0 ? null : kept, skipped };
}

/**
 * The Hop link for a source link under `code` (its own, or one drawn for it), with the notes of
 * what was left out. Throws a HopError when the link cannot be imported at all.
 */
export function buildLink(src: SourceLink, code: string, ctx: BuildContext): { link: Link; notes: string[] } {
  const { rules, skipped } = checkRules(src.rules, ctx.policy);
  const { fields } = validateCreate(
    {
      url: src.url,
      tags:
        src.tags === undefined
          ? undefined
          : [...new Set(src.tags.map((t) => t.trim()).filter((t) => t !== ''))],
      title: src.title === undefined || src.title === null || src.title.trim() === '' ? undefined : src.title,
      validSince: src.validSince?.toISOString(),
      maxClicks: src.maxClicks ?? undefined,
      forwardQuery: src.forwardQuery,
      crawlable: src.crawlable,
    },
    ctx.policy,
    ctx.now,
  );
  const createdAt = src.createdAt ?? new Date(ctx.now);
  return {
    link: {
      ...fields,
      rules,
      expiresAt: src.expiresAt ?? null,
      disabled: src.disabled === true,
      code,
      domain: storedDomain(src.domain, ctx.defaultHost),
      bucket: bucketOf(code),
      usedClicks: fields.maxClicks === null ? 0 : Math.max(0, Math.trunc(src.usedClicks ?? 0)),
      deletedAt: null,
      passwordHash: null,
      createdAt,
      updatedAt: createdAt,
    },
    notes: [...(src.notes ?? []), ...skipped],
  };
}
