// /api/v1/domains — the hosts Hop serves short links on, and where each sends visitors that find no
// live link. The default domain (the host of HOP_PUBLIC_URL) is listed first and may have its
// redirects set, but is neither registered nor deleted.
import type { FastifyInstance } from 'fastify';
import type { Deps } from '../deps.ts';
import {
  DEFAULT_DOMAIN,
  DOMAIN_REDIRECTS,
  type Domain,
  type DomainRedirects,
  normalizeHost,
  requestHost,
} from '../domain/domains.ts';
import { HopError } from '../domain/errors.ts';
import { normalizeTargetUrl, type UrlPolicy } from '../domain/url-policy.ts';
import { AUTHENTICATED, AUTHENTICATED_CHANGE, problemResponses, WITH_BODY } from '../http/openapi.ts';

const nullableUrl = (description: string) => ({
  anyOf: [{ type: 'string', maxLength: 8192 }, { type: 'null' }],
  description,
});

const redirectProperties = {
  rootRedirect: nullableUrl("Where the domain's root sends visitors (default domain: else the dashboard)"),
  notFoundRedirect: nullableUrl('Where an unknown code on the domain sends visitors (else 404)'),
  expiredRedirect: nullableUrl('Where a dead link without its own expiredUrl sends visitors (else 410)'),
  otherNotFoundRedirect: nullableUrl(
    'Where any other 404 on the domain (a path that is no code) sends visitors',
  ),
} as const;

export const domainSchema = {
  $id: 'Domain',
  type: 'object',
  required: [
    'host',
    'isDefault',
    'rootRedirect',
    'notFoundRedirect',
    'expiredRedirect',
    'otherNotFoundRedirect',
    'createdAt',
  ],
  properties: {
    host: { type: 'string' },
    isDefault: { type: 'boolean' },
    ...redirectProperties,
    createdAt: { type: 'string', format: 'date-time' },
  },
} as const;

interface DomainBody {
  host?: unknown;
  rootRedirect?: unknown;
  notFoundRedirect?: unknown;
  expiredRedirect?: unknown;
  otherNotFoundRedirect?: unknown;
}

const hostParams = {
  type: 'object',
  required: ['host'],
  properties: { host: { type: 'string', maxLength: 253 } },
} as const;

function view(d: Domain, defaultHost: string) {
  return {
    host: d.host === DEFAULT_DOMAIN ? defaultHost : d.host,
    isDefault: d.host === DEFAULT_DOMAIN,
    rootRedirect: d.rootRedirect,
    notFoundRedirect: d.notFoundRedirect,
    expiredRedirect: d.expiredRedirect,
    otherNotFoundRedirect: d.otherNotFoundRedirect,
    createdAt: d.createdAt.toISOString(),
  };
}

/** The redirects a body sets (absent: unchanged; null: none). They may point at Hop's own hosts. */
function redirectsOf(body: DomainBody, policy: UrlPolicy): Partial<DomainRedirects> {
  const out: { -readonly [K in keyof DomainRedirects]?: DomainRedirects[K] } = {};
  for (const field of DOMAIN_REDIRECTS) {
    const v = body[field];
    if (v === undefined) continue;
    out[field] = v === null ? null : normalizeTargetUrl(v, policy, field);
  }
  return out;
}

export function registerDomainRoutes(app: FastifyInstance, deps: Deps): void {
  const policy: UrlPolicy = { ownHosts: new Set(), denyHosts: deps.urlPolicy.denyHosts };
  const dir = deps.domains;

  app.get(
    '/domains',
    {
      schema: {
        summary: 'List domains, the default one first',
        operationId: 'listDomains',
        tags: ['domains'],
        response: {
          200: {
            type: 'object',
            required: ['items'],
            properties: { items: { type: 'array', items: { $ref: 'Domain#' } } },
          },
          ...problemResponses(...AUTHENTICATED),
        },
      },
    },
    async () => {
      await dir.refresh();
      return { items: dir.list().map((d) => view(d, dir.defaultHost)) };
    },
  );

  app.post<{ Body: DomainBody }>(
    '/domains',
    {
      schema: {
        summary: 'Register a domain to serve short links on',
        operationId: 'createDomain',
        tags: ['domains'],
        body: {
          type: 'object',
          required: ['host'],
          additionalProperties: false,
          properties: {
            host: { type: 'string', description: 'A host name such as go.example.com' },
            ...redirectProperties,
          },
        },
        response: {
          201: { $ref: 'Domain#' },
          ...problemResponses(...AUTHENTICATED_CHANGE, ...WITH_BODY, 'invalid_url', 'domain_exists'),
        },
      },
    },
    async (req, reply) => {
      const host = normalizeHost(req.body.host);
      if (host === dir.defaultHost)
        throw new HopError('domain_exists', `"${host}" is the default domain (the host of HOP_PUBLIC_URL).`, {
          extra: { field: 'host' },
        });
      const r = redirectsOf(req.body, policy);
      const domain: Domain = {
        host,
        rootRedirect: r.rootRedirect ?? null,
        notFoundRedirect: r.notFoundRedirect ?? null,
        expiredRedirect: r.expiredRedirect ?? null,
        otherNotFoundRedirect: r.otherNotFoundRedirect ?? null,
        createdAt: new Date(deps.now()),
      };
      if (!(await deps.store.createDomain(domain)))
        throw new HopError('domain_exists', `"${host}" is registered already.`, { extra: { field: 'host' } });
      await dir.changed();
      return reply
        .code(201)
        .header('location', `/api/v1/domains/${host}`)
        .send(view(domain, dir.defaultHost));
    },
  );

  /** The stored host a path names ('' for the default domain's), or 404. */
  const storedHost = (raw: string): string => {
    if (requestHost(raw) === dir.defaultHost) return DEFAULT_DOMAIN;
    let host: string;
    try {
      host = normalizeHost(raw);
    } catch {
      throw new HopError('not_found', `No domain "${raw}".`);
    }
    return host === dir.defaultHost ? DEFAULT_DOMAIN : host;
  };

  app.patch<{ Params: { host: string }; Body: DomainBody }>(
    '/domains/:host',
    {
      schema: {
        summary: "Change a domain's redirects (the default domain's too)",
        operationId: 'updateDomain',
        tags: ['domains'],
        params: hostParams,
        body: {
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          properties: redirectProperties,
        },
        response: {
          200: { $ref: 'Domain#' },
          ...problemResponses(...AUTHENTICATED_CHANGE, ...WITH_BODY, 'invalid_url', 'not_found'),
        },
      },
    },
    async (req) => {
      const host = storedHost(req.params.host);
      const d = await deps.store.updateDomain(host, redirectsOf(req.body, policy));
      if (d === null) throw new HopError('not_found', `No domain "${req.params.host}".`);
      await dir.changed();
      return view(d, dir.defaultHost);
    },
  );

  app.delete<{ Params: { host: string } }>(
    '/domains/:host',
    {
      schema: {
        summary: 'Remove a domain that has no links',
        operationId: 'deleteDomain',
        tags: ['domains'],
        params: hostParams,
        response: {
          204: { type: 'null', description: 'Removed' },
          ...problemResponses(
            ...AUTHENTICATED_CHANGE,
            ...WITH_BODY,
            'not_found',
            'default_domain',
            'domain_in_use',
          ),
        },
      },
    },
    async (req, reply) => {
      const host = storedHost(req.params.host);
      if (host === DEFAULT_DOMAIN)
        throw new HopError(
          'default_domain',
          'The default domain is the host of HOP_PUBLIC_URL; it cannot be removed.',
        );
      if (await deps.store.domainHasLinks(host))
        throw new HopError(
          'domain_in_use',
          `"${host}" still has links; delete them first (GET /api/v1/links?domain=${host} lists them).`,
        );
      if (!(await deps.store.deleteDomain(host)))
        throw new HopError('not_found', `No domain "${req.params.host}".`);
      await dir.changed();
      return reply.code(204).send();
    },
  );
}
