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
