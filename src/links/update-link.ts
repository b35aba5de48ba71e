// PATCH /api/v1/links/{code} — change a link; redirects in this process see it at once.
import type { FastifyInstance } from 'fastify';
import type { Deps } from '../deps.ts';
import { type PatchInput, parsePassword, validatePatch } from '../domain/link-input.ts';
import { AUTHENTICATED_CHANGE, problemResponses, WITH_BODY } from '../http/openapi.ts';
import { linkKeyFor, notFound } from './find-link.ts';
import { hashPassword } from './link-password.ts';
import {
  codeParamsSchema,
  domainQuerySchema,
  heldClicksOf,
  linkFieldSchemas,
  passwordSchema,
  toView,
} from './link-view.ts';

export function registerUpdateLink(app: FastifyInstance, deps: Deps): void {
  // Rules are replaced through PUT /links/{code}/rules, not patched.
  const {
    redirectType,
    forwardQuery,
    crawlable: _crawlable,
    rules: _rules,
    ...nullableFields
  } = linkFieldSchemas;
  app.patch<{ Params: { code: string }; Querystring: { domain?: string }; Body: PatchInput }>(
    '/links/:code',
    {
      schema: {
        summary: 'Update a link',
        operationId: 'updateLink',
        tags: ['links'],
        params: codeParamsSchema,
        querystring: domainQuerySchema,
        body: {
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          properties: {
            ...nullableFields,
            // No defaults on update: an absent field stays as it is.
            redirectType: { type: 'integer', enum: redirectType.enum },
            forwardQuery: { type: 'boolean' },
            disabled: { type: 'boolean' },
            crawlable: { type: 'boolean' },
            password: passwordSchema,
          },
        },
        response: {
          200: { $ref: 'Link#' },
          ...problemResponses(
            ...AUTHENTICATED_CHANGE,
            ...WITH_BODY,
            'invalid_url',
            'invalid_expiry',
            'not_found',
            'unknown_domain',
          ),
        },
      },
    },
    async (req) => {
      const patch = validatePatch(req.body, deps.urlPolicy, deps.now());
      const password = parsePassword(req.body.password);
      if (password !== undefined)
        patch.passwordHash = password === null ? null : await hashPassword(password);
      const key = await linkKeyFor(deps, req.params.code, req.query.domain);
      const link = await deps.store.updateLink(key, patch, new Date(deps.now()));
      if (link === null) throw notFound(req.params.code);
      await deps.resolver.invalidate(key);
      const fresh = await deps.store.getLink(key);
      return toView(fresh ?? link, deps.domains, deps.now(), heldClicksOf(deps.clicks));
    },
  );
}
