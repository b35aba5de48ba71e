// A live link by code (and `?domain=`), or the one 404 every route that names a link answers with.
import type { Deps } from '../deps.ts';
import { linkKey } from '../domain/domains.ts';
import { HopError } from '../domain/errors.ts';
import type { LinkWithClicks } from '../storage/ports.ts';

/** The link key a route names: its code on the domain given (a registered host), else the default. */
export async function linkKeyFor(deps: Deps, code: string, domain: unknown): Promise<string> {
  return linkKey(await deps.domains.storedDomain(domain), code);
}

export const notFound = (code: string) => new HopError('not_found', `No link with code "${code}".`);

export async function findLink(deps: Deps, code: string, domain?: unknown): Promise<LinkWithClicks> {
  const link = await deps.store.getLink(await linkKeyFor(deps, code, domain));
  if (link === null) throw notFound(code);
  return link;
}
