// THE hot path: GET|HEAD /{code} → resolve → decide → redirect → hand the click to the sink
// (never awaited). Policies are the functions it calls; keep this file one screen.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Deps } from '../deps.ts';
import { looksLikeCode } from '../domain/codes.ts';
import type { ErrorCode } from '../domain/errors.ts';
import { decideRedirect } from '../domain/link.ts';
import { mergeQuery } from '../domain/url-policy.ts';
import { sendHtmlError, sendProblem, wantsHtml } from '../http/problem.ts';
import { enforceRateLimit, policies } from '../http/rate-limit.ts';
import { clickFrom } from './click-from-request.ts';

// Browsers and proxies must ask again every time: edits take effect at once and every click counts.
const CACHE_CONTROL = 'private, no-store';

function answerMissing(req: FastifyRequest, reply: FastifyReply, code: ErrorCode, detail: string) {
  reply.header('cache-control', 'no-store');
  return wantsHtml(req) ? sendHtmlError(reply, code, detail) : sendProblem(req, reply, code, detail);
}

export function registerRedirect(app: FastifyInstance, deps: Deps): void {
  const { resolver, store, clicks, metrics } = deps;
  const limit = policies(deps).redirect;
  app.get<{ Params: { code: string } }>(
    '/:code',
    { schema: { hide: true }, exposeHeadRoute: true },
    async (req, reply) => {
      if (limit !== null) await enforceRateLimit(deps, reply, limit, req.ip);
      const code = req.params.code;
      const decision = decideRedirect(looksLikeCode(code) ? await resolver.resolve(code) : null, Date.now());
      if (decision.kind === 'not_found') {
        metrics.redirect('not_found');
        return answerMissing(req, reply, 'not_found', 'There is no link with this address.');
      }
      if (decision.kind === 'gone') {
        metrics.redirect('gone');
        return answerMissing(
          req,
          reply,
          'gone',
          `This link has ${decision.reason === 'expired' ? 'expired' : 'been disabled'}.`,
        );
      }
      const link = decision.record;
      const counts = req.method === 'GET'; // HEAD is a probe: it neither counts nor uses up a limited link
      if (link.maxClicks !== null && counts && !(await store.consumeClick(code))) {
        metrics.redirect('gone');
        return answerMissing(req, reply, 'gone', 'This link has reached its click limit.');
      }
      const q = req.url.indexOf('?');
      const location = link.forwardQuery && q !== -1 ? mergeQuery(link.url, req.url.slice(q + 1)) : link.url;
      if (counts) clicks.record(clickFrom(req, code));
      metrics.redirect('redirect');
      return reply
        .code(link.redirectType)
        .header('location', location)
        .header('cache-control', CACHE_CONTROL)
        .send();
    },
  );
}
