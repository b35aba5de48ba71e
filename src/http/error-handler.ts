// Maps every failure to problem+json: HopErrors by their code, Fastify's own errors (schema,
// body size, media type) to the matching Hop code, anything else to a logged 500.
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import { type ErrorCode, isHopError } from '../domain/errors.ts';
import { sendHopError, sendProblem } from './problem.ts';

interface ValidationItem {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

// Which Hop code a failing body field reports (everything else is validation_failed).
const FIELD_CODES: Record<string, ErrorCode> = {
  url: 'invalid_url',
  alias: 'invalid_alias',
  expiresAt: 'invalid_expiry',
};

function fromValidation(
  items: ValidationItem[],
  context: string,
): { code: ErrorCode; detail: string; field: string } {
  const first = items[0];
  if (first === undefined)
    return { code: 'validation_failed', detail: 'The request is not valid.', field: context };
  const field =
    (first.params.missingProperty as string | undefined) ??
    (first.params.additionalProperty as string | undefined) ??
    (first.instancePath.split('/')[1] || context);
  let detail: string;
  if (first.keyword === 'additionalProperties') detail = `Unknown field "${field}".`;
  else if (first.keyword === 'required') detail = `"${field}" is required.`;
  else detail = `"${field}" ${first.message ?? 'is not valid'}.`;
  // An unknown field is a shape error wherever it is named url or alias (e.g. url on a key).
  const known = first.keyword !== 'additionalProperties';
  const code = (context === 'body' && known && FIELD_CODES[field]) || 'validation_failed';
  return { code, detail, field };
}

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'validation_failed',
  FST_ERR_CTP_INVALID_JSON_BODY: 'validation_failed',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'validation_failed',
};

/**
 * `onNotFound`: told of every request no route answered (orphan visits are counted from it); a URL
 * it returns is where the visitor is redirected instead of a 404.
 */
export function installErrorHandling(
  app: FastifyInstance,
  onNotFound?: (req: FastifyRequest, path: string) => string | null,
): void {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (isHopError(err)) return sendHopError(req, reply, err);
    if (err.validation) {
      const v = fromValidation(err.validation as ValidationItem[], err.validationContext ?? 'request');
      return sendProblem(req, reply, v.code, v.detail, { field: v.field });
    }
    const mapped = err.code === undefined ? undefined : FASTIFY_CODES[err.code];
    if (mapped !== undefined) return sendProblem(req, reply, mapped, err.message);
    if (err instanceof SyntaxError || err.statusCode === 400) {
      return sendProblem(req, reply, 'validation_failed', 'The request body is not valid JSON.');
    }
    if (err.statusCode === 413) return sendProblem(req, reply, 'payload_too_large', err.message);
    if (err.statusCode === 415) return sendProblem(req, reply, 'unsupported_media_type', err.message);
    req.log.error({ err }, 'unhandled error');
    return sendProblem(req, reply, 'internal_error', 'Something went wrong on our side; it has been logged.');
  });
  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0]!;
    const elsewhere = onNotFound?.(req, path) ?? null;
    if (elsewhere !== null)
      return reply.code(302).header('location', elsewhere).header('cache-control', 'no-store').send();
    return sendProblem(req, reply, 'not_found', `Nothing at ${req.method} ${path}.`);
  });
}
