// A live link by code, or the one 404 every route that names a link answers with.
import type { Deps } from '../deps.ts';
import { HopError } from '../domain/errors.ts';
import type { LinkWithClicks } from '../storage/ports.ts';

export async function findLink(deps: Deps, code: string): Promise<LinkWithClicks> {
  const link = await deps.store.getLink(code);
  if (link === null) throw new HopError('not_found', `No link with code "${code}".`);
  return link;
}
