// The in-memory Store: the same contract as the SQL store (one conformance suite checks both),
// for unit tests and throwaway runs. Single-threaded JS makes each method atomic.
import { bucketOf } from '../../domain/bucket.ts';
import { generateCode } from '../../domain/codes.ts';
import { bareDomain, type Domain, type DomainRedirects, linkKey } from '../../domain/domains.ts';
import type { Link, RedirectRecord } from '../../domain/link.ts';
import type { LinkFields } from '../../domain/link-input.ts';
import type { VisitPage, VisitQuery } from '../../domain/visits.ts';
import type { Delivery, DeliveryOutcome, DueDelivery, NewDelivery, Webhook } from '../../domain/webhooks.ts';
import { sameMapping } from '../link-json.ts';
import type {
  ApiKeyRecord,
  ChangeEvent,
  ClickBatch,
  ClickEvent,
  ClickLog,
  ClickMaintenance,
  ClickStats,
  CreateOutcome,
  DeleteWindow,
  ImportStatus,
  LinkSearch,
  LinkWithClicks,
  ListPage,
  ListQuery,
  MigrationReport,
  NewLink,
  OrphanBatch,
  OrphanListQuery,
  OrphanQuery,
  OrphanStats,
  OrphanType,
  OrphanVisit,
  RestoreStatus,
  SearchedLink,
  StatsQuery,
  Store,
  StoredIdempotency,
  TagStats,
  UnfoldedBatch,
} from '../ports.ts';
import { searchOrder } from '../search-order.ts';
import { MemoryClicks } from './memory-clicks.ts';
import { MemoryWebhooks } from './memory-webhooks.ts';

const keyOf = (l: { domain: string; code: string }) => linkKey(l.domain, l.code);
const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const newestFirst = (a: Link, b: Link) =>
  b.createdAt.getTime() - a.createdAt.getTime() || -cmp(a.code, b.code) || -cmp(a.domain, b.domain);

export class MemoryStore implements Store, ClickLog {
  readonly kind = 'memory';
  readonly changeStreams = 1;
  /** By link key. */
  private readonly links = new Map<string, Link>();
  private readonly domains = new Map<string, Domain>([['', bareDomain('', new Date())]]);
  private readonly orphans = new Map<string, OrphanBatch['rows'][number]>();
  private readonly orphanBatches = new Set<string>();
  private readonly clickData = new MemoryClicks();
  private readonly idempotency = new Map<string, StoredIdempotency & { createdAt: Date }>();
  private readonly keys = new Map<string, ApiKeyRecord & { hash: string }>();
  private readonly outbox: ChangeEvent[] = [];
  private readonly codeLength: number;
  private closed = false;

  constructor(opts: { codeLength: number } = { codeLength: 7 }) {
    this.codeLength = opts.codeLength;
  }

  async migrate(): Promise<MigrationReport> {
    return { applied: [], alreadyApplied: [] };
  }

  async ping(): Promise<void> {
    if (this.closed) throw new Error('store is closed');
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private emit(kind: ChangeEvent['kind'], link: Link, at: Date): void {
    this.outbox.push({ seq: this.outbox.length + 1, kind, code: keyOf(link), bucket: link.bucket, at, link });
  }

  async createLink(req: NewLink): Promise<CreateOutcome> {
    const idem = req.idempotency;
    const idemKey = idem ? `${idem.scope}\u0000${idem.key}` : null;
    if (idemKey !== null) {
      const stored = this.idempotency.get(idemKey);
      if (stored && stored.createdAt.getTime() >= req.createdAt.getTime() - 24 * 3600_000) {
        return { kind: 'replayed', stored };
      }
    }
    const length = req.codeLength ?? this.codeLength;
    let code = req.alias ?? generateCode(length);
    while (req.alias === null && this.links.has(linkKey(req.domain, code))) code = generateCode(length);
    if (this.links.has(linkKey(req.domain, code))) {
      if (idemKey !== null) {
        this.idempotency.set(idemKey, {
          requestHash: idem!.requestHash,
          outcome: { kind: 'alias_taken' },
          createdAt: req.createdAt,
        });
      }
      return { kind: 'alias_taken' };
    }
    const link: Link = {
      ...req.fields,
      code,
      domain: req.domain,
      bucket: bucketOf(code),
      usedClicks: 0,
      deletedAt: null,
      createdAt: req.createdAt,
      updatedAt: req.createdAt,
    };
    this.links.set(keyOf(link), link);
    this.emit('link.created', link, req.createdAt);
    if (idemKey !== null) {
      this.idempotency.set(idemKey, {
        requestHash: idem!.requestHash,
        outcome: { kind: 'created', link },
        createdAt: req.createdAt,
      });
    }
    return { kind: 'created', link };
  }

  async getRedirect(code: string): Promise<RedirectRecord | null> {
    const l = this.links.get(code);
    if (l === undefined) return null;
    return {
      code: l.code,
      domain: l.domain,
      url: l.url,
      redirectType: l.redirectType,
      forwardQuery: l.forwardQuery,
      expiresAt: l.expiresAt,
      maxClicks: l.maxClicks,
      disabled: l.disabled,
      deletedAt: l.deletedAt,
      rules: l.rules,
      expiredUrl: l.expiredUrl,
      validSince: l.validSince,
      passwordHash: l.passwordHash,
    };
  }

  private withClicks(l: Link): LinkWithClicks {
    return { ...l, clicks: this.clickData.totals.get(keyOf(l)) ?? 0 };
  }

  async getLink(code: string): Promise<LinkWithClicks | null> {
    const l = this.links.get(code);
    return l === undefined || l.deletedAt !== null ? null : this.withClicks(l);
  }

  async listLinks(query: ListQuery): Promise<ListPage> {
    const q = query.q?.toLowerCase() ?? null;
    const c = query.cursor;
    const all = [...this.links.values()]
      .filter((l) => l.deletedAt === null)
      .filter((l) => query.domain === null || l.domain === query.domain)
      .filter((l) => query.tag === null || l.tags.includes(query.tag))
      .filter((l) => q === null || `${l.code} ${l.url} ${l.title ?? ''}`.toLowerCase().includes(q))
      .filter(
        (l) =>
          c === null ||
          l.createdAt.getTime() < c.createdAt.getTime() ||
          (l.createdAt.getTime() === c.createdAt.getTime() &&
            (l.code < c.code || (l.code === c.code && l.domain < c.domain))),
      )
      .sort(newestFirst);
    const items = all.slice(0, query.limit).map((l) => this.withClicks(l));
    const last = items[items.length - 1];
    return {
      items,
      next:
        all.length > query.limit && last
          ? { createdAt: last.createdAt, code: last.code, domain: last.domain }
          : null,
    };
  }

  async updateLink(code: string, patch: Partial<LinkFields>, now: Date): Promise<Link | null> {
    const l = this.links.get(code);
    if (l === undefined || l.deletedAt !== null) return null;
    const next: Link = { ...l, ...patch, updatedAt: now };
    this.links.set(code, next);
    this.emit('link.updated', next, now);
    return next;
  }

  async deleteLink(code: string, now: Date): Promise<boolean> {
    const l = this.links.get(code);
    if (l === undefined || l.deletedAt !== null) return false;
    const next: Link = { ...l, deletedAt: now, updatedAt: now };
    this.links.set(code, next);
    this.emit('link.deleted', next, now);
    return true;
  }

  async consumeClick(code: string): Promise<boolean> {
    const l = this.links.get(code);
    if (l === undefined || l.deletedAt !== null || l.disabled) return false;
    if (l.maxClicks !== null && l.usedClicks >= l.maxClicks) return false;
    this.links.set(code, { ...l, usedClicks: l.usedClicks + 1 });
    return true;
  }

  async getIdempotency(scope: string, key: string, notBefore: Date): Promise<StoredIdempotency | null> {
    const s = this.idempotency.get(`${scope}\u0000${key}`);
    return s && s.createdAt.getTime() >= notBefore.getTime() ? s : null;
  }

  async importLinks(links: readonly Link[]): Promise<ImportStatus[]> {
    return links.map((l) => {
      const ex = this.links.get(keyOf(l));
      if (ex !== undefined) return sameMapping(ex, l) ? 'unchanged' : 'conflict';
      this.links.set(keyOf(l), l);
      this.emit('link.created', l, new Date());
      return 'created';
    });
  }

  async restoreLinks(links: readonly Link[], window: DeleteWindow, now: Date): Promise<RestoreStatus[]> {
    const inWindow = (d: Date) => d >= window.from && (window.to === null || d < window.to);
    return links.map((l) => {
      const ex = this.links.get(keyOf(l));
      if (ex !== undefined && (ex.deletedAt === null || !inWindow(ex.deletedAt))) return 'kept';
      const back = { ...l, deletedAt: null, updatedAt: now };
      this.links.set(keyOf(l), back);
      this.emit(ex === undefined ? 'link.created' : 'link.updated', back, now);
      return ex === undefined ? 'recreated' : 'undeleted';
    });
  }

  async *exportLinks(opts: { includeDeleted: boolean }): AsyncIterable<Link> {
    const all = [...this.links.values()].sort((a, b) => cmp(a.code, b.code) || cmp(a.domain, b.domain));
    for (const l of all) if (opts.includeDeleted || l.deletedAt === null) yield l;
  }

  async readChanges(afterSeq: number, limit: number): Promise<ChangeEvent[]> {
    return this.outbox.filter((e) => e.seq > afterSeq).slice(0, limit);
  }

  // ---- Shlink's list, tags and find-if-exists ---------------------------------------------------
  async searchLinks(q: LinkSearch): Promise<{ items: SearchedLink[]; total: number }> {
    const term = q.q?.toLowerCase() ?? null;
    const has = (l: Link, tags: readonly string[], all: boolean) =>
      all ? tags.every((t) => l.tags.includes(t)) : tags.some((t) => l.tags.includes(t));
    const matches = [...this.links.values()]
      .filter((l) => l.deletedAt === null && (q.domain === null || l.domain === q.domain))
      .filter((l) => q.code === undefined || l.code === q.code)
      .filter(
        (l) =>
          term === null ||
          `${l.code} ${l.url} ${l.title ?? ''}`.toLowerCase().includes(term) ||
          l.tags.some((t) => t.toLowerCase().includes(term)),
      )
      .filter((l) => q.tags.length === 0 || has(l, q.tags, q.tagsAll))
      .filter((l) => q.excludeTags.length === 0 || !has(l, q.excludeTags, q.excludeTagsAll))
      .filter((l) => q.createdFrom === null || l.createdAt >= q.createdFrom)
      .filter((l) => q.createdTo === null || l.createdAt <= q.createdTo)
      .filter((l) => !q.excludeUsedUp || l.maxClicks === null || l.usedClicks < l.maxClicks)
      .filter((l) => q.expiredAt === null || l.expiresAt === null || l.expiresAt > q.expiredAt)
      .map(
        (l): SearchedLink => ({
          ...this.withClicks(l),
          botClicks: this.clickData.botTotals.get(keyOf(l)) ?? 0,
        }),
      );
    matches.sort(searchOrder(q.order));
    const items = q.limit === null ? matches.slice(q.offset) : matches.slice(q.offset, q.offset + q.limit);
    return { items, total: matches.length };
  }

  async findLinkByUrl(url: string, domain: string): Promise<Link | null> {
    const found = [...this.links.values()].filter(
      (l) => l.url === url && l.domain === domain && l.deletedAt === null,
    );
    return found.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime())[0] ?? null;
  }

  async tagStats(): Promise<TagStats[]> {
    const by = new Map<string, { links: number; clicks: number; botClicks: number }>();
    for (const l of this.links.values()) {
      if (l.deletedAt !== null) continue;
      for (const t of l.tags) {
        const s = by.get(t) ?? { links: 0, clicks: 0, botClicks: 0 };
        s.links++;
        s.clicks += this.clickData.totals.get(keyOf(l)) ?? 0;
        s.botClicks += this.clickData.botTotals.get(keyOf(l)) ?? 0;
        by.set(t, s);
      }
    }
    return [...by].sort((a, b) => cmp(a[0], b[0])).map(([tag, s]) => ({ tag, ...s }));
  }

  async renameTag(from: string, to: string, now: Date): Promise<'renamed' | 'not_found' | 'conflict'> {
    const live = [...this.links.values()].filter((l) => l.deletedAt === null);
    if (!live.some((l) => l.tags.includes(from))) return 'not_found';
    if (from !== to && live.some((l) => l.tags.includes(to))) return 'conflict';
    this.retag(live, (tags) => (tags.includes(from) ? tags.map((t) => (t === from ? to : t)) : null), now);
    return 'renamed';
  }

  async deleteTags(tags: readonly string[], now: Date): Promise<number> {
    const live = [...this.links.values()].filter((l) => l.deletedAt === null);
    return this.retag(
      live,
      (ts) => (ts.some((t) => tags.includes(t)) ? ts.filter((t) => !tags.includes(t)) : null),
      now,
    );
  }

  private retag(links: Link[], change: (tags: readonly string[]) => string[] | null, now: Date): number {
    let n = 0;
    for (const l of links) {
      const tags = change(l.tags);
      if (tags === null) continue;
      const next: Link = { ...l, tags, updatedAt: now };
      this.links.set(keyOf(l), next);
      this.emit('link.updated', next, now);
      n++;
    }
    return n;
  }

  // ---- domains, robots and orphan visits ---------------------------------------------------------
  async listDomains(): Promise<Domain[]> {
    return [...this.domains.values()].sort((a, b) => cmp(a.host, b.host));
  }
  async createDomain(domain: Domain): Promise<boolean> {
    if (this.domains.has(domain.host)) return false;
    this.domains.set(domain.host, domain);
    return true;
  }
  async updateDomain(host: string, patch: Partial<DomainRedirects>): Promise<Domain | null> {
    const d = this.domains.get(host);
    if (d === undefined) return null;
    const next = { ...d, ...patch };
    this.domains.set(host, next);
    return next;
  }
  async deleteDomain(host: string): Promise<boolean> {
    return host !== '' && this.domains.delete(host);
  }
  async crawlableCodes(domain: string, limit: number): Promise<string[]> {
    return [...this.links.values()]
      .filter((l) => l.domain === domain && l.crawlable && l.deletedAt === null)
      .map((l) => l.code)
      .sort(cmp)
      .slice(0, limit);
  }
  async domainHasLinks(domain: string): Promise<boolean> {
    for (const l of this.links.values()) if (l.domain === domain && l.deletedAt === null) return true;
    return false;
  }
  async recordOrphans(batch: OrphanBatch): Promise<'applied' | 'duplicate'> {
    if (this.orphanBatches.has(batch.id)) return 'duplicate';
    this.orphanBatches.add(batch.id);
    for (const r of batch.rows) {
      const k = JSON.stringify([r.hour, r.domain, r.bot, r.type, r.path]);
      const ex = this.orphans.get(k);
      this.orphans.set(k, ex === undefined ? { ...r } : { ...ex, visits: ex.visits + r.visits });
    }
    this.orphanList.push(...(batch.list ?? []));
    return 'applied';
  }
  private orphanList: OrphanVisit[] = [];
  async orphanVisits(q: OrphanListQuery): Promise<{ visits: OrphanVisit[]; total: number }> {
    const all = this.orphanList
      .filter(
        (v) =>
          v.at >= q.from &&
          v.at < q.to &&
          (q.domain === null || v.domain === q.domain) &&
          (q.type === null || v.type === q.type) &&
          (q.includeBots || !v.bot),
      )
      .sort((a, b) => b.at - a.at || cmp(b.id, a.id));
    return { visits: all.slice(q.offset, q.offset + q.limit), total: all.length };
  }
  async deleteOrphanVisits(): Promise<number> {
    let n = 0;
    for (const r of this.orphans.values()) n += r.visits;
    this.orphans.clear();
    this.orphanList = [];
    return n;
  }
  async orphanStats(q: OrphanQuery): Promise<OrphanStats> {
    const series = new Map<number, number>();
    const types = new Map<OrphanType, number>();
    const paths = new Map<string, number>();
    const step = q.interval === 'day' ? 86_400_000 : 3_600_000;
    for (const r of this.orphans.values()) {
      if (r.hour < q.from || r.hour >= q.to || (q.domain !== null && r.domain !== q.domain)) continue;
      if (r.bot && !q.includeBots) continue;
      const t = r.hour - (r.hour % step);
      series.set(t, (series.get(t) ?? 0) + r.visits);
      types.set(r.type, (types.get(r.type) ?? 0) + r.visits);
      if (r.path !== '') paths.set(r.path, (paths.get(r.path) ?? 0) + r.visits);
    }
    const top = <K extends string>(m: Map<K, number>) =>
      [...m]
        .map(([key, clicks]) => ({ key, clicks }))
        .sort((a, b) => b.clicks - a.clicks || cmp(a.key, b.key));
    return {
      series: [...series].sort((a, b) => a[0] - b[0]).map(([t, clicks]) => ({ t, clicks })),
      types: top(types),
      paths: top(paths).slice(0, q.top),
    };
  }

  // ---- webhooks (memory-webhooks.ts) -----------------------------------------------------------
  private readonly webhooks = new MemoryWebhooks();
  createWebhook(w: Webhook): Promise<void> {
    return this.webhooks.create(w);
  }
  listWebhooks(): Promise<Webhook[]> {
    return this.webhooks.list();
  }
  getWebhook(id: string): Promise<Webhook | null> {
    return this.webhooks.get(id);
  }
  deleteWebhook(id: string, now: Date): Promise<boolean> {
    return this.webhooks.delete(id, now);
  }
  fanOutChanges(stream: number, limit: number): Promise<number> {
    return this.webhooks.fanOut(stream, limit, (after, n) => this.readChanges(after, n));
  }
  enqueueDeliveries(ds: readonly NewDelivery[]): Promise<void> {
    return this.webhooks.enqueue(ds);
  }
  claimDeliveries(now: Date, limit: number, lockMs: number): Promise<DueDelivery[]> {
    return this.webhooks.claim(now, limit, lockMs);
  }
  finishAttempt(id: number, outcome: DeliveryOutcome, next: Date | null, now: Date): Promise<void> {
    return this.webhooks.finish(id, outcome, next, now);
  }
  listDeliveries(webhookId: string, limit: number): Promise<Delivery[]> {
    return this.webhooks.deliveries(webhookId, limit);
  }

  async markChangesPublished(): Promise<void> {
    // The in-memory store's outbox is its whole change stream: nothing is relayed from it.
  }

  async createApiKey(rec: ApiKeyRecord, keyHash: string): Promise<void> {
    // As PostgreSQL's unique key_hash: one key string is one key.
    for (const k of this.keys.values()) {
      if (k.hash === keyHash) throw new Error('an API key with this hash already exists');
    }
    this.keys.set(rec.id, { ...rec, hash: keyHash });
  }

  async findApiKeyByHash(keyHash: string): Promise<ApiKeyRecord | null> {
    for (const k of this.keys.values()) {
      if (k.hash === keyHash && k.revokedAt === null) {
        const { hash: _hash, ...rec } = k;
        return rec;
      }
    }
    return null;
  }

  async listApiKeys(): Promise<ApiKeyRecord[]> {
    return [...this.keys.values()].map(({ hash: _hash, ...rec }) => rec);
  }

  async revokeApiKey(idOrPrefix: string, now: Date): Promise<boolean> {
    let any = false;
    for (const [id, k] of this.keys) {
      if ((k.id === idOrPrefix || k.prefix === idOrPrefix) && k.revokedAt === null) {
        this.keys.set(id, { ...k, revokedAt: now });
        any = true;
      }
    }
    return any;
  }

  async countApiKeys(): Promise<number> {
    return this.keys.size;
  }

  async recordClickBatch(batch: ClickBatch): Promise<'applied' | 'duplicate'> {
    return this.clickData.record(batch, Date.now());
  }

  async clickStats(query: StatsQuery): Promise<ClickStats> {
    return this.clickData.stats(query);
  }

  async daySalts(days: readonly number[], fresh: () => string): Promise<Map<number, string>> {
    return this.clickData.daySalts(days, fresh);
  }

  async writeRawClicks(id: string, events: readonly ClickEvent[]): Promise<'applied' | 'duplicate'> {
    return this.clickData.writeRaw(id, events, Date.now());
  }

  async beginFold(fold: { id: string; parts: number }, batchIds: readonly string[]): Promise<void> {
    this.clickData.beginFold(fold, batchIds);
  }

  async endFold(foldId: string): Promise<void> {
    this.clickData.endFold(foldId);
  }

  async unfoldedClicks(): Promise<UnfoldedBatch[]> {
    return this.clickData.unfolded();
  }

  async maintainClicks(now: number, retentionDays: number): Promise<ClickMaintenance> {
    return this.clickData.maintain(now, retentionDays);
  }

  /** Every stored event is listed at once here: there is nothing to split. */
  async splitVisits(): Promise<number> {
    return 0;
  }

  async visits(query: VisitQuery): Promise<VisitPage> {
    return this.clickData.visits(query);
  }

  async deleteVisits(keys: readonly string[]): Promise<number> {
    return this.clickData.deleteVisits(keys);
  }
}
