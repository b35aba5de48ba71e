// Shlink's /short-urls: list, create (200, with findIfExists), get, edit, delete, redirect rules.
// Each names a link by short code and `?domain=` (a host; absent or the default host: the default).
import type { FastifyInstance } from 'fastify';
import type { Deps } from '../deps.ts';
import { bareDomain, DEFAULT_DOMAIN, linkKey, normalizeHost } from '../domain/domains.ts';
import { HopError, isHopError } from '../domain/errors.ts';
import { parseRulesField } from '../domain/link-input.ts';
import type { LinkSearch, SearchedLink } from '../storage/ports.ts';
import { parseCreate, parseEdit, parseListQuery } from './shlink-input.ts';
import { invalidData, shortUrlNotFound } from './shlink-problem.ts';
import { rulesFromShlink, rulesToShlink } from './shlink-rules.ts';
import { pagination, shortUrlView } from './shlink-view.ts';

type Params = { shortCode: string };
type Query = Record<string, unknown> & { domain?: string };

/**
 * A domain as Shlink clients give it: absent, 'DEFAULT' or the default host is the default domain;
 * any other host is a domain (registered on first use, as Shlink does when `register` is set).
 */
export async function shlinkDomain(deps: Deps, raw: unknown, register: boolean): Promise<string> {
  if (raw === '' || raw === 'DEFAULT') return DEFAULT_DOMAIN;
  try {
    return await deps.domains.storedDomain(raw);
  } catch (err) {
    if (!register || !isHopError(err) || err.code !== 'unknown_domain') throw err;
    const host = normalizeHost(raw, 'domain');
    // createDomain is idempotent: another process registering it at the same time changes nothing.
    await deps.store.createDomain(bareDomain(host, new Date(deps.now())));
    await deps.domains.changed();
    return host;
  }
}

/** A search of live links, newest first, with nothing left out but what `over` says. */
export function linkSearch(over: Partial<LinkSearch>): LinkSearch {
  return {
    offset: 0,
    limit: null,
    q: null,
    tags: [],
    tagsAll: false,
    excludeTags: [],
    excludeTagsAll: false,
    order: { field: 'createdAt', desc: true },
    createdFrom: null,
    createdTo: null,
    excludeUsedUp: false,
    expiredAt: null,
    domain: null,
    ...over,
  };
}

/** The live link a route names, with its bots' clicks, or Shlink's 404. */
export async function findShortUrl(deps: Deps, code: string, domainParam: unknown): Promise<SearchedLink> {
  let domain: string;
  try {
    domain = await shlinkDomain(deps, domainParam, false);
  } catch {
    throw shortUrlNotFound(code, typeof domainParam === 'string' ? domainParam : null);
  }
  // Through the search, which also reads the bots' share of the clicks (the link view has only the total).
  const { items } = await deps.store.searchLinks(linkSearch({ limit: 1, domain, code }));
  const link = items[0];
  if (link === undefined) throw shortUrlNotFound(code, domain === DEFAULT_DOMAIN ? null : domain);
  return link;
}

export function registerShortUrlRoutes(app: FastifyInstance, deps: Deps): void {
  const view = (l: SearchedLink) =>
    shortUrlView(l, deps.domains, deps.clicks.heldClicks?.(linkKey(l.domain, l.code)) ?? 0);

  const found = (code: string, domainParam: unknown) => findShortUrl(deps, code, domainParam);

  app.get<{ Querystring: Query }>('/short-urls', async (req) => {
    const q = parseListQuery(req.query, deps.now());
    const domain =
      q.domain === undefined ? null : await shlinkDomain(deps, q.domain, false).catch(() => '\u0000');
    const offset = q.perPage === null ? 0 : (q.page - 1) * q.perPage;
    const { items, total } =
      domain === '\u0000'
        ? { items: [], total: 0 }
        : await deps.store.searchLinks({ ...q.search, offset, limit: q.perPage, domain });
    return {
      shortUrls: { data: items.map(view), pagination: pagination(q.page, q.perPage, total, items.length) },
    };
  });

  app.post<{ Body: unknown }>('/short-urls', async (req) => {
    const input = parseCreate(req.body, deps.urlPolicy, deps.now());
    const domain = await shlinkDomain(deps, input.domain, true);
    if (input.findIfExists) {
      const existing = await deps.store.findLinkByUrl(input.fields.url, domain);
      if (existing !== null && (input.alias === null || input.alias === existing.code))
        return view(await found(existing.code, domain === DEFAULT_DOMAIN ? undefined : domain));
    }
    const out = await deps.store.createLink({
      alias: input.alias,
      domain,
      ...(input.codeLength === undefined ? {} : { codeLength: input.codeLength }),
      fields: input.fields,
      createdAt: new Date(deps.now()),
      idempotency: null,
    });
    if (out.kind !== 'created') throw new HopError('alias_taken', 'That custom slug is in use.');
    await deps.resolver.invalidate(linkKey(domain, out.link.code));
    deps.metrics.linkCreated();
    return view({ ...out.link, clicks: 0, botClicks: 0 });
  });

  app.get<{ Params: Params; Querystring: Query }>('/short-urls/:shortCode', async (req) =>
    view(await found(req.params.shortCode, req.query.domain)),
  );

  app.patch<{ Params: Params; Querystring: Query; Body: unknown }>('/short-urls/:shortCode', async (req) => {
    const link = await found(req.params.shortCode, req.query.domain);
    const key = linkKey(link.domain, link.code);
    const patch = parseEdit(req.body, deps.urlPolicy, deps.now());
    if (Object.keys(patch).length > 0) {
      const updated = await deps.store.updateLink(key, patch, new Date(deps.now()));
      if (updated === null) throw shortUrlNotFound(link.code, link.domain || null);
      await deps.resolver.invalidate(key);
    }
    return view(await found(link.code, link.domain || undefined));
  });

  app.delete<{ Params: Params; Querystring: Query }>('/short-urls/:shortCode', async (req, reply) => {
    const link = await found(req.params.shortCode, req.query.domain);
    const key = linkKey(link.domain, link.code);
    if (!(await deps.store.deleteLink(key, new Date(deps.now()))))
      throw shortUrlNotFound(link.code, link.domain || null);
    await deps.resolver.invalidate(key);
    return reply.code(204).send();
  });

  app.get<{ Params: Params; Querystring: Query }>('/short-urls/:shortCode/redirect-rules', async (req) => {
    const link = await found(req.params.shortCode, req.query.domain);
    return rulesToShlink(link.url, link.rules);
  });

  app.post<{ Params: Params; Querystring: Query; Body: unknown }>(
    '/short-urls/:shortCode/redirect-rules',
    async (req) => {
      const link = await found(req.params.shortCode, req.query.domain);
      const key = linkKey(link.domain, link.code);
      let rules: ReturnType<typeof parseRulesField>;
      try {
        rules = parseRulesField(rulesFromShlink(req.body), deps.urlPolicy);
      } catch (err) {
        const field = (err as { extra?: { field?: unknown } }).extra?.field;
        if (typeof field !== 'string') throw err;
        // Hop names rules[i].url; Shlink's clients know redirectRules[i].longUrl.
        throw invalidData(
          (err as Error & { detail?: string }).detail ?? 'Provided data is not valid',
          field.replace(/^rules/, 'redirectRules').replace(/\.url$/, '.longUrl'),
        );
      }
      const updated = await deps.store.updateLink(key, { rules }, new Date(deps.now()));
      if (updated === null) throw shortUrlNotFound(link.code, link.domain || null);
      await deps.resolver.invalidate(key);
      return rulesToShlink(updated.url, updated.rules);
    },
  );
}
