// The link record and the rules that decide a redirect from it (DESIGN §4). No I/O here.

import type { RedirectRule } from './redirect-rules.ts';

export const REDIRECT_TYPES = [301, 302, 307, 308] as const;
export type RedirectType = (typeof REDIRECT_TYPES)[number];

/** Everything a redirect decision needs; a cache entry holds exactly this. */
export interface RedirectRecord {
  readonly code: string;
  /** The link's domain: a registered host, or '' for the default domain (domain/domains.ts). */
  readonly domain: string;
  readonly url: string;
  readonly redirectType: RedirectType;
  readonly forwardQuery: boolean;
  readonly expiresAt: Date | null;
  /** Before this time the link answers as if it did not exist (null: from its creation). */
  readonly validSince: Date | null;
  readonly maxClicks: number | null;
  readonly disabled: boolean;
  readonly deletedAt: Date | null;
  /** Redirect rules in order, or null (the link's url for everyone). */
  readonly rules: readonly RedirectRule[] | null;
  /** Where an expired, used-up or disabled link sends visitors instead of answering 410; null: 410. */
  readonly expiredUrl: string | null;
  /** The link's password as a scrypt hash (links/link-password.ts), or null when it has none. */
  readonly passwordHash: string | null;
}

export interface Link extends RedirectRecord {
  readonly bucket: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly tags: readonly string[];
  readonly title: string | null;
  /** Whether the domain's robots.txt lets crawlers follow it. */
  readonly crawlable: boolean;
  /** Redirects counted against maxClicks (exact, for limited links only). */
  readonly usedClicks: number;
}

/** What the record alone decides. A maxClicks link must still win its atomic increment. */
export type RedirectDecision = 'redirect' | 'not_found' | 'expired' | 'disabled';

// Returns a string, not an object: this runs on every redirect and should not allocate.
export function decideRedirect(record: RedirectRecord | null, now: number): RedirectDecision {
  if (record === null || record.deletedAt !== null) return 'not_found';
  if (record.validSince !== null && record.validSince.getTime() > now) return 'not_found';
  if (record.disabled) return 'disabled';
  if (record.expiresAt !== null && record.expiresAt.getTime() <= now) return 'expired';
  return 'redirect';
}

export type LinkStatus = 'active' | 'scheduled' | 'expired' | 'disabled' | 'used_up';

export function linkStatus(link: Link, now: number): LinkStatus {
  if (link.disabled) return 'disabled';
  if (link.validSince !== null && link.validSince.getTime() > now) return 'scheduled';
  if (link.expiresAt !== null && link.expiresAt.getTime() <= now) return 'expired';
  if (link.maxClicks !== null && link.usedClicks >= link.maxClicks) return 'used_up';
  return 'active';
}
