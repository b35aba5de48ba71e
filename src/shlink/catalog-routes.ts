// Shlink's tags, domains, visits overview, health and mercure-info.
import type { FastifyInstance } from 'fastify';
import type { Deps } from '../deps.ts';
import { ALL_LINKS } from '../domain/clicks.ts';
import { DEFAULT_DOMAIN, type DomainRedirects } from '../domain/domains.ts';
import { normalizeTargetUrl, type UrlPolicy } from '../domain/url-policy.ts';
import { queryList } from './shlink-input.ts';
import { invalidData, mercureNotConfigured, tagConflict, tagNotFound } from './shlink-problem.ts';
import { domainRedirects, visitsSummary } from './shlink-view.ts';
import { shlinkDomain } from './short-url-routes.ts';

/** The Shlink release whose API features Hop answers (list filters of 4.6, rules and domains of 4.3). */
export const SHLINK_VERSION = '4.6.0';

const sum = (s: readonly { clicks: number }[]) => s.reduce((n, p) => n + p.clicks, 0);

export function registerHealth(app: FastifyInstance, deps: Deps): void {
  app.get('/health', async (_req, reply) => {
    let ok = true;
    try {
      await deps.store.ping();
    } catch {
      ok = false;
    }
    return reply
      .code(ok ? 200 : 503)
      .type('application/health+json')
      .send(
        JSON.stringify({
          status: ok ? 'pass' : 'fail',
          version: SHLINK_VERSION,
          links: { about: 'https://shlink.io', project: 'https://github.com/shlinkio/shlink' },
        }),
      );
  });
}

export function registerCatalogRoutes(app: FastifyInstance, deps: Deps): void {
  const policy: UrlPolicy = { ownHosts: new Set(), denyHosts: deps.urlPolicy.denyHosts };

  app.get('/tags', async () => ({ tags: { data: (await deps.store.tagStats()).map((t) => t.tag) } }));

  app.get('/tags/stats', async () => {
    const stats = await deps.store.tagStats();
    return {
      tags: {
        data: stats.map((t) => ({
          tag: t.tag,
          shortUrlsCount: t.links,
          visitsSummary: visitsSummary(t.clicks, t.botClicks),
        })),
      },
    };
  });

  app.put<{ Body: { oldName?: unknown; newName?: unknown } | null }>('/tags', async (req, reply) => {
    const { oldName, newName } = req.body ?? {};
    const missing = [
      typeof oldName === 'string' && oldName !== '' ? null : 'oldName',
      typeof newName === 'string' && newName.trim() !== '' ? null : 'newName',
    ].filter((x): x is string => x !== null);
    if (missing.length > 0) throw invalidData('Provided data is not valid', ...missing);
    const to = (newName as string).trim();
    if (to.length > 64) throw invalidData('A tag is at most 64 characters.', 'newName');
    const done = await deps.store.renameTag(oldName as string, to, new Date(deps.now()));
    if (done === 'not_found') throw tagNotFound(oldName as string);
    if (done === 'conflict') throw tagConflict(oldName as string, to);
    return reply.code(204).send();
  });

  app.delete<{ Querystring: Record<string, unknown> }>('/tags', async (req, reply) => {
    const tags = queryList(req.query, 'tags');
    if (tags.length > 0) await deps.store.deleteTags(tags, new Date(deps.now()));
    return reply.code(204).send();
  });

  app.get('/domains', async () => {
    await deps.domains.refresh();
    const all = deps.domains.list();
    return {
      domains: {
        data: all.map((d) => ({
          domain: d.host === DEFAULT_DOMAIN ? deps.domains.defaultHost : d.host,
          isDefault: d.host === DEFAULT_DOMAIN,
          redirects: domainRedirects(d),
        })),
        defaultRedirects: domainRedirects(deps.domains.defaultDomain),
      },
    };
  });

  app.patch<{ Body: Record<string, unknown> | null }>('/domains/redirects', async (req) => {
    const b = req.body ?? {};
    if (typeof b.domain !== 'string' || b.domain === '')
      throw invalidData('Provided data is not valid', 'domain');
    const patch: { -readonly [K in keyof DomainRedirects]?: DomainRedirects[K] } = {};
    const url = (v: unknown, field: string) =>
      v === null || v === '' ? null : normalizeTargetUrl(v, policy, field);
    if ('baseUrlRedirect' in b) patch.rootRedirect = url(b.baseUrlRedirect, 'baseUrlRedirect');
    if ('regular404Redirect' in b)
      patch.otherNotFoundRedirect = url(b.regular404Redirect, 'regular404Redirect');
    if ('invalidShortUrlRedirect' in b)
      patch.notFoundRedirect = url(b.invalidShortUrlRedirect, 'invalidShortUrlRedirect');
    const host = await shlinkDomain(deps, b.domain, true);
    const d = await deps.store.updateDomain(host, patch);
    if (d === null) throw invalidData('The domain could not be changed.', 'domain');
    await deps.domains.changed();
    return domainRedirects(d);
  });

  // Totals of every visit Hop keeps (rollups since the first day; orphans likewise).
  app.get('/visits', async () => {
    const now = deps.now();
    const window = { code: ALL_LINKS, from: 0, to: now + 3_600_000, interval: 'day' as const, top: 1 };
    // This process's orphan count not written yet is written first, so a visit just made is in it.
    await deps.orphans.flush();
    const [all, people, orphanAll, orphanPeople] = await Promise.all([
      deps.clicks.clickStats({ ...window, includeBots: true }),
      deps.clicks.clickStats({ ...window, includeBots: false }),
      deps.store.orphanStats({ ...window, domain: null, includeBots: true }),
      deps.store.orphanStats({ ...window, domain: null, includeBots: false }),
    ]);
    return {
      visits: {
        nonOrphanVisits: visitsSummary(sum(all.series), sum(all.series) - sum(people.series)),
        orphanVisits: visitsSummary(sum(orphanAll.series), sum(orphanAll.series) - sum(orphanPeople.series)),
      },
    };
  });

  app.get('/mercure-info', async () => {
    throw mercureNotConfigured();
  });
}
