// PATCH /api/v1/links/{code} — change a link; redirects in this process see it at once.
import type { FastifyInstance } from 'fastify';
import type { Deps } from '../deps.ts';
import { HopError } from '../domain/errors.ts';
import { type PatchInput, parsePassword, validatePatch } from '../domain/link-input.ts';
import { AUTHENTICATED_CHANGE, problemResponses, WITH_BODY } from '../http/openapi.ts';
import { hashPassword } from './link-password.ts';
import { codeParamsSchema, heldClicksOf, linkFieldSchemas, passwordSchema, toView } from './link-view.ts';

export function registerUpdateLink(app: FastifyInstance, deps: Deps): void {
  // Rules are replaced through PUT /links/{code}/rules, not patched.
  const { redirectType, forwardQuery, rules: _rules, ...nullableFields } = linkFieldSchemas;
  app.patch<{ Params: { code: string }; Body: PatchInput }>(
    '/links/:code',
    {
      schema: {
        summary: 'Update a link',
        operationId: 'updateLink',
        tags: ['links'],
        params: codeParamsSchema,
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
          ),
        },
      },
    },
    async (req) => {
      const patch = validatePatch(req.body, deps.urlPolicy, deps.now());
      const password = parsePassword(req.body.password);
      if (password !== undefined)
        patch.passwordHash = password === null ? null : await hashPassword(password);
      const link = await deps.store.updateLink(req.params.code, patch, new Date(deps.now()));
      if (link === null) throw new HopError('not_found', `No link with code "${req.params.code}".`);
      await deps.resolver.invalidate(link.code);
      const fresh = await deps.store.getLink(link.code);
      return toView(fresh ?? link, deps.config.publicUrl, deps.now(), heldClicksOf(deps.clicks));
    },
  );
}
