// The dashboard's only door to Hop: same-origin fetches carrying the session cookie, the CSRF
// token on every change, and problem+json errors turned into ApiError (with the field they name).

export interface Link {
  code: string;
  /** The host the link answers on (the default domain's host for most links). */
  domain: string;
  shortUrl: string;
  url: string;
  createdAt: string;
  updatedAt: string;
  expiresAt: string | null;
  maxClicks: number | null;
  redirectType: number;
  forwardQuery: boolean;
  tags: string[];
  title: string | null;
  disabled: boolean;
  clicks: number;
  status: 'active' | 'scheduled' | 'expired' | 'disabled' | 'used_up';
  hasRules: boolean;
  /** Where the link sends visitors once it is expired, used up or disabled (else 410). */
  expiredUrl: string | null;
  passwordProtected: boolean;
  crawlable: boolean;
}

export interface Domain {
  host: string;
  isDefault: boolean;
  rootRedirect: string | null;
  notFoundRedirect: string | null;
  expiredRedirect: string | null;
  otherNotFoundRedirect: string | null;
  createdAt: string;
}

export interface Session {
  keyId: string;
  keyName: string;
  expiresAt: string | null;
  csrfToken: string | null;
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly field: string | null;

  constructor(status: number, code: string, detail: string, field: string | null) {
    super(detail);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

let csrfToken: string | null = null;
export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

/** Fired when the server no longer knows the session; the app then shows the sign-in page. */
export const SIGNED_OUT_EVENT = 'hop:signed-out';

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrfToken !== null) headers['x-csrf-token'] = csrfToken;
  const init: RequestInit = { method, headers, credentials: 'same-origin' };
  if (body !== undefined) init.body = JSON.stringify(body);
  let res: Response;
  try {
    res = await fetch(`/api/v1${path}`, init);
  } catch {
    throw new ApiError(0, 'network', 'Hop could not be reached. Check the connection and try again.', null);
  }
  if (res.status === 204) return undefined as T;
  const data: unknown = await res.json().catch(() => null);
  if (res.ok) return data as T;
  const p = (data ?? {}) as { code?: string; detail?: string; field?: string };
  if (res.status === 401 && path !== '/session') window.dispatchEvent(new Event(SIGNED_OUT_EVENT));
  throw new ApiError(
    res.status,
    p.code ?? 'error',
    p.detail ?? `Hop answered ${res.status}.`,
    p.field ?? null,
  );
}

/** `domainQuery`: '' for a link on the default domain, else `domain=<host>` (see domains.ts). */
export const qrUrl = (code: string, format: 'svg' | 'png', download = false, domainQuery = '') =>
  `/api/v1/links/${encodeURIComponent(code)}/qr?format=${format}${download ? '&download=true' : ''}${domainQuery === '' ? '' : `&${domainQuery}`}`;
