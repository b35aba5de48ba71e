// The Store on PostgreSQL servers: every code routes by its bucket through the versioned shard
// map to one shard; each shard runs the same SQL store as the embedded default on its primary,
// and reads on its replicas. Per-operation choices (README, "Scaled out on PostgreSQL"):
// creates and edits need the shard's primary (consistency first, 503 when it is down); redirects
// are served by replicas (availability first), and a miss there asks the primary, bounded.
import { bucketOf } from '../../domain/bucket.ts';
import {
  ALL_LINKS,
  type Breakdowns,
  type ClickChunk,
  emptyBreakdowns,
  splitByShard,
} from '../../domain/clicks.ts';
import { generateCode } from '../../domain/codes.ts';
import { bucketOfKey, type Domain, type DomainRedirects } from '../../domain/domains.ts';
import { HopError } from '../../domain/errors.ts';
import type { Link, RedirectRecord } from '../../domain/link.ts';
import type { LinkFields } from '../../domain/link-input.ts';
import { ownerOf, type ShardMap } from '../../domain/shard-map.ts';
import { newestVisits, type VisitPage, type VisitQuery } from '../../domain/visits.ts';
import type { Delivery, DeliveryOutcome, DueDelivery, NewDelivery, Webhook } from '../../domain/webhooks.ts';
import { currentConsistency } from '../consistency.ts';
import type {
  ApiKeyRecord,
  ChangeEvent,
  ClickBatch,
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
  OrphanVisit,
  RestoreStatus,
  SearchedLink,
  StatsQuery,
  Store,
  StoredIdempotency,
  StoreTopology,
  TagStats,
} from '../ports.ts';
import { searchOrder } from '../search-order.ts';
import type { SqlStore } from '../sql/sql-store.ts';
import { MapWatch } from './map-watch.ts';
import { isServerFailure } from './pg-pool.ts';
import { newestShardMap } from './shard-catalog.ts';
import type { ShardNode } from './shard-node.ts';

/** How the redirect path's misses on replicas may fall back to primaries. */
export interface FallbackObserver {
  primaryFallback(result: 'found' | 'not_found' | 'refused' | 'failed'): void;
}

// Per-shard top lists are cut longer than the answer so that merging them stays close to exact.
const MERGE_TOP_FACTOR = 10;

/** Opens a shard that a newer shard map names and this process has no connection to yet. */
export type ShardOpener = (
  index: number,
  urls: { primary: string; replicas: string[] },
) => Promise<ShardNode>;

// How long a write whose bucket is moving waits for the move to publish its map (DESIGN §13).
const REROUTE_WAIT_MS = 10_000;

export class ShardedStore implements Store {
  readonly kind = 'postgres';
  /** Every shard this process has opened, by index; `shards` is the map's share of them. */
  private readonly opened: ShardNode[];
  private active: readonly ShardNode[];
  private map: ShardMap;
  private readonly fallbackLimit: number;
  private fallbacksInFlight = 0;
  private readonly observer: FallbackObserver | null;
  private readonly openShard: ShardOpener | null;
  private refreshing: Promise<boolean> | null = null;
  private readonly mapListeners: ((map: ShardMap) => void)[] = [];
  private watch: MapWatch | null = null;

  constructor(
    shards: readonly ShardNode[],
    map: ShardMap,
    fallbackLimit: number,
    observer: FallbackObserver | null,
    openShard: ShardOpener | null = null,
  ) {
    this.opened = [...shards];
    this.map = map;
    this.active = this.opened.slice(0, map.shardCount);
    this.fallbackLimit = fallbackLimit;
    this.observer = observer;
    this.openShard = openShard;
  }

  get shards(): readonly ShardNode[] {
    return this.active;
  }

  get changeStreams(): number {
    return this.active.length;
  }

  get shardMap(): ShardMap {
    return this.map;
  }

  /** Keeps to the newest map: notified by a move, and polled. */
  watchMap(url: string, pollMs: number): void {
    this.watch = new MapWatch(url, pollMs, () => this.refreshMap());
    this.watch.start();
  }

  /** Called with each newer map this process adopts. */
  onMapChange(fn: (map: ShardMap) => void): void {
    this.mapListeners.push(fn);
  }

  /**
   * Adopts the newest shard map any shard holds (a move publishes it on the shard it fenced first,
   * then on every other); opens shards it names that this process has not met, from shard_nodes.
   * One refresh at a time; true when a newer map was adopted.
   */
  refreshMap(): Promise<boolean> {
    this.refreshing ??= this.adoptNewest().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private async adoptNewest(): Promise<boolean> {
    // A shard that cannot answer is passed over; an unusable map is never adopted.
    const map = await newestShardMap(
      this.opened.map((sh) => sh.primary),
      true,
    ).catch(() => null);
    if (map === null || map.version <= this.map.version) return false;
    if (map.shardCount > this.opened.length) {
      if (this.openShard === null) return false;
      const known = await this.opened[0]!.primary.query<{ shard: number; urls: string }>(
        'SELECT shard, urls FROM shard_nodes WHERE shard >= $1 ORDER BY shard',
        [this.opened.length],
      );
      for (const n of known.rows) {
        if (n.shard !== this.opened.length || n.shard >= map.shardCount) continue;
        const [primary, ...replicas] = n.urls.split(',');
        this.opened.push(await this.openShard(n.shard, { primary: primary!, replicas }));
      }
      if (map.shardCount > this.opened.length) return false;
    }
    if (map.version <= this.map.version) return false;
    this.map = map;
    this.active = this.opened.slice(0, map.shardCount);
    for (const fn of this.mapListeners) fn(map);
    return true;
  }

  /**
   * Runs a write routed by the current map; a write that reached a shard after its bucket moved
   * away (refused there, nothing applied) waits for the newer map and goes to the new owner.
   */
  private async routed<R>(fn: () => Promise<R>): Promise<R> {
    const deadline = Date.now() + REROUTE_WAIT_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!isBucketMoved(err)) throw err;
        await this.awaitNewerMap(deadline, attempt);
      }
    }
  }

  private async awaitNewerMap(deadline: number, attempt: number): Promise<void> {
    const adopted = await this.refreshMap().catch(() => false);
    if (Date.now() > deadline) {
      throw new HopError('unavailable', 'A bucket is moving between shards; try again shortly.', {
        headers: { 'retry-after': '1' },
      });
    }
    // Refused by the new owner too: it takes writes once the move's last commit lands.
    if (!adopted) await new Promise((r) => setTimeout(r, Math.min(2 * 2 ** attempt, 50)));
  }

  /**
   * After a miss on `shard`, routed by map `routedBy`: whether that shard has seen a newer map
   * since (the bucket may have moved away, its rows with it); the newer map is adopted first.
   */
  private async movedSince(shard: ShardNode, routedBy: number): Promise<boolean> {
    try {
      const res = await shard.primary.query<{ v: number | null }>('SELECT max(version) AS v FROM shard_map');
      if ((res.rows[0]?.v ?? 0) <= routedBy) return false;
      await this.refreshMap();
      return this.map.version > routedBy;
    } catch {
      return false;
    }
  }

  /** A point read by link key: a miss is believed only once the map has not moved meanwhile. */
  private async lookup<R>(key: string, fn: (s: SqlStore) => Promise<R | null>): Promise<R | null> {
    for (let i = 0; ; i++) {
      const routedBy = this.map.version;
      const shard = this.shardFor(key);
      const found = await this.readConfirmingMiss(shard, fn);
      if (found !== null || i >= 3 || !(await this.movedSince(shard, routedBy))) return found;
    }
  }

  /** The shard that owns a link key's code under the current map (every domain's row of a code). */
  shardFor(key: string): ShardNode {
    return this.shards[ownerOf(this.map, bucketOfKey(key))]!;
  }

  /** A code this shard owns, drawn from the CSPRNG until its bucket lands here (about N draws). */
  drawCodeFor(shard: number, codeLength: number): string {
    for (;;) {
      const code = generateCode(codeLength);
      if (ownerOf(this.map, bucketOf(code)) === shard) return code;
    }
  }

  // ---- reads -------------------------------------------------------------------------------

  /** The store a read of `shard` goes to: a replica far enough along for the request, else the primary. */
  private reader(shard: ShardNode): { store: SqlStore; replica: ShardNode['replicas'][number] | null } {
    const need = currentConsistency()?.required(shard.index, this.map.version) ?? null;
    const replica = shard.pickReplica(need);
    return replica === null
      ? { store: shard.primaryStore, replica: null }
      : { store: replica.store, replica };
  }

  /** Reads on a replica; when it fails, the same read on the primary. */
  private async read<R>(shard: ShardNode, fn: (s: SqlStore) => Promise<R>): Promise<R> {
    const { store, replica } = this.reader(shard);
    if (replica === null) return fn(store);
    try {
      return await fn(store);
    } catch (err) {
      if (!isServerFailure(err)) throw err;
      replica.markDown(err);
      return fn(shard.primaryStore);
    }
  }

  /**
   * A replica's "not there" may only mean it has not replayed the create yet, so the primary is
   * asked too, at most `fallbackLimit` at once (a scan of random codes must not reach every
   * primary). Beyond that, 503: better than a wrong 404 for a link shared the instant it was made.
   * With the primary down, the replica's answer is the best there is.
   */
  private async readConfirmingMiss<R>(
    shard: ShardNode,
    fn: (s: SqlStore) => Promise<R | null>,
  ): Promise<R | null> {
    const { store, replica } = this.reader(shard);
    if (replica === null) return fn(store);
    let fromReplica: R | null;
    try {
      fromReplica = await fn(store);
      if (fromReplica !== null) return fromReplica;
    } catch (err) {
      if (!isServerFailure(err)) throw err;
      replica.markDown(err);
      return fn(shard.primaryStore);
    }
    if (this.fallbacksInFlight >= this.fallbackLimit) {
      this.observer?.primaryFallback('refused');
      throw new HopError('unavailable', 'Too many lookups of unknown codes at once; try again shortly.', {
        headers: { 'retry-after': '1' },
      });
    }
    this.fallbacksInFlight++;
    try {
      const fromPrimary = await fn(shard.primaryStore);
      this.observer?.primaryFallback(fromPrimary === null ? 'not_found' : 'found');
      return fromPrimary;
    } catch (err) {
      if (!isServerFailure(err)) throw err;
      this.observer?.primaryFallback('failed');
      return null;
    } finally {
      this.fallbacksInFlight--;
    }
  }

  getRedirect(code: string): Promise<RedirectRecord | null> {
    return this.lookup(code, (s) => s.getRedirect(code));
  }

  getLink(code: string): Promise<LinkWithClicks | null> {
    return this.lookup(code, (s) => s.getLink(code));
  }

  /** Scatter-gather: every shard's page after the same cursor, merged newest first. */
  async listLinks(query: ListQuery): Promise<ListPage> {
    const pages = await Promise.all(this.shards.map((sh) => this.read(sh, (s) => s.listLinks(query))));
    const all = pages.flatMap((p) => p.items).sort(newestFirst);
    const items = all.slice(0, query.limit);
    const more = all.length > query.limit || pages.some((p) => p.next !== null);
    const last = items.at(-1);
    return {
      items,
      next:
        more && last !== undefined
          ? { createdAt: last.createdAt, code: last.code, domain: last.domain }
          : null,
    };
  }

  /** The idempotency record may be on any shard (the one its link went to): ask every primary. */
  async getIdempotency(scope: string, key: string, notBefore: Date): Promise<StoredIdempotency | null> {
    const found = await Promise.all(
      this.shards.map((sh) => sh.primaryStore.getIdempotency(scope, key, notBefore)),
    );
    return found.find((f) => f !== null) ?? null;
  }

  async *exportLinks(opts: { includeDeleted: boolean }): AsyncIterable<Link> {
    // Each shard exports in code order; a k-way merge keeps the whole export in code order.
    const its = this.shards.map((sh) => sh.primaryStore.exportLinks(opts)[Symbol.asyncIterator]());
    const heads = await Promise.all(its.map((it) => it.next()));
    for (;;) {
      let min = -1;
      for (let i = 0; i < heads.length; i++) {
        const h = heads[i]!;
        if (h.done) continue;
        const m = heads[min]?.value as Link | undefined;
        if (min < 0 || h.value.code < m!.code || (h.value.code === m!.code && h.value.domain < m!.domain))
          min = i;
      }
      if (min < 0) return;
      yield heads[min]!.value as Link;
      heads[min] = await its[min]!.next();
    }
  }

  readChanges(afterSeq: number, limit: number, stream = 0): Promise<ChangeEvent[]> {
    const shard = this.shards[stream];
    if (shard === undefined) throw new Error(`no change stream ${stream}: there are ${this.shards.length}`);
    return shard.primaryStore.readChanges(afterSeq, limit);
  }

  markChangesPublished(throughSeq: number, stream = 0): Promise<void> {
    const shard = this.shards[stream];
    if (shard === undefined) throw new Error(`no change stream ${stream}: there are ${this.shards.length}`);
    return shard.primaryStore.markChangesPublished(throughSeq);
  }

  // ---- writes ------------------------------------------------------------------------------

  /**
   * After a write committed on a shard: what a read must see to include it (when in a request). A
   * shard without replicas reads from its primary anyway, so it skips the position probe.
   */
  private async noteWrite(shard: ShardNode): Promise<void> {
    const ctx = currentConsistency();
    if (ctx === null || shard.replicas.length === 0) return;
    try {
      ctx.noteWrite(shard.index, await shard.lsnAfterWrite(), this.map.version);
    } catch {
      // The write is committed; without a position the next reads simply go to the primary.
      ctx.noteWrite(shard.index, BigInt('0xffffffffffffffff'), this.map.version);
    }
  }

  /**
   * An alias routes by itself. A keyed request routes by its key, so a retry lands on the shard
   * that holds its first answer; its generated code is drawn from that shard's buckets. Other
   * generated codes go to a bucket picked at random, which spreads links evenly.
   */
  private shardForCreate(req: NewLink): ShardNode {
    if (req.alias !== null) return this.shardFor(req.alias);
    if (req.idempotency !== null)
      return this.shardFor(`${req.idempotency.scope}\u0000${req.idempotency.key}`);
    return this.shards[ownerOf(this.map, Math.floor(Math.random() * this.map.owners.length))]!;
  }

  createLink(req: NewLink): Promise<CreateOutcome> {
    return this.routed(async () => {
      const shard = this.shardForCreate(req);
      const out = await shard.primaryStore.createLink(req);
      if (out.kind === 'created') await this.noteWrite(shard);
      return out;
    });
  }

  updateLink(code: string, patch: Partial<LinkFields>, now: Date): Promise<Link | null> {
    return this.ownerWrite(code, async (shard) => {
      const link = await shard.primaryStore.updateLink(code, patch, now);
      if (link !== null) await this.noteWrite(shard);
      return link;
    });
  }

  deleteLink(code: string, now: Date): Promise<boolean> {
    return this.ownerWrite(code, async (shard) => {
      const done = await shard.primaryStore.deleteLink(code, now);
      if (done) await this.noteWrite(shard);
      return done || null;
    }).then((done) => done === true);
  }

  consumeClick(code: string): Promise<boolean> {
    return this.ownerWrite(code, async (shard) => (await shard.primaryStore.consumeClick(code)) || null).then(
      (ok) => ok === true,
    );
  }

  /**
   * A write of an existing link at its owner. Matching no row there may mean the bucket moved
   * after this process routed it (no row, so nothing refused it): with a newer map, it goes again.
   */
  private ownerWrite<R>(key: string, fn: (shard: ShardNode) => Promise<R | null>): Promise<R | null> {
    return this.routed(async () => {
      for (let i = 0; ; i++) {
        const routedBy = this.map.version;
        const shard = this.shardFor(key);
        const out = await fn(shard);
        if (out !== null || i >= 3 || !(await this.movedSince(shard, routedBy))) return out;
      }
    });
  }

  importLinks(links: readonly Link[]): Promise<ImportStatus[]> {
    return this.routed(() => this.importByShard(links));
  }

  private async importByShard(links: readonly Link[]): Promise<ImportStatus[]> {
    const byShard = new Map<ShardNode, number[]>();
    links.forEach((l, i) => {
      const sh = this.shardFor(l.code); // every domain's row of a code is on the code's shard
      byShard.set(sh, [...(byShard.get(sh) ?? []), i]);
    });
    const out: ImportStatus[] = new Array(links.length);
    await Promise.all(
      [...byShard].map(async ([sh, idx]) => {
        const statuses = await sh.primaryStore.importLinks(idx.map((i) => links[i]!));
        await this.noteWrite(sh);
        idx.forEach((i, k) => {
          out[i] = statuses[k]!;
        });
      }),
    );
    return out;
  }

  restoreLinks(links: readonly Link[], window: DeleteWindow, now: Date): Promise<RestoreStatus[]> {
    return this.routed(() => this.restoreByShard(links, window, now));
  }

  private async restoreByShard(
    links: readonly Link[],
    window: DeleteWindow,
    now: Date,
  ): Promise<RestoreStatus[]> {
    const byShard = new Map<ShardNode, number[]>();
    links.forEach((l, i) => {
      const sh = this.shardFor(l.code);
      byShard.set(sh, [...(byShard.get(sh) ?? []), i]);
    });
    const out: RestoreStatus[] = new Array(links.length);
    await Promise.all(
      [...byShard].map(async ([sh, idx]) => {
        const statuses = await sh.primaryStore.restoreLinks(
          idx.map((i) => links[i]!),
          window,
          now,
        );
        await this.noteWrite(sh);
        idx.forEach((i, k) => {
          out[i] = statuses[k]!;
        });
      }),
    );
    return out;
  }

  /** Scatter-gather: every shard's first offset + limit matches, merged in the same order. */
  async searchLinks(query: LinkSearch): Promise<{ items: SearchedLink[]; total: number }> {
    // One code's rows are all on the shard that owns it.
    if (query.code !== undefined) return this.read(this.shardFor(query.code), (s) => s.searchLinks(query));
    const wide = { ...query, offset: 0, limit: query.limit === null ? null : query.offset + query.limit };
    const parts = await Promise.all(this.shards.map((sh) => this.read(sh, (s) => s.searchLinks(wide))));
    const all = parts.flatMap((p) => p.items).sort(searchOrder(query.order));
    const end = query.limit === null ? undefined : query.offset + query.limit;
    return { items: all.slice(query.offset, end), total: parts.reduce((n, p) => n + p.total, 0) };
  }

  async findLinkByUrl(url: string, domain: string): Promise<Link | null> {
    const found = await Promise.all(this.shards.map((sh) => sh.primaryStore.findLinkByUrl(url, domain)));
    return (
      found
        .filter((l): l is Link => l !== null)
        .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime())[0] ?? null
    );
  }

  async tagStats(): Promise<TagStats[]> {
    const parts = await Promise.all(this.shards.map((sh) => this.read(sh, (s) => s.tagStats())));
    const by = new Map<string, { links: number; clicks: number; botClicks: number }>();
    for (const t of parts.flat()) {
      const s = by.get(t.tag) ?? { links: 0, clicks: 0, botClicks: 0 };
      by.set(t.tag, {
        links: s.links + t.links,
        clicks: s.clicks + t.clicks,
        botClicks: s.botClicks + t.botClicks,
      });
    }
    return [...by].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([tag, s]) => ({ tag, ...s }));
  }

  /** Checked on every shard first, then applied on every shard (each shard's changes in one transaction). */
  async renameTag(from: string, to: string, now: Date): Promise<'renamed' | 'not_found' | 'conflict'> {
    const inUse = await Promise.all(this.shards.map((sh) => sh.primaryStore.tagsInUse([from, to])));
    if (!inUse.some((s) => s.has(from))) return 'not_found';
    if (from !== to && inUse.some((s) => s.has(to))) return 'conflict';
    await Promise.all(
      this.shards.map(async (sh) => {
        if ((await sh.primaryStore.renameTag(from, to, now)) === 'renamed') await this.noteWrite(sh);
      }),
    );
    return 'renamed';
  }

  async deleteTags(tags: readonly string[], now: Date): Promise<number> {
    const counts = await Promise.all(
      this.shards.map(async (sh) => {
        const n = await sh.primaryStore.deleteTags(tags, now);
        if (n > 0) await this.noteWrite(sh);
        return n;
      }),
    );
    return counts.reduce((a, b) => a + b, 0);
  }

  /** Every shard's crawlable links of the domain, in code order. */
  async crawlableCodes(domain: string, limit: number): Promise<string[]> {
    const parts = await Promise.all(
      this.shards.map((sh) => this.read(sh, (s) => s.crawlableCodes(domain, limit))),
    );
    return parts
      .flat()
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
      .slice(0, limit);
  }

  async domainHasLinks(domain: string): Promise<boolean> {
    const parts = await Promise.all(this.shards.map((sh) => sh.primaryStore.domainHasLinks(domain)));
    return parts.includes(true);
  }

  // ---- domains and orphan visits live on shard 0 ---------------------------------------------
  listDomains(): Promise<Domain[]> {
    return this.catalog.primaryStore.listDomains();
  }
  createDomain(domain: Domain): Promise<boolean> {
    return this.catalog.primaryStore.createDomain(domain);
  }
  updateDomain(host: string, patch: Partial<DomainRedirects>): Promise<Domain | null> {
    return this.catalog.primaryStore.updateDomain(host, patch);
  }
  deleteDomain(host: string): Promise<boolean> {
    return this.catalog.primaryStore.deleteDomain(host);
  }
  recordOrphans(batch: OrphanBatch): Promise<'applied' | 'duplicate'> {
    return this.catalog.primaryStore.recordOrphans(batch);
  }
  orphanStats(query: OrphanQuery): Promise<OrphanStats> {
    return this.read(this.catalog, (s) => s.orphanStats(query));
  }
  orphanVisits(query: OrphanListQuery): Promise<{ visits: OrphanVisit[]; total: number }> {
    return this.read(this.catalog, (s) => s.orphanVisits(query));
  }
  async deleteOrphanVisits(): Promise<number> {
    const n = await this.catalog.primaryStore.deleteOrphanVisits();
    await this.noteWrite(this.catalog);
    return n;
  }

  // ---- API keys and day salts live on shard 0 --------------------------------------------------

  private get catalog(): ShardNode {
    return this.shards[0]!;
  }

  // ---- webhooks: on shard 0 with the API keys; each shard's outbox is fanned out there -----
  createWebhook(w: Webhook): Promise<void> {
    return this.catalog.primaryStore.createWebhook(w);
  }
  listWebhooks(): Promise<Webhook[]> {
    return this.catalog.primaryStore.listWebhooks();
  }
  getWebhook(id: string): Promise<Webhook | null> {
    return this.catalog.primaryStore.getWebhook(id);
  }
  deleteWebhook(id: string, now: Date): Promise<boolean> {
    return this.catalog.primaryStore.deleteWebhook(id, now);
  }
  fanOutChanges(stream: number, limit: number): Promise<number> {
    const shard = this.shards[stream];
    if (shard === undefined) throw new Error(`no change stream ${stream}: there are ${this.shards.length}`);
    return this.catalog.primaryStore.fanOutFrom(stream, limit, (_tx, after, n) =>
      shard.primaryStore.readChanges(after, n),
    );
  }
  enqueueDeliveries(ds: readonly NewDelivery[]): Promise<void> {
    return this.catalog.primaryStore.enqueueDeliveries(ds);
  }
  claimDeliveries(now: Date, limit: number, lockMs: number): Promise<DueDelivery[]> {
    return this.catalog.primaryStore.claimDeliveries(now, limit, lockMs);
  }
  finishAttempt(id: number, outcome: DeliveryOutcome, next: Date | null, now: Date): Promise<void> {
    return this.catalog.primaryStore.finishAttempt(id, outcome, next, now);
  }
  listDeliveries(webhookId: string, limit: number): Promise<Delivery[]> {
    return this.catalog.primaryStore.listDeliveries(webhookId, limit);
  }

  createApiKey(rec: ApiKeyRecord, keyHash: string): Promise<void> {
    return this.catalog.primaryStore.createApiKey(rec, keyHash);
  }

  /** The primary decides (a revoked key must stop working); a replica answers while it is down. */
  async findApiKeyByHash(keyHash: string): Promise<ApiKeyRecord | null> {
    try {
      return await this.catalog.primaryStore.findApiKeyByHash(keyHash);
    } catch (err) {
      const replica = this.catalog.pickReplica(null, false);
      if (!isServerFailure(err) || replica === null) throw err;
      return replica.store.findApiKeyByHash(keyHash);
    }
  }

  listApiKeys(): Promise<ApiKeyRecord[]> {
    return this.catalog.primaryStore.listApiKeys();
  }

  revokeApiKey(idOrPrefix: string, now: Date): Promise<boolean> {
    return this.catalog.primaryStore.revokeApiKey(idOrPrefix, now);
  }

  countApiKeys(): Promise<number> {
    return this.catalog.primaryStore.countApiKeys();
  }

  daySalts(days: readonly number[], fresh: () => string): Promise<Map<number, string>> {
    return this.catalog.primaryStore.daySalts(days, fresh);
  }

  // ---- clicks --------------------------------------------------------------------------------

  /**
   * Each shard gets its links' part under the same batch id; each shard's ledger applies each
   * bucket of it once. A part refused because a bucket moved is split again by the newer map.
   */
  async recordClickBatch(batch: ClickBatch): Promise<'applied' | 'duplicate'> {
    const applied = await this.applyClicks(
      batch.id,
      { rollups: [...batch.rollups], visitors: [...batch.visitors], events: [...batch.events] },
      Date.now() + REROUTE_WAIT_MS,
    );
    return applied ? 'applied' : 'duplicate';
  }

  private async applyClicks(id: string, chunk: ClickChunk, deadline: number): Promise<boolean> {
    const parts = splitByShard(chunk, (key) => ownerOf(this.map, bucketOfKey(key)));
    const results = await Promise.all(
      [...parts].map(async ([shard, part]): Promise<boolean> => {
        const sh = this.shards[shard]!;
        try {
          const result = await sh.primaryStore.recordClickPart({ id, ...part });
          await this.noteWrite(sh);
          return result === 'applied';
        } catch (err) {
          if (!isBucketMoved(err)) throw err;
          await this.awaitNewerMap(deadline, 0);
          return this.applyClicks(id, part, deadline);
        }
      }),
    );
    return results.includes(true);
  }

  async clickStats(query: StatsQuery): Promise<ClickStats> {
    if (query.code !== ALL_LINKS) return this.read(this.shardFor(query.code), (s) => s.clickStats(query));
    const wide = { ...query, top: query.top * MERGE_TOP_FACTOR };
    const parts = await Promise.all(this.shards.map((sh) => this.read(sh, (s) => s.clickStats(wide))));
    return mergeStats(parts, query.top);
  }

  // ---- visits: a link's on its shard; lists across links read every shard and merge ---------
  async splitVisits(): Promise<number> {
    const moved = await Promise.all(this.shards.map((sh) => sh.primaryStore.splitVisits()));
    return moved.reduce((a, b) => a + b, 0);
  }

  async visits(query: VisitQuery): Promise<VisitPage> {
    const byShard = new Map<ShardNode, string[] | null>();
    if (query.keys === null) for (const sh of this.shards) byShard.set(sh, null);
    else
      for (const key of query.keys) {
        const sh = this.shardFor(key);
        byShard.set(sh, [...(byShard.get(sh) ?? []), key]);
      }
    // Each shard's newest offset + limit, merged: the page is among them.
    const wide = { ...query, offset: 0, limit: query.offset + query.limit };
    const parts = await Promise.all(
      [...byShard].map(([sh, keys]) => this.read(sh, (s) => s.visits({ ...wide, keys }))),
    );
    return {
      visits: newestVisits(
        parts.flatMap((p) => p.visits),
        query.offset + query.limit,
      ).slice(query.offset),
      total: parts.reduce((n, p) => n + p.total, 0),
    };
  }

  async deleteVisits(keys: readonly string[]): Promise<number> {
    const byShard = new Map<ShardNode, string[]>();
    for (const key of keys) {
      const sh = this.shardFor(key);
      byShard.set(sh, [...(byShard.get(sh) ?? []), key]);
    }
    const gone = await Promise.all(
      [...byShard].map(async ([sh, part]) => {
        const n = await sh.primaryStore.deleteVisits(part);
        await this.noteWrite(sh);
        return n;
      }),
    );
    return gone.reduce((a, b) => a + b, 0);
  }

  async maintainClicks(now: number, retentionDays: number): Promise<ClickMaintenance> {
    const parts = await Promise.all(
      this.shards.map(async (sh) => {
        const done = await sh.primaryStore.maintainClicks(now, retentionDays);
        await this.noteWrite(sh);
        return done;
      }),
    );
    return {
      compactedThrough: Math.min(...parts.map((p) => p.compactedThrough)),
      prunedEvents: parts.reduce((n, p) => n + p.prunedEvents, 0),
      prunedBatches: parts.reduce((n, p) => n + p.prunedBatches, 0),
    };
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  async migrate(): Promise<MigrationReport> {
    const reports = await Promise.all(this.shards.map((sh) => sh.primaryStore.migrate()));
    return {
      applied: [...new Set(reports.flatMap((r) => r.applied))],
      alreadyApplied: [...new Set(reports.flatMap((r) => r.alreadyApplied))].filter(
        (v) => !reports.some((r) => r.applied.includes(v)),
      ),
      perShard: reports.map((r, shard) => ({ shard, applied: r.applied, alreadyApplied: r.alreadyApplied })),
    };
  }

  /** Ready while every shard can serve reads: its primary, or else one of its replicas. */
  async ping(): Promise<void> {
    await Promise.all(
      this.shards.map(async (sh) => {
        try {
          await sh.primaryStore.ping();
        } catch (err) {
          const replica = sh.pickReplica(null, false);
          if (replica === null) throw err;
          await replica.store.ping();
        }
      }),
    );
  }

  topology(): StoreTopology {
    return {
      shardMapVersion: this.map.version,
      shards: this.shards.map((sh) => ({
        shard: sh.index,
        buckets: this.map.owners.filter((o) => o === sh.index).length,
        primary: { name: sh.primary.name, up: sh.primaryUp, pool: sh.primary.stats() },
        replicas: sh.replicas.map((r) => {
          const v = r.view();
          return {
            name: v.name,
            up: v.up,
            inRotation: v.inRotation,
            lagMs: v.lagMs,
            lagBytes: v.lagBytes,
            lastError: v.lastError,
            pool: r.pool.stats(),
          };
        }),
      })),
    };
  }

  async close(): Promise<void> {
    await this.watch?.stop();
    await Promise.all(this.opened.map((sh) => sh.stop()));
    await Promise.all(
      this.opened.flatMap((sh) => [sh.primaryStore.close(), ...sh.replicas.map((r) => r.store.close())]),
    );
  }
}

/** Refused at a shard that no longer owns the bucket (SQLSTATE HB001, migration 013). */
export function isBucketMoved(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'HB001';
}

function newestFirst(a: LinkWithClicks, b: LinkWithClicks): number {
  const t = b.createdAt.getTime() - a.createdAt.getTime();
  if (t !== 0) return t;
  if (a.code !== b.code) return a.code < b.code ? 1 : -1;
  return a.domain < b.domain ? 1 : a.domain > b.domain ? -1 : 0;
}

const byClicks =
  <T extends { clicks: number }>(key: (x: T) => string) =>
  (a: T, b: T) =>
    b.clicks - a.clicks || (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);

/**
 * All-links stats from every shard's: series and breakdowns add up, visitor registers take their
 * maximum (a HyperLogLog union), top links merge (a link lives on one shard, so that is exact).
 */
export function mergeStats(parts: readonly ClickStats[], top: number): ClickStats {
  const series = new Map<number, number>();
  const dims = new Map<string, Map<string, number>>();
  const regs = new Map<number, number>();
  const links: { code: string; clicks: number }[] = [];
  for (const p of parts) {
    for (const s of p.series) series.set(s.t, (series.get(s.t) ?? 0) + s.clicks);
    for (const [dim, list] of Object.entries(p.breakdowns)) {
      const m = dims.get(dim) ?? new Map<string, number>();
      dims.set(dim, m);
      for (const v of list) m.set(v.value, (m.get(v.value) ?? 0) + v.clicks);
    }
    for (const r of p.visitorRegisters) regs.set(r.reg, Math.max(regs.get(r.reg) ?? 0, r.rank));
    links.push(...p.topLinks);
  }
  const breakdowns: Breakdowns = emptyBreakdowns();
  for (const dim of Object.keys(breakdowns) as (keyof Breakdowns)[]) {
    breakdowns[dim] = [...(dims.get(dim) ?? [])]
      .map(([value, clicks]) => ({ value, clicks }))
      .sort(byClicks((x) => x.value))
      .slice(0, top);
  }
  return {
    series: [...series].sort((a, b) => a[0] - b[0]).map(([t, clicks]) => ({ t, clicks })),
    breakdowns,
    visitorRegisters: [...regs].map(([reg, rank]) => ({ reg, rank })),
    topLinks: links.sort(byClicks((x) => x.code)).slice(0, top),
  };
}
