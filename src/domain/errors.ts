// Every error Hop reports has a stable machine code; this table is the only place that
// decides which HTTP status and title a code gets.

export const errorTable = {
  invalid_url: { status: 400, title: 'The URL is not acceptable' },
  invalid_alias: { status: 400, title: 'The alias is not acceptable' },
  reserved_alias: { status: 400, title: 'The alias is a reserved word' },
  alias_taken: { status: 409, title: 'The alias is already taken' },
  invalid_expiry: { status: 400, title: 'The expiry is not acceptable' },
  validation_failed: { status: 400, title: 'The request is not valid' },
  invalid_cursor: { status: 400, title: 'The cursor is not valid' },
  unauthorized: { status: 401, title: 'A valid API key is required' },
  password_required: { status: 401, title: 'This link is protected by a password' },
  password_incorrect: { status: 403, title: 'The password is not right' },
  csrf_failed: { status: 403, title: "The request needs the session's CSRF token" },
  not_found: { status: 404, title: 'Not found' },
  method_not_allowed: { status: 405, title: 'Method not allowed' },
  gone: { status: 410, title: 'This link is no longer available' },
  webhook_target_forbidden: { status: 422, title: 'The webhook target is not allowed' },
  unknown_domain: { status: 422, title: 'The domain is not registered' },
  domain_exists: { status: 409, title: 'The domain is registered already' },
  domain_in_use: { status: 409, title: 'The domain still has links' },
  default_domain: { status: 409, title: 'The default domain cannot be changed this way' },
  idempotency_conflict: { status: 409, title: 'The idempotency key was used with a different request' },
  payload_too_large: { status: 413, title: 'The request body is too large' },
  unsupported_media_type: { status: 415, title: 'The request body must be application/json' },
  rate_limited: { status: 429, title: 'Too many requests' },
  internal_error: { status: 500, title: 'Internal error' },
  unavailable: { status: 503, title: 'The service is temporarily unavailable' },
  // The commit's outcome is unknown (the connection was lost during it, the synchronous standby's
  // confirmation was cut short, the change log could not be written): never answered as success.
  write_in_doubt: {
    status: 503,
    title:
      'The write may have been applied but is not confirmed durable; retry it with the same Idempotency-Key',
  },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof errorTable;

/** A failure the user can act on; `detail` is safe to show them. */
export class HopError extends Error {
  readonly code: ErrorCode;
  readonly detail: string;
  /** Extra response headers (Retry-After and the like). */
  readonly headers: Readonly<Record<string, string>>;
  /** Extra members for the problem document (e.g. which field failed). */
  readonly extra: Readonly<Record<string, unknown>>;

  constructor(
    code: ErrorCode,
    detail: string,
    opts: { headers?: Record<string, string>; extra?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(`${code}: ${detail}`, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'HopError';
    this.code = code;
    this.detail = detail;
    this.headers = opts.headers ?? {};
    this.extra = opts.extra ?? {};
  }

  get status(): number {
    return errorTable[this.code].status;
  }
}

export function isHopError(e: unknown): e is HopError {
  return e instanceof HopError;
}
