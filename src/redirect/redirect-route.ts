// Two doors to the same redirect: a raw node:http fast path that answers GET|HEAD /{code}
// before the framework sees the request, and the Fastify route (light-my-request tests, and
// whenever a per-IP redirect rate limit needs the framework's client address handling).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { Deps } from '../deps.ts';
import { looksLikeCode, RESERVED_WORDS } from '../domain/codes.ts';
import { linkKey } from '../domain/domains.ts';
import { errorTable, HopError } from '../domain/errors.ts';
import {
  HTML_ERROR_HEADERS,
  htmlErrorPage,
  PASSWORD_PAGE_HEADERS,
  PROBLEM_CONTENT_TYPE,
  passwordPage,
  problemOf,
  wantsHtml,
} from '../http/problem.ts';
import { enforceRateLimit, policies } from '../http/rate-limit.ts';
import { requestIdFor } from '../http/request-id.ts';
import { PasswordGate } from './password-gate.ts';
import { createRedirector, type RedirectAnswer } from './redirect.ts';

// Browsers and proxies must ask again every time: edits take effect at once and every click counts.
const CACHE_CONTROL = 'private, no-store';
const SHORT_PATH = /^\/[A-Za-z0-9_-]{1,64}$/;
const STORE_DOWN = { code: 'unavailable', detail: 'The link store did not answer; try again.' } as const;

interface Rendered {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** The one rendering of a redirect answer, shared by both doors so they answer byte for byte alike. */
function render(
  a: RedirectAnswer | typeof STORE_DOWN,
  accept: string | undefined,
  /** Asked only for an error's body: a redirect spends nothing on it. */
  requestId: () => string,
): Rendered {
  if ('location' in a) {
    return {
      status: a.status,
      headers: { location: a.location, 'cache-control': CACHE_CONTROL, 'content-length': '0' },
      body: '',
    };
  }
  const status = errorTable[a.code].status;
  const retryAfter = a.code === 'unavailable' ? 1 : 'retryAfter' in a ? a.retryAfter : undefined;
  // A locked link in a browser gets the password form (again, with why, after a failed try).
  if ('action' in a && wantsHtml(accept)) {
    const headers: Record<string, string> = { ...PASSWORD_PAGE_HEADERS };
    if (retryAfter !== undefined) headers['retry-after'] = String(retryAfter);
    return {
      status,
      headers,
      body: passwordPage(a.action, a.code === 'password_required' ? null : a.detail),
    };
  }
  // A dead link in a browser gets a page; a store outage is for clients to retry, so it stays JSON.
  if (a.code !== 'unavailable' && wantsHtml(accept)) {
    return { status, headers: { ...HTML_ERROR_HEADERS }, body: htmlErrorPage(a.code, a.detail) };
  }
  const headers: Record<string, string> = {
    'content-type': PROBLEM_CONTENT_TYPE,
    'cache-control': 'no-store',
  };
  if (retryAfter !== undefined) headers['retry-after'] = String(retryAfter);
  return { status, headers, body: JSON.stringify(problemOf(a.code, a.detail, requestId())) };
}

export function registerRedirect(app: FastifyInstance, deps: Deps): void {
  const answer = createRedirector(deps);
  const limit = policies(deps).redirect;
  app.get<{ Params: { code: string } }>(
    '/:code',
    { schema: { hide: true }, exposeHeadRoute: true },
    async (req, reply) => {
      if (limit !== null) await enforceRateLimit(deps, reply, limit, req.ip);
      const started = performance.now();
      let a: RedirectAnswer | typeof STORE_DOWN;
      try {
        a = await answer(req.method, req.url, req.params.code, req.raw);
      } catch (err) {
        req.log.error({ err }, 'redirect failed');
        deps.metrics.redirect('error');
        a = STORE_DOWN;
      }
      deps.metrics.redirectAnswered((performance.now() - started) / 1000);
      const r = render(a, req.headers.accept, () => req.id);
      return reply.code(r.status).headers(r.headers).send(r.body);
    },
  );
  registerPasswordForm(app, deps);
}

/**
 * POST /{code}: the password page's form. The right password earns the unlock cookie and a 303 back
 * to the link (which then redirects); a wrong one, the page again with why.
 */
function registerPasswordForm(app: FastifyInstance, deps: Deps): void {
  const gate = new PasswordGate(deps);
  app.register(async (scope) => {
    // Only here: the API takes JSON alone.
    scope.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string', bodyLimit: 4096 },
      (_req, body, done) => done(null, Object.fromEntries(new URLSearchParams(body as string))),
    );
    scope.post<{ Params: { code: string }; Body: { password?: unknown } | undefined }>(
      '/:code',
      { schema: { hide: true } },
      async (req, reply) => {
        const { code } = req.params;
        const action = PasswordGate.actionFor(code, req.url);
        const domain = deps.domains.forRequest(req.headers.host);
        const record =
          looksLikeCode(code) && domain !== null
            ? await deps.resolver.resolve(linkKey(domain.host, code))
            : null;
        // Only a locked link takes a POST; anything else is not a form's to answer.
        if (record === null) throw new HopError('not_found', 'There is no link with this address.');
        if (record.passwordHash === null) {
          reply.header('allow', 'GET, HEAD');
          throw new HopError('method_not_allowed', 'This link takes GET and HEAD only.');
        }
        const password = typeof req.body?.password === 'string' ? req.body.password : '';
        const locked = await gate.attempt(record, password, req.raw, action);
        if (locked === null) {
          return reply
            .code(303)
            .headers({
              location: action,
              'set-cookie': gate.unlockCookie(record),
              'cache-control': 'no-store',
            })
            .send();
        }
        const r = render(locked, req.headers.accept ?? 'text/html', () => req.id);
        return reply.code(r.status).headers(r.headers).send(r.body);
      },
    );
  });
}

/**
 * The fast path: returns false for anything that is not a plain short-link request, which then
 * goes to Fastify. Off when redirects are rate limited.
 */
export function createFastRedirect(
  deps: Deps,
): ((req: IncomingMessage, res: ServerResponse) => boolean) | null {
  if (policies(deps).redirect !== null && deps.config.rateLimits) return null;
  const answer = createRedirector(deps);
  const { metrics } = deps;
  const write = (
    req: IncomingMessage,
    res: ServerResponse,
    a: RedirectAnswer | typeof STORE_DOWN,
    started: number,
  ) => {
    metrics.redirectAnswered((performance.now() - started) / 1000);
    const r = render(a, req.headers.accept, () => requestIdFor(req.headers['x-request-id']));
    res.writeHead(r.status, r.headers).end(r.body);
  };
  const fail = (req: IncomingMessage, res: ServerResponse, err: unknown, started: number) => {
    deps.log.error({ err, url: req.url }, 'redirect failed');
    metrics.redirect('error');
    write(req, res, STORE_DOWN, started);
  };
  return (req, res) => {
    const method = req.method;
    const url = req.url ?? '';
    if (method !== 'GET' && method !== 'HEAD') return false;
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (!SHORT_PATH.test(path) || RESERVED_WORDS.has(path.slice(1))) return false;
    const started = performance.now();
    try {
      const a = answer(method, url, path.slice(1), req);
      if (a instanceof Promise)
        a.then(
          (x) => write(req, res, x, started),
          (err) => fail(req, res, err, started),
        );
      else write(req, res, a, started);
    } catch (err) {
      fail(req, res, err, started);
    }
    return true;
  };
}
