// Domains met while links come in (imports), registered once each with no redirects of their own.
import { bareDomain } from '../domain/domains.ts';
import type { DomainStore } from '../storage/ports.ts';

export async function domainRegistrar(
  store: Pick<DomainStore, 'listDomains' | 'createDomain'>,
  log: (line: string) => void,
): Promise<(links: readonly { readonly domain: string }[]) => Promise<void>> {
  const known = new Set((await store.listDomains()).map((d) => d.host));
  return async (links) => {
    for (const l of links) {
      if (known.has(l.domain)) continue;
      await store.createDomain(bareDomain(l.domain, new Date()));
      known.add(l.domain);
      log(`Registered domain ${l.domain}.`);
    }
  };
}
