// The one place an error code becomes an HTTP answer: application/problem+json (RFC 9457)
// with the stable `code` and the request id, or a small HTML page for browsers on redirects.
// Renderers are pure, so the raw redirect fast path and Fastify routes answer identically.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { type ErrorCode, errorTable, type HopError } from '../domain/errors.ts';

export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  requestId: string;
  [extra: string]: unknown;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';
export const HTML_ERROR_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
  'cache-control': 'no-store',
} as const;

export function problemOf(
  code: ErrorCode,
  detail: string,
  requestId: string,
  extra: object = {},
): ProblemDocument {
  const { status, title } = errorTable[code];
  return { type: `urn:hop:problem:${code}`, title, status, detail, code, requestId, ...extra };
}

export function sendProblem(
  req: FastifyRequest,
  reply: FastifyReply,
  code: ErrorCode,
  detail: string,
  extra: object = {},
  headers: Record<string, string> = {},
): FastifyReply {
  const doc = problemOf(code, detail, req.id, extra);
  for (const [k, v] of Object.entries(headers)) reply.header(k, v);
  return reply.code(doc.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(doc));
}

export function sendHopError(req: FastifyRequest, reply: FastifyReply, err: HopError): FastifyReply {
  return sendProblem(req, reply, err.code, err.detail, err.extra, { ...err.headers });
}

export function wantsHtml(accept: string | undefined): boolean {
  return accept?.includes('text/html') === true;
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** A small page for people who follow a dead link in a browser. */
export function htmlErrorPage(code: ErrorCode, detail: string): string {
  const { status, title } = errorTable[code];
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>${status} ${escapeHtml(title)}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:15vh auto;padding:0 1rem;color:#1d2430}
h1{font-size:1.5rem}p{color:#3c4656}</style></head>
<body><main><h1>${escapeHtml(title)}</h1><p>${escapeHtml(detail)}</p></main></body></html>`;
}

// The form posts to the short link itself; `form-action 'self'` lets it, and nothing else runs.
export const PASSWORD_PAGE_HEADERS = {
  ...HTML_ERROR_HEADERS,
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
} as const;

/** The page a browser gets for a password-protected link: a form, no script, nothing of the target. */
export function passwordPage(action: string, message: string | null): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Password required</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:28rem;margin:15vh auto;padding:0 1rem;color:#1d2430}
h1{font-size:1.5rem}label{display:block;margin:1rem 0 .25rem}input{font:inherit;padding:.4rem;width:100%;box-sizing:border-box}
button{font:inherit;margin-top:1rem;padding:.4rem 1rem}.error{color:#a3162c}</style></head>
<body><main><h1>This link is protected</h1><p>Enter the password you were given to continue.</p>
${message === null ? '' : `<p class="error" role="alert">${escapeHtml(message)}</p>`}
<form method="post" action="${escapeHtml(action)}"><label for="password">Password</label>
<input id="password" name="password" type="password" required autofocus autocomplete="current-password" maxlength="256">
<button type="submit">Continue</button></form></main></body></html>`;
}
