// Shlink's JS SDK, typed for the tests. The package's own .d.ts files use extension-less relative
// imports, which TypeScript's NodeNext resolution cannot follow; these are the shapes of its API
// contract (api-contract/types.d.ts of @shlinkio/shlink-js-sdk 3.2) that the tests use.
import * as sdk from '@shlinkio/shlink-js-sdk';
import * as node from '@shlinkio/shlink-js-sdk/node';

export interface ProblemDetailsError {
  type: string;
  title: string;
  detail: string;
  status: number;
  [extra: string]: unknown;
}
export interface VisitsSummary {
  total: number;
  nonBots: number;
  bots: number;
}
export interface ShortUrl {
  shortCode: string;
  shortUrl: string;
  longUrl: string;
  dateCreated: string;
  tags: string[];
  meta: { validSince: string | null; validUntil: string | null; maxVisits: number | null };
  domain: string | null;
  title?: string | null;
  crawlable?: boolean;
  forwardQuery?: boolean;
  visitsSummary: VisitsSummary;
  hasRedirectRules?: boolean;
}
export interface Paginated<T> {
  data: T[];
  pagination: { currentPage: number; pagesCount: number; totalItems: number };
}
export interface Condition {
  type: string;
  matchKey: string | null;
  matchValue: string | null;
}
export interface RulesList {
  defaultLongUrl: string;
  redirectRules: { longUrl: string; priority: number; conditions: Condition[] }[];
}
export interface DomainRedirects {
  baseUrlRedirect: string | null;
  regular404Redirect: string | null;
  invalidShortUrlRedirect: string | null;
}
export interface Visit {
  referer: string;
  date: string;
  userAgent: string;
  visitLocation: { countryCode: string | null; countryName: string | null; isEmpty: boolean } | null;
  potentialBot: boolean;
  visitedUrl?: string;
  redirectUrl?: string | null;
  type?: 'base_url' | 'invalid_short_url' | 'regular_404';
}
type Id = { shortCode: string; domain?: string | null };
type Params = Record<string, unknown>;

export interface ShlinkClient {
  health(o?: { domain?: string }): Promise<{ status: string; version: string }>;
  listShortUrls(p?: Params): Promise<Paginated<ShortUrl>>;
  createShortUrl(d: Params & { longUrl: string }): Promise<ShortUrl>;
  getShortUrl(id: Id): Promise<ShortUrl>;
  updateShortUrl(id: Id, d: Params): Promise<ShortUrl>;
  deleteShortUrl(id: Id): Promise<void>;
  getShortUrlRedirectRules(id: Id): Promise<RulesList>;
  setShortUrlRedirectRules(
    id: Id,
    d: { redirectRules: { longUrl: string; conditions: Condition[] }[] },
  ): Promise<RulesList>;
  getVisitsOverview(): Promise<{ nonOrphanVisits: VisitsSummary; orphanVisits: VisitsSummary }>;
  listTags(): Promise<{ data: string[] }>;
  tagsStats(): Promise<{ data: { tag: string; shortUrlsCount: number; visitsSummary: VisitsSummary }[] }>;
  deleteTags(tags: string[]): Promise<{ tags: string[] }>;
  editTag(r: { oldName: string; newName: string }): Promise<{ oldName: string; newName: string }>;
  listDomains(): Promise<{
    data: { domain: string; isDefault: boolean; redirects: DomainRedirects }[];
    defaultRedirects: DomainRedirects;
  }>;
  editDomainRedirects(r: Partial<DomainRedirects> & { domain: string }): Promise<DomainRedirects>;
  mercureInfo(): Promise<{ token: string; mercureHubUrl: string }>;
  getShortUrlVisits(id: Id, p?: Params): Promise<Paginated<Visit>>;
  getTagVisits(tag: string, p?: Params): Promise<Paginated<Visit>>;
  getDomainVisits(domain: string, p?: Params): Promise<Paginated<Visit>>;
  getOrphanVisits(p?: Params): Promise<Paginated<Visit>>;
  getNonOrphanVisits(p?: Params): Promise<Paginated<Visit>>;
  deleteShortUrlVisits(id: Id): Promise<{ deletedVisits: number }>;
  deleteOrphanVisits(): Promise<{ deletedVisits: number }>;
}

/** The SDK's client over its Node HTTP client, as a Shlink integration would make it. */
export function shlinkClient(baseUrl: string, apiKey: string): ShlinkClient {
  const { ShlinkApiClient } = sdk as unknown as {
    ShlinkApiClient: new (http: unknown, server: { baseUrl: string; apiKey: string }) => ShlinkClient;
  };
  const { NodeHttpClient } = node as unknown as { NodeHttpClient: new () => unknown };
  return new ShlinkApiClient(new NodeHttpClient(), { baseUrl, apiKey });
}
