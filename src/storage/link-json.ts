// A link as plain JSON (outbox payloads, idempotency snapshots, export/import lines).
import type { Link, RedirectType } from '../domain/link.ts';
import { type RedirectRule, rulesFromJson } from '../domain/redirect-rules.ts';

export interface LinkJson {
  code: string;
  /** Absent (or '') on the default domain, and in what Hop wrote before it had domains. */
  domain?: string;
  bucket: number;
  url: string;
  redirectType: number;
  forwardQuery: boolean;
  expiresAt: string | null;
  /** Absent in what Hop wrote before links had it. */
  validSince?: string | null;
  maxClicks: number | null;
  usedClicks: number;
  disabled: boolean;
  deletedAt: string | null;
  tags: string[];
  title: string | null;
  createdAt: string;
  updatedAt: string;
  /** Absent in what Hop wrote before links had rules. */
  rules?: RedirectRule[] | null;
  expiredUrl?: string | null;
  passwordHash?: string | null;
  crawlable?: boolean;
}

const iso = (d: Date | null) => (d === null ? null : d.toISOString());
const date = (s: string | null) => (s === null ? null : new Date(s));

export function linkToJson(l: Link): LinkJson {
  return {
    code: l.code,
    ...(l.domain === '' ? {} : { domain: l.domain }),
    bucket: l.bucket,
    url: l.url,
    redirectType: l.redirectType,
    forwardQuery: l.forwardQuery,
    expiresAt: iso(l.expiresAt),
    ...(l.validSince === null ? {} : { validSince: l.validSince.toISOString() }),
    maxClicks: l.maxClicks,
    usedClicks: l.usedClicks,
    disabled: l.disabled,
    deletedAt: iso(l.deletedAt),
    tags: [...l.tags],
    title: l.title,
    createdAt: l.createdAt.toISOString(),
    updatedAt: l.updatedAt.toISOString(),
    rules: l.rules === null ? null : [...l.rules],
    expiredUrl: l.expiredUrl,
    passwordHash: l.passwordHash,
    ...(l.crawlable ? { crawlable: true } : {}),
  };
}

export function linkFromJson(j: LinkJson): Link {
  return {
    code: j.code,
    domain: j.domain ?? '',
    bucket: j.bucket,
    url: j.url,
    redirectType: j.redirectType as RedirectType,
    forwardQuery: j.forwardQuery,
    expiresAt: date(j.expiresAt),
    validSince: date(j.validSince ?? null),
    maxClicks: j.maxClicks,
    usedClicks: j.usedClicks,
    disabled: j.disabled,
    deletedAt: date(j.deletedAt),
    tags: j.tags,
    title: j.title,
    createdAt: new Date(j.createdAt),
    updatedAt: new Date(j.updatedAt),
    rules: rulesFromJson(j.rules),
    expiredUrl: j.expiredUrl ?? null,
    passwordHash: j.passwordHash ?? null,
    crawlable: j.crawlable === true,
  };
}

/** Rules as text that does not depend on the order of a condition's keys (a database may reorder them). */
function canonicalRules(rules: Link['rules']): string {
  if (rules === null) return 'null';
  return JSON.stringify(
    rules.map((r) => [r.url, r.conditions.map((c) => [c.type, c.key ?? null, c.value ?? null])]),
  );
}

/** Two links are the same mapping when everything but counters and timestamps agrees. */
export function sameMapping(a: Link, b: Link): boolean {
  return (
    a.code === b.code &&
    a.domain === b.domain &&
    a.crawlable === b.crawlable &&
    a.url === b.url &&
    a.redirectType === b.redirectType &&
    a.forwardQuery === b.forwardQuery &&
    (a.expiresAt?.getTime() ?? null) === (b.expiresAt?.getTime() ?? null) &&
    (a.validSince?.getTime() ?? null) === (b.validSince?.getTime() ?? null) &&
    a.maxClicks === b.maxClicks &&
    a.disabled === b.disabled &&
    (a.deletedAt === null) === (b.deletedAt === null) &&
    a.title === b.title &&
    a.tags.length === b.tags.length &&
    a.tags.every((t, i) => t === b.tags[i]) &&
    canonicalRules(a.rules) === canonicalRules(b.rules) &&
    a.expiredUrl === b.expiredUrl &&
    a.passwordHash === b.passwordHash
  );
}
