// Shlink's request bodies and query strings into Hop's domain values. Shlink's clients send numbers
// and booleans as strings at times, and fields Hop does not know: both are accepted (unknown keys
// are ignored, as Shlink does). A past validUntil is allowed (it expires the link), unlike Hop's own API.
import { ISO_DATE_TIME } from '../domain/date-time.ts';
import type { LinkFields } from '../domain/link-input.ts';
import { type CreateInput, type PatchInput, validateCreate, validatePatch } from '../domain/link-input.ts';
import type { UrlPolicy } from '../domain/url-policy.ts';
import type { LinkSearch } from '../storage/ports.ts';
import { invalidData } from './shlink-problem.ts';

type Body = Record<string, unknown>;

function int(v: unknown, field: string): number | null | undefined {
  if (v === undefined) return undefined;
  if (v === null) return null;
  const n = typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n))
    throw invalidData(`"${field}" must be an integer.`, field);
  return n;
}

function bool(v: unknown, field: string): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === '1' || v === 1) return true;
  if (v === 'false' || v === '0' || v === 0) return false;
  throw invalidData(`"${field}" must be true or false.`, field);
}

/** A date-time in ISO 8601 or ATOM form, any time (past or future). */
function when(v: unknown, field: string): Date | null | undefined {
  if (v === undefined) return undefined;
  if (v === null || v === '') return null;
  if (typeof v !== 'string' || !ISO_DATE_TIME.test(v) || Number.isNaN(Date.parse(v)))
    throw invalidData(`"${field}" must be an ISO 8601 date-time.`, field);
  return new Date(Date.parse(v));
}

function strOrNull(v: unknown, field: string): string | null | undefined {
  if (v === undefined) return undefined;
  if (v === null) return null;
  if (typeof v !== 'string') throw invalidData(`"${field}" must be a string.`, field);
  return v;
}

/** The Hop-shaped part of a Shlink create or edit body (validated by Hop's own rules). */
function hopInput(b: Body): CreateInput & PatchInput {
  const out: Record<string, unknown> = {};
  if ('longUrl' in b) out.url = b.longUrl;
  if ('title' in b) out.title = strOrNull(b.title, 'title');
  if ('tags' in b) out.tags = b.tags;
  const crawlable = bool(b.crawlable, 'crawlable');
  if (crawlable !== undefined) out.crawlable = crawlable;
  const forwardQuery = bool(b.forwardQuery, 'forwardQuery');
  if (forwardQuery !== undefined) out.forwardQuery = forwardQuery;
  const maxVisits = int(b.maxVisits, 'maxVisits');
  if (maxVisits !== undefined) out.maxClicks = maxVisits;
  return out;
}

export interface ShlinkCreate {
  readonly alias: string | null;
  readonly fields: LinkFields;
  readonly codeLength: number | undefined;
  readonly domain: unknown;
  readonly findIfExists: boolean;
}

export function parseCreate(body: unknown, policy: UrlPolicy, now: number): ShlinkCreate {
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw invalidData('Provided data is not valid', 'longUrl');
  const b = body as Body;
  if (typeof b.longUrl !== 'string' || b.longUrl === '')
    throw invalidData('Provided data is not valid', 'longUrl');
  const slug =
    b.customSlug === undefined || b.customSlug === null || b.customSlug === '' ? null : b.customSlug;
  if (slug !== null && typeof slug !== 'string')
    throw invalidData('"customSlug" must be a string.', 'customSlug');
  const codeLength = int(b.shortCodeLength, 'shortCodeLength') ?? undefined;
  if (codeLength !== undefined && (codeLength < 4 || codeLength > 64))
    throw invalidData('"shortCodeLength" must be from 4 to 64.', 'shortCodeLength');
  const { alias, fields } = validateCreate({ ...hopInput(b), alias: slug }, policy, now);
  const validUntil = when(b.validUntil, 'validUntil') ?? null;
  const validSince = when(b.validSince, 'validSince') ?? null;
  return {
    alias,
    fields: { ...fields, expiresAt: validUntil, validSince },
    codeLength,
    domain: b.domain === '' ? undefined : b.domain,
    findIfExists: bool(b.findIfExists, 'findIfExists') ?? false,
  };
}

export function parseEdit(body: unknown, policy: UrlPolicy, now: number): Partial<LinkFields> {
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw invalidData('Provided data is not valid');
  const b = body as Body;
  const input = hopInput(b);
  const patch = Object.keys(input).length === 0 ? {} : validatePatch(input, policy, now);
  const validUntil = when(b.validUntil, 'validUntil');
  if (validUntil !== undefined) patch.expiresAt = validUntil;
  const validSince = when(b.validSince, 'validSince');
  if (validSince !== undefined) patch.validSince = validSince;
  return patch;
}

/** A query parameter given once or as a list (`tags[]=a&tags[]=b`, `tags=a`). */
function list(q: Record<string, unknown>, name: string): string[] {
  const v = q[`${name}[]`] ?? q[name];
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).map(String).filter((s) => s !== '');
}

const ORDER_FIELDS: Record<string, LinkSearch['order']['field']> = {
  dateCreated: 'createdAt',
  shortCode: 'code',
  longUrl: 'url',
  title: 'title',
  visits: 'clicks',
  nonBotVisits: 'humanClicks',
};

export interface ShlinkListQuery {
  readonly page: number;
  readonly perPage: number | null;
  readonly search: Omit<LinkSearch, 'offset' | 'limit' | 'domain'>;
  readonly domain: string | undefined;
}

export function parseListQuery(q: Record<string, unknown>, now: number): ShlinkListQuery {
  const page = int(q.page, 'page') ?? 1;
  if (page < 1) throw invalidData('"page" must be 1 or more.', 'page');
  const per = int(q.itemsPerPage, 'itemsPerPage') ?? 10;
  if (per === 0 || per < -1)
    throw invalidData('"itemsPerPage" must be -1 (all) or 1 or more.', 'itemsPerPage');
  let order: LinkSearch['order'] = { field: 'createdAt', desc: true };
  if (typeof q.orderBy === 'string' && q.orderBy !== '') {
    const [f = '', dir = 'ASC'] = q.orderBy.split('-');
    const field = ORDER_FIELDS[f];
    if (field === undefined || (dir !== 'ASC' && dir !== 'DESC'))
      throw invalidData('"orderBy" must be <field>-ASC or <field>-DESC.', 'orderBy');
    order = { field, desc: dir === 'DESC' };
  }
  const mode = (name: string) => {
    const v = q[name];
    if (v === undefined || v === 'any') return false;
    if (v === 'all') return true;
    throw invalidData(`"${name}" must be "any" or "all".`, name);
  };
  return {
    page,
    perPage: per === -1 ? null : per,
    search: {
      q: typeof q.searchTerm === 'string' && q.searchTerm !== '' ? q.searchTerm : null,
      tags: list(q, 'tags'),
      tagsAll: mode('tagsMode'),
      excludeTags: list(q, 'excludeTags'),
      excludeTagsAll: mode('excludeTagsMode'),
      order,
      createdFrom: when(q.startDate, 'startDate') ?? null,
      createdTo: when(q.endDate, 'endDate') ?? null,
      excludeUsedUp: bool(q.excludeMaxVisitsReached, 'excludeMaxVisitsReached') ?? false,
      expiredAt: bool(q.excludePastValidUntil, 'excludePastValidUntil') ? new Date(now) : null,
    },
    domain: typeof q.domain === 'string' && q.domain !== '' ? q.domain : undefined,
  };
}

export { list as queryList };

/** The most visits one page holds; `itemsPerPage=-1` (all) asks for pages of this size. */
export const MAX_VISITS_PER_PAGE = 10_000;

export interface ShlinkVisitsQuery {
  readonly page: number;
  readonly perPage: number;
  readonly from: number;
  readonly to: number;
  readonly excludeBots: boolean;
}

/** A visit list's query: page, itemsPerPage (-1: the most a page holds), startDate, endDate, excludeBots. */
export function parseVisitsQuery(q: Record<string, unknown>): ShlinkVisitsQuery {
  const page = int(q.page, 'page') ?? 1;
  if (page < 1) throw invalidData('"page" must be 1 or more.', 'page');
  const per = int(q.itemsPerPage, 'itemsPerPage') ?? -1;
  if (per === 0 || per < -1)
    throw invalidData('"itemsPerPage" must be -1 (all) or 1 or more.', 'itemsPerPage');
  const from = when(q.startDate, 'startDate');
  const to = when(q.endDate, 'endDate');
  return {
    page,
    perPage: per === -1 ? MAX_VISITS_PER_PAGE : Math.min(per, MAX_VISITS_PER_PAGE),
    from: from?.getTime() ?? 0,
    // endDate is inclusive in Shlink.
    to: to === null || to === undefined ? Number.MAX_SAFE_INTEGER : to.getTime() + 1,
    excludeBots: bool(q.excludeBots, 'excludeBots') ?? false,
  };
}
