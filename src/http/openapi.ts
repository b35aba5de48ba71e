// What the OpenAPI document says about failures: the problem+json schema, and error responses
// built from error codes, so each status and its description come from the one error table.
import { type ErrorCode, errorTable } from '../domain/errors.ts';

export const problemSchema = {
  $id: 'Problem',
  type: 'object',
  required: ['type', 'title', 'status', 'detail', 'code', 'requestId'],
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    code: { type: 'string', enum: Object.keys(errorTable), description: 'Stable machine code' },
    requestId: { type: 'string' },
    field: { type: 'string', description: 'The request field (or header) at fault, when there is one' },
  },
} as const;

/** What any authenticated request may answer: no or a bad key, its budget spent, the store down. */
export const AUTHENTICATED = [
  'unauthorized',
  'rate_limited',
  'internal_error',
  'unavailable',
] as const satisfies readonly ErrorCode[];

/**
 * A change made with the dashboard's session cookie must also carry the session's CSRF token; a
 * change whose commit could not be confirmed answers write_in_doubt (settled by a retry).
 */
export const AUTHENTICATED_CHANGE = [
  ...AUTHENTICATED,
  'csrf_failed',
  'write_in_doubt',
] as const satisfies readonly ErrorCode[];

/** What a request with a body may answer before its handler runs (Fastify reads DELETE bodies too). */
export const WITH_BODY = [
  'validation_failed',
  'payload_too_large',
  'unsupported_media_type',
] as const satisfies readonly ErrorCode[];

const RETRY_AFTER = { 'retry-after': { type: 'integer', description: 'Seconds to wait before retrying' } };
const WITH_RETRY_AFTER = new Set<ErrorCode>(['rate_limited', 'unavailable', 'write_in_doubt']);

/**
 * Route-schema responses for these codes: one per status, described by its codes and their titles,
 * as application/problem+json. Errors are sent pre-rendered, so these schemas only document.
 */
export function problemResponses(...codes: readonly ErrorCode[]): Record<number, object> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set(codes)) {
    const { status } = errorTable[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return Object.fromEntries(
    [...byStatus].map(([status, sameStatus]) => [
      status,
      {
        description: sameStatus.map((c) => `\`${c}\`: ${errorTable[c].title}`).join('; '),
        ...(sameStatus.some((c) => WITH_RETRY_AFTER.has(c)) ? { headers: RETRY_AFTER } : {}),
        content: { 'application/problem+json': { schema: { $ref: 'Problem#' } } },
      },
    ]),
  );
}
