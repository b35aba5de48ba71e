// Errors as Shlink reports them (RFC 7807 with Shlink's `type` URLs and extra members), so its
// clients recognise them: every Hop error on the /rest routes is turned into one here.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { type ErrorCode, errorTable, type HopError, isHopError } from '../domain/errors.ts';

const TYPE = 'https://shlink.io/api/error/';

/** Hop's field names as Shlink names them (invalidElements). */
const FIELD: Record<string, string> = {
  url: 'longUrl',
  alias: 'customSlug',
  expiresAt: 'validUntil',
  maxClicks: 'maxVisits',
  validSince: 'validSince',
  tags: 'tags',
  title: 'title',
  forwardQuery: 'forwardQuery',
  crawlable: 'crawlable',
  domain: 'domain',
};

const INVALID_DATA: ReadonlySet<ErrorCode> = new Set([
  'validation_failed',
  'invalid_url',
  'invalid_alias',
  'reserved_alias',
  'invalid_expiry',
  'invalid_cursor',
]);

export interface ShlinkProblem {
  readonly type: string;
  readonly title: string;
  readonly detail: string;
  readonly status: number;
  readonly [extra: string]: unknown;
}

/** A Shlink problem to throw from a route (for what has no Hop error code of its own). */
export class ShlinkError extends Error {
  readonly problem: ShlinkProblem;
  readonly headers: Record<string, string>;
  constructor(problem: ShlinkProblem, headers: Record<string, string> = {}) {
    super(problem.detail);
    this.problem = problem;
    this.headers = headers;
  }
}

export const invalidData = (detail: string, ...invalidElements: string[]) =>
  new ShlinkError({
    type: `${TYPE}invalid-data`,
    title: 'Invalid data',
    detail,
    status: 400,
    invalidElements,
  });

export const shortUrlNotFound = (shortCode: string, domain: string | null) =>
  new ShlinkError({
    type: `${TYPE}short-url-not-found`,
    title: 'Short URL not found',
    detail:
      domain === null
        ? `No URL found with short code "${shortCode}"`
        : `No URL found with short code "${shortCode}" for domain "${domain}"`,
    status: 404,
    shortCode,
    ...(domain === null ? {} : { domain }),
  });

export const domainNotFound = (authority: string) =>
  new ShlinkError({
    type: `${TYPE}domain-not-found`,
    title: 'Domain not found',
    detail: `Domain with authority "${authority}" could not be found`,
    status: 404,
    authority,
  });

export const tagNotFound = (tag: string) =>
  new ShlinkError({
    type: `${TYPE}tag-not-found`,
    title: 'Tag not found',
    detail: `Tag with name "${tag}" could not be found`,
    status: 404,
    tag,
  });

export const tagConflict = (oldName: string, newName: string) =>
  new ShlinkError({
    type: `${TYPE}tag-conflict`,
    title: 'Tag conflict',
    detail: `You cannot rename tag ${oldName} to ${newName}, because it already exists`,
    status: 409,
    oldName,
    newName,
  });

export const mercureNotConfigured = () =>
  new ShlinkError({
    type: `${TYPE}mercure-not-configured`,
    title: 'Mercure integration not configured',
    detail: 'This Shlink instance is not integrated with a mercure hub.',
    status: 501,
  });

export const missingAuthentication = () =>
  new ShlinkError({
    type: `${TYPE}missing-authentication`,
    title: 'Invalid authorization',
    detail: 'Expected one of the following authentication headers, ["X-Api-Key"], but none were provided',
    status: 401,
  });

export const invalidApiKey = () =>
  new ShlinkError({
    type: `${TYPE}invalid-api-key`,
    title: 'Invalid API key',
    detail: 'Provided API key does not exist or is invalid.',
    status: 401,
  });

/** Any error thrown on the /rest routes, as Shlink would answer it. */
export function toShlinkProblem(
  err: unknown,
  req: FastifyRequest,
): { problem: ShlinkProblem; headers: Record<string, string> } {
  if (err instanceof ShlinkError) return { problem: err.problem, headers: err.headers };
  if (isHopError(err)) return { problem: fromHopError(err, req), headers: { ...err.headers } };
  const e = err as {
    validation?: { instancePath?: string; params?: { missingProperty?: string } }[];
    statusCode?: number;
  };
  if (Array.isArray(e.validation)) {
    const v = e.validation[0];
    const field = v?.params?.missingProperty ?? v?.instancePath?.replace(/^\//, '').split('/')[0] ?? '';
    return {
      problem: invalidData('Provided data is not valid', ...(field === '' ? [] : [field])).problem,
      headers: {},
    };
  }
  if (e.statusCode === 415 || e.statusCode === 413 || e.statusCode === 400)
    return { problem: invalidData('Provided data is not valid').problem, headers: {} };
  return {
    problem: {
      type: `${TYPE}internal-error`,
      title: 'Internal error',
      detail: 'Hop could not complete the request.',
      status: 500,
    },
    headers: {},
  };
}

function fromHopError(err: HopError, req: FastifyRequest): ShlinkProblem {
  const field = typeof err.extra.field === 'string' ? err.extra.field : null;
  if (INVALID_DATA.has(err.code)) {
    const name = field === null ? null : (FIELD[field] ?? field);
    return { ...invalidData(err.detail, ...(name === null ? [] : [name])).problem };
  }
  if (err.code === 'alias_taken') {
    const slug = (req.body as { customSlug?: unknown } | undefined)?.customSlug;
    return {
      type: `${TYPE}non-unique-slug`,
      title: 'Invalid custom slug',
      detail: `Provided slug "${String(slug)}" is already in use.`,
      status: 400,
      customSlug: slug,
    };
  }
  if (err.code === 'unauthorized') return invalidApiKey().problem;
  const status = errorTable[err.code].status;
  return {
    type: `${TYPE}${err.code.replaceAll('_', '-')}`,
    title: errorTable[err.code].title,
    detail: err.detail,
    status,
  };
}

export function sendShlinkProblem(
  reply: FastifyReply,
  p: { problem: ShlinkProblem; headers: Record<string, string> },
) {
  return reply
    .code(p.problem.status)
    .headers(p.headers)
    .type('application/problem+json')
    .send(JSON.stringify(p.problem));
}
