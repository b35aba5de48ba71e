// The storage ports. Routes and use cases see only these; adapters (memory, embedded PGlite,
// and later pooled/sharded PostgreSQL) implement them and pass one conformance suite.

import type { BreakdownDim, ClickEvent, RollupIncrement, VisitorRegister } from '../domain/clicks.ts';
import type { Domain, DomainRedirects } from '../domain/domains.ts';
import type { Link, RedirectRecord } from '../domain/link.ts';
import type { LinkFields } from '../domain/link-input.ts';
import type { VisitPage, VisitQuery } from '../domain/visits.ts';
import type { Delivery, DeliveryOutcome, DueDelivery, NewDelivery, Webhook } from '../domain/webhooks.ts';

export type { ClickEvent } from '../domain/clicks.ts';

export interface IdempotencyClaim {
  /** Who owns the key space (the API key id), so clients cannot collide. */
  readonly scope: string;
  readonly key: string;
  /** Hash of the request body; the same key with another body is a conflict. */
  readonly requestHash: string;
}

export interface NewLink {
  /** A custom alias, or null to have a code generated. */
  readonly alias: string | null;
  /** '' for the default domain (domain/domains.ts). */
  readonly domain: string;
  /** A generated code's length, when not the configured one (Shlink's shortCodeLength). */
  readonly codeLength?: number;
  readonly fields: LinkFields;
  readonly createdAt: Date;
  readonly idempotency: IdempotencyClaim | null;
}

export interface StoredIdempotency {
  readonly requestHash: string;
  readonly outcome: { readonly kind: 'created'; readonly link: Link } | { readonly kind: 'alias_taken' };
}

export type CreateOutcome =
  | { readonly kind: 'created'; readonly link: Link }
  | { readonly kind: 'alias_taken' }
  | { readonly kind: 'replayed'; readonly stored: StoredIdempotency };

export interface LinkWithClicks extends Link {
  readonly clicks: number;
}

/** Shlink's list query (offset pages, any order, tag modes): src/shlink. */
export interface LinkSearch {
  readonly offset: number;
  /** null: every match. */
  readonly limit: number | null;
  /** Substring of code, URL, title or a tag. */
  readonly q: string | null;
  readonly tags: readonly string[];
  /** true: every tag (`@>`); false: any of them. */
  readonly tagsAll: boolean;
  readonly excludeTags: readonly string[];
  readonly excludeTagsAll: boolean;
  readonly order: {
    readonly field: 'createdAt' | 'code' | 'url' | 'title' | 'clicks' | 'humanClicks';
    readonly desc: boolean;
  };
  readonly createdFrom: Date | null;
  readonly createdTo: Date | null;
  readonly excludeUsedUp: boolean;
  /** Leave out links expired at this time. */
  readonly expiredAt: Date | null;
  readonly domain: string | null;
  /** Only the link with this code (with `domain`, one link): a single link with its bots' clicks. */
  readonly code?: string;
}

export interface SearchedLink extends LinkWithClicks {
  /** Of `clicks`, how many were bots'. */
  readonly botClicks: number;
}

export interface TagStats {
  readonly tag: string;
  readonly links: number;
  readonly clicks: number;
  readonly botClicks: number;
}

export interface ListCursor {
  readonly createdAt: Date;
  readonly code: string;
  readonly domain: string;
}

export interface ListQuery {
  readonly limit: number;
  readonly cursor: ListCursor | null;
  readonly tag: string | null;
  readonly q: string | null;
  /** Only this domain's links ('' the default domain); null: every domain's. */
  readonly domain: string | null;
}

export interface ListPage {
  readonly items: LinkWithClicks[];
  readonly next: ListCursor | null;
}

export type ImportStatus = 'created' | 'unchanged' | 'conflict';

/**
 * The store's methods that name one link take its link key (domain/domains.ts): the code on the
 * default domain, `host/code` on another.
 */
export interface LinkStore {
  /** Creates a link; concurrent calls may share one transaction (group commit). */
  createLink(req: NewLink): Promise<CreateOutcome>;
  /** The redirect decision record, tombstones included (they answer 404), or null. */
  getRedirect(key: string): Promise<RedirectRecord | null>;
  /** A live link with its click count; null when unknown or deleted. */
  getLink(key: string): Promise<LinkWithClicks | null>;
  listLinks(query: ListQuery): Promise<ListPage>;
  updateLink(key: string, patch: Partial<LinkFields>, now: Date): Promise<Link | null>;
  /** Leaves a tombstone so the code is never issued again. False when there was nothing live. */
  deleteLink(key: string, now: Date): Promise<boolean>;
  /** One atomic conditional increment for a maxClicks link; false when the limit is used up. */
  consumeClick(key: string): Promise<boolean>;
  getIdempotency(scope: string, key: string, notBefore: Date): Promise<StoredIdempotency | null>;
  /** Shlink's list: a page of matches in any order, and how many match. */
  searchLinks(query: LinkSearch): Promise<{ items: SearchedLink[]; total: number }>;
  /** A live link on the domain with exactly this URL (the newest), or null. */
  findLinkByUrl(url: string, domain: string): Promise<Link | null>;
  /** Every tag of live links with how many links have it and their clicks. */
  tagStats(): Promise<TagStats[]>;
  /** Renames a tag on every link (each change is an outbox event). */
  renameTag(from: string, to: string, now: Date): Promise<'renamed' | 'not_found' | 'conflict'>;
  /** Removes tags from every link; how many links changed. */
  deleteTags(tags: readonly string[], now: Date): Promise<number>;
  /** Codes of the domain's live crawlable links ('' the default domain), at most `limit`. */
  crawlableCodes(domain: string, limit: number): Promise<string[]>;
  /** Whether any live link is on this domain. */
  domainHasLinks(domain: string): Promise<boolean>;
  /** Copies links in as they are (codes kept); idempotent. */
  importLinks(links: readonly Link[]): Promise<ImportStatus[]>;
  /** Every link in code order, tombstones only when asked. */
  exportLinks(opts: { includeDeleted: boolean }): AsyncIterable<Link>;
  /**
   * Operator-error recovery: puts back links as a copy from before the mistake holds them, but only
   * where this store has no row for the code, or a tombstone made while the mistake ran (at or after
   * `window.from`, before `window.to` when given). A link live here (changed since, or never
   * touched), or deleted outside the window, is left as it is. Each link put back is an outbox
   * event. Returns what happened to each.
   */
  restoreLinks(links: readonly Link[], window: DeleteWindow, now: Date): Promise<RestoreStatus[]>;
  /** How many change streams there are: one per shard, each with its own sequence. */
  readonly changeStreams: number;
  /** The change stream (DESIGN §6): outbox rows of stream (shard) `stream` after `afterSeq`, in order. */
  readChanges(afterSeq: number, limit: number, stream?: number): Promise<ChangeEvent[]>;
  /** The relay appended every change of `stream` up to throughSeq to the change stream in Redis. */
  markChangesPublished(throughSeq: number, stream?: number): Promise<void>;
}

/** When an operator's mistake deleted links: from (inclusive) to (exclusive; null: until now). */
export interface DeleteWindow {
  readonly from: Date;
  readonly to: Date | null;
}

/** recreated: no row had the code; undeleted: its tombstone was lifted; kept: left as it is here. */
export type RestoreStatus = 'recreated' | 'undeleted' | 'kept';

export interface ChangeEvent {
  readonly seq: number;
  readonly kind: 'link.created' | 'link.updated' | 'link.deleted';
  /** The link key (domain/domains.ts). */
  readonly code: string;
  readonly bucket: number;
  readonly at: Date;
  readonly link: Link;
}

/** Registered domains (one small table, on shard 0 when there are shards). */
export interface DomainStore {
  /** Every domain, the default one ('' host) included. */
  listDomains(): Promise<Domain[]>;
  /** False when the host is registered already. */
  createDomain(domain: Domain): Promise<boolean>;
  /** Null when the host is not registered. */
  updateDomain(host: string, patch: Partial<DomainRedirects>): Promise<Domain | null>;
  /** False when the host was not registered. */
  deleteDomain(host: string): Promise<boolean>;
}

export type OrphanType = 'root' | 'unknown_code' | 'other';

/** Visits that found no link, summed per hour by a process and written as one batch. */
export interface OrphanBatch {
  /** UUIDv7; written once (the click_batches ledger). */
  readonly id: string;
  readonly rows: readonly {
    readonly domain: string;
    /** Hour start, epoch ms. */
    readonly hour: number;
    readonly bot: boolean;
    readonly type: OrphanType;
    /** '' for the paths beyond the ones a batch keeps. */
    readonly path: string;
    readonly visits: number;
  }[];
  /** The flush's visits one by one, up to a bound (the rest are only in `rows`). */
  readonly list?: readonly OrphanVisit[];
}

/** One orphan visit, as listed. */
export interface OrphanVisit {
  /** UUIDv7 (time-ordered). */
  readonly id: string;
  readonly at: number;
  readonly domain: string;
  readonly type: OrphanType;
  /** The request's path and query, cut at a bound. */
  readonly path: string;
  readonly bot: boolean;
  readonly userAgent: string | null;
  readonly referer: string | null;
}

export interface OrphanListQuery {
  readonly from: number;
  readonly to: number;
  /** null: every domain. */
  readonly domain: string | null;
  readonly type: OrphanType | null;
  readonly includeBots: boolean;
  readonly offset: number;
  readonly limit: number;
}

export interface OrphanQuery {
  readonly from: number;
  readonly to: number;
  readonly interval: 'hour' | 'day';
  /** null: every domain. */
  readonly domain: string | null;
  readonly includeBots: boolean;
  readonly top: number;
}

export interface OrphanStats {
  readonly series: readonly { readonly t: number; readonly clicks: number }[];
  readonly types: readonly { readonly key: OrphanType; readonly clicks: number }[];
  /** Most visited paths first; '' (the rest) is not listed. */
  readonly paths: readonly { readonly key: string; readonly clicks: number }[];
}

export interface OrphanStore {
  recordOrphans(batch: OrphanBatch): Promise<'applied' | 'duplicate'>;
  orphanStats(query: OrphanQuery): Promise<OrphanStats>;
  /** Listed orphan visits, newest first, and how many match. */
  orphanVisits(query: OrphanListQuery): Promise<{ visits: OrphanVisit[]; total: number }>;
  /** Deletes every orphan visit, listed and counted; returns how many were counted. */
  deleteOrphanVisits(): Promise<number>;
}

export interface ApiKeyRecord {
  readonly id: string;
  readonly name: string;
  readonly prefix: string;
  readonly createdAt: Date;
  readonly revokedAt: Date | null;
}

export interface ApiKeyStore {
  createApiKey(rec: ApiKeyRecord, keyHash: string): Promise<void>;
  /** The live (not revoked) key with this hash. */
  findApiKeyByHash(keyHash: string): Promise<ApiKeyRecord | null>;
  listApiKeys(): Promise<ApiKeyRecord[]>;
  /** Accepts the id or the key's visible prefix. False when no live key matched. */
  revokeApiKey(idOrPrefix: string, now: Date): Promise<boolean>;
  countApiKeys(): Promise<number>;
}

/**
 * A producer's batch of clicks, already summed into rollup increments, with an id that makes
 * writing it exactly-once (DESIGN §7). Summing first is what keeps the write rate independent of
 * how many clicks a hot link gets. `events` are kept raw for the retention window.
 */
export interface ClickBatch {
  /** Time-ordered UUID (v7). */
  readonly id: string;
  readonly events: readonly ClickEvent[];
  readonly rollups: readonly RollupIncrement[];
  readonly visitors: readonly VisitorRegister[];
}

export interface StatsQuery {
  /** A link's key, or ALL_LINKS. */
  readonly code: string;
  /**
   * With ALL_LINKS: only the links of this domain ('' the default domain), summed from their own
   * rows (the all-links rows span every domain). Costs a read of every link's rows in the window.
   */
  readonly domain?: string;
  /** Whole hours, epoch ms: [from, to). */
  readonly from: number;
  readonly to: number;
  readonly interval: 'hour' | 'day';
  readonly includeBots: boolean;
  /** How many entries each breakdown and topLinks keep. */
  readonly top: number;
  /**
   * Clicks this process holds that the rollups do not have yet, to be counted with them. Called
   * right as the statements are sent: the embedded database runs statements in the order sent, so
   * a fold that starts after the call is written after the statements run.
   */
  readonly pending?: () => PendingClicks;
}

/**
 * Rollup rows held in memory (the embedded writer folds them into the tables every few minutes).
 * A row with a `batch` id is being written as that batch: it counts only while the ledger does not
 * have the batch yet, so a stats read sees each click once, before, during and after the write.
 */
export interface PendingClicks {
  readonly rollups: readonly (RollupIncrement & { readonly batch: string | null })[];
  readonly visitors: readonly (VisitorRegister & { readonly batch: string | null })[];
}

/** A raw batch not folded into the rollups yet, with the fold it was given to, if any. */
export interface UnfoldedBatch {
  readonly id: string;
  readonly fold: { readonly id: string; readonly parts: number } | null;
  readonly events: readonly ClickEvent[];
}

/**
 * The embedded click log (DESIGN §7): each flush stores its clicks raw, durable at once and one row
 * per batch; folds later sum many flushes into the rollups (as ledger batches of their own) and mark
 * the raw batches folded. After a crash, the unfolded batches are folded again: exactly once, as a
 * fold's batch ids are fixed when it starts.
 */
export interface ClickLog {
  /** Stores a raw batch, unfolded; a replayed id changes nothing. */
  writeRawClicks(id: string, events: readonly ClickEvent[]): Promise<'applied' | 'duplicate'>;
  /** Gives these unfolded raw batches to a fold (idempotent). */
  beginFold(fold: { id: string; parts: number }, batchIds: readonly string[]): Promise<void>;
  /** Marks a fold's raw batches folded, after all its rollup batches are written. */
  endFold(foldId: string): Promise<void>;
  /** Raw batches not folded yet, oldest first. */
  unfoldedClicks(): Promise<UnfoldedBatch[]>;
  /** The embedded database's own thread, where the click writer then runs; absent elsewhere. */
  readonly databaseThread?: DatabaseThread | null;
}

export interface ClickStats {
  /** Buckets with clicks only, oldest first; t is the bucket start (epoch ms). */
  readonly series: readonly { readonly t: number; readonly clicks: number }[];
  /** Each breakdown's top values ('' = unknown), most clicks first. */
  readonly breakdowns: Readonly<Record<BreakdownDim, readonly { value: string; clicks: number }[]>>;
  /** The visitor registers' maxima over the window's days (for the HyperLogLog estimate); registers
   * are named so that estimates from several shards merge by taking each register's maximum. */
  readonly visitorRegisters: readonly { readonly reg: number; readonly rank: number }[];
  /** Only for ALL_LINKS: the links with most clicks in the window. */
  readonly topLinks: readonly { code: string; clicks: number }[];
}

export interface ClickMaintenance {
  /** Hours before this (epoch ms) are also summed per day. */
  readonly compactedThrough: number;
  readonly prunedEvents: number;
  readonly prunedBatches: number;
}

export interface ClickStore {
  /** Applies a batch's rollup increments exactly once: a replayed batch id changes nothing. */
  recordClickBatch(batch: ClickBatch): Promise<'applied' | 'duplicate'>;
  /** Answers from rollups only, never from raw events. */
  clickStats(query: StatsQuery): Promise<ClickStats>;
  /** The salt of each UTC day asked for (epoch ms of its start), made once and shared by every process. */
  daySalts(days: readonly number[], fresh: () => string): Promise<Map<number, string>>;
  /**
   * Sums whole past days into daily rollups and drops raw events, batch ids and salts older than
   * the retention window.
   */
  maintainClicks(now: number, retentionDays: number): Promise<ClickMaintenance>;
}

/**
 * Raw visits as lists (DESIGN §7): clicks are written raw one row per batch, then split off the
 * redirect path into visit rows, a link's own or its bucket's tail, which a link's list reads.
 */
export interface VisitStore {
  /** Splits a group of folded raw batches into visit rows; the clicks moved (0: nothing left). */
  splitVisits(): Promise<number>;
  /** A page of visits within the retention window, newest first, and how many match. */
  visits(query: VisitQuery): Promise<VisitPage>;
  /** Deletes these links' visits, their list and their counts; returns how many were listed. */
  deleteVisits(keys: readonly string[]): Promise<number>;
}

export interface MigrationReport {
  readonly applied: string[];
  readonly alreadyApplied: string[];
  /** Per shard, where there are shards. */
  readonly perShard?: readonly {
    readonly shard: number;
    readonly applied: string[];
    readonly alreadyApplied: string[];
  }[];
}

export interface PoolFigures {
  readonly total: number;
  readonly idle: number;
  readonly waiting: number;
  readonly max: number;
}

/** The servers behind a store and their state (the PostgreSQL store; the embedded one has none). */
export interface StoreTopology {
  readonly shardMapVersion: number;
  readonly shards: readonly {
    readonly shard: number;
    /** Buckets the shard owns under the current map. */
    readonly buckets: number;
    readonly primary: { readonly name: string; readonly up: boolean; readonly pool: PoolFigures };
    readonly replicas: readonly {
      readonly name: string;
      readonly up: boolean;
      readonly inRotation: boolean;
      readonly lagMs: number | null;
      readonly lagBytes: number | null;
      readonly lastError: string | null;
      readonly pool: PoolFigures;
    }[];
  }[];
}

/** Lifecycle of whatever holds the data. */
export interface StoreAdmin {
  readonly kind: string;
  migrate(): Promise<MigrationReport>;
  /** Throws when the store cannot answer (readiness). */
  ping(): Promise<void>;
  /** Servers, pools and replica lag, where the store has servers. */
  topology?(): StoreTopology;
  close(): Promise<void>;
}

/** Webhook subscriptions and the deliveries owed to them (kept with the API keys). */
export interface WebhookStore {
  createWebhook(w: Webhook): Promise<void>;
  listWebhooks(): Promise<Webhook[]>;
  getWebhook(id: string): Promise<Webhook | null>;
  /** False when there is no live webhook with this id; its pending deliveries are given up. */
  deleteWebhook(id: string, now: Date): Promise<boolean>;
  /**
   * Reads change stream `stream` after the webhooks' offset (at most `limit` changes), owes each
   * wanting webhook a delivery, and moves the offset, atomically. How many changes it read.
   */
  fanOutChanges(stream: number, limit: number): Promise<number>;
  /** Owes these deliveries; one already owed (same webhook and event id) is kept as it is. */
  enqueueDeliveries(ds: readonly NewDelivery[]): Promise<void>;
  /** Due deliveries, each held for lockMs so that no other sender takes it meanwhile. */
  claimDeliveries(now: Date, limit: number, lockMs: number): Promise<DueDelivery[]>;
  /** Records an attempt: delivered, due again at `next`, or dead when `next` is null. */
  finishAttempt(id: number, outcome: DeliveryOutcome, next: Date | null, now: Date): Promise<void>;
  /** A webhook's deliveries, newest first. */
  listDeliveries(webhookId: string, limit: number): Promise<Delivery[]>;
}

export type Store = LinkStore &
  DomainStore &
  OrphanStore &
  ApiKeyStore &
  ClickStore &
  VisitStore &
  WebhookStore &
  StoreAdmin;

/** The embedded database's own thread, which also runs work that belongs next to the data. */
export interface DatabaseThread {
  /** Asks the thread for an operation and waits for its answer. */
  call<T>(msg: Record<string, unknown>): Promise<T>;
  /** Sends without waiting for an answer; the buffers in `transfer` move to the thread (no copy). */
  post(msg: Record<string, unknown>, transfer?: readonly ArrayBuffer[]): void;
  /** Messages the thread sends unasked. */
  onNotice(listener: (notice: unknown) => void): void;
  /** Runs before a read that adds held clicks is sent: clicks still on this side go first. */
  beforeHeldRead(listener: () => void): void;
}

/** What the embedded database's thread holds, in bytes. */
export interface DatabaseThreadMemory {
  /** The database's WASM memory: PostgreSQL's buffers, caches and sorts (it never shrinks). */
  wasm: number;
  /** The thread's V8 heap, used and reserved, and memory outside it that V8 knows of. */
  heapUsed: number;
  heapTotal: number;
  external: number;
}
