// Which domain a request is for, answered synchronously on the redirect path from a copy of the
// domains table each process keeps. A change made here is seen here at once; other processes hear
// of it through the shared cache's invalidation channel (and reread every HOP_DOMAIN_REFRESH_MS
// whatever happens, so a lost message costs at most that long).
import type { SharedCache } from '../cache/shared-cache.ts';
import { bareDomain, DEFAULT_DOMAIN, type Domain, normalizeHost, requestHost } from '../domain/domains.ts';
import { HopError } from '../domain/errors.ts';
import type { Logger } from '../logger.ts';
import type { DomainStore } from '../storage/ports.ts';

/** The invalidation that means "reread the domains" (no link key contains '#'). */
export const DOMAINS_CHANGED = '#domains';

export class DomainDirectory {
  /** Lower-case host of HOP_PUBLIC_URL. */
  readonly defaultHost: string;
  private readonly origin: string;
  private readonly protocol: string;
  private byHost = new Map<string, Domain>();
  private defaults: Domain;
  private timer: NodeJS.Timeout | null = null;
  private readonly store: DomainStore;
  private readonly l2: SharedCache | null;
  private readonly ownHosts: Set<string>;
  private readonly strict: boolean;
  private readonly log: Logger;

  constructor(opts: {
    store: DomainStore;
    publicUrl: string;
    strictHosts: boolean;
    l2: SharedCache | null;
    /** The URL policy's own hosts: links to a registered domain would loop. */
    ownHosts: Set<string>;
    log: Logger;
  }) {
    const url = new URL(opts.publicUrl);
    this.defaultHost = requestHost(url.host);
    this.origin = url.origin;
    this.protocol = url.protocol;
    this.store = opts.store;
    this.l2 = opts.l2;
    this.ownHosts = opts.ownHosts;
    this.strict = opts.strictHosts;
    this.log = opts.log;
    this.defaults = bareDomain(DEFAULT_DOMAIN, new Date(0));
    this.l2?.onInvalidate((key) => {
      if (key === null || key === DOMAINS_CHANGED) void this.refresh().catch(() => {});
    });
  }

  async start(refreshMs: number): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => {
      this.refresh().catch((err: unknown) => this.log.warn({ err }, 'could not reread the domains'));
    }, refreshMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  async refresh(): Promise<void> {
    const all = await this.store.listDomains();
    const next = new Map<string, Domain>();
    for (const d of all) {
      if (d.host === DEFAULT_DOMAIN) this.defaults = d;
      else next.set(d.host, d);
    }
    for (const h of this.byHost.keys()) if (!next.has(h)) this.ownHosts.delete(h);
    for (const h of next.keys()) this.ownHosts.add(h);
    this.byHost = next;
  }

  /** After a change through this process: reread here, and tell every other process. */
  async changed(): Promise<void> {
    await this.refresh();
    await this.l2?.invalidate(DOMAINS_CHANGED).catch(() => {});
  }

  /**
   * The domain a request's Host names: a registered one, else the default domain, or null under
   * HOP_STRICT_HOSTS for a host that is neither. Synchronous: this runs on every redirect.
   */
  forRequest(hostHeader: string | undefined): Domain | null {
    if (this.byHost.size === 0 && !this.strict) return this.defaults;
    const host = requestHost(hostHeader);
    const d = this.byHost.get(host);
    if (d !== undefined) return d;
    return !this.strict || host === this.defaultHost ? this.defaults : null;
  }

  /** The default domain's settings (its '' row). */
  get defaultDomain(): Domain {
    return this.defaults;
  }

  /** Registered domains, the default one first (its host shown as the default host). */
  list(): Domain[] {
    return [this.defaults, ...[...this.byHost.values()].sort((a, b) => (a.host < b.host ? -1 : 1))];
  }

  /** The stored domain ('' or a registered host) of a host given by a client; absent: the default. */
  async storedDomain(input: unknown, field = 'domain'): Promise<string> {
    if (input === undefined || input === null) return DEFAULT_DOMAIN;
    // The default host may be an IP address or `localhost`, which no registered domain may be.
    if (typeof input === 'string' && requestHost(input) === this.defaultHost) return DEFAULT_DOMAIN;
    const host = normalizeHost(input, field);
    if (host === this.defaultHost) return DEFAULT_DOMAIN;
    // Registered a moment ago through another process: this one may not have heard yet.
    if (!this.byHost.has(host)) await this.refresh();
    if (!this.byHost.has(host))
      throw new HopError(
        'unknown_domain',
        `"${host}" is not a registered domain; add it with POST /api/v1/domains.`,
        {
          extra: { field },
        },
      );
    return host;
  }

  /** The host a stored domain is shown as. */
  hostOf(domain: string): string {
    return domain === DEFAULT_DOMAIN ? this.defaultHost : domain;
  }

  /** A link's short URL: HOP_PUBLIC_URL's origin on the default domain, the same scheme elsewhere. */
  shortUrl(domain: string, code: string): string {
    return domain === DEFAULT_DOMAIN ? `${this.origin}/${code}` : `${this.protocol}//${domain}/${code}`;
  }
}
