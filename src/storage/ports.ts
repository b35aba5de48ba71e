// The storage ports. Routes and use cases see only these; adapters (memory, embedded PGlite,
// and later pooled/sharded PostgreSQL) implement them and pass one conformance suite.

import type { Link, RedirectRecord } from '../domain/link.ts';
import type { LinkFields } from '../domain/link-input.ts';

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

export interface ListCursor {
  readonly createdAt: Date;
  readonly code: string;
}

export interface ListQuery {
  readonly limit: number;
  readonly cursor: ListCursor | null;
  readonly tag: string | null;
  readonly q: string | null;
}

export interface ListPage {
  readonly items: LinkWithClicks[];
  readonly next: ListCursor | null;
}

export type ImportStatus = 'created' | 'unchanged' | 'conflict';

export interface LinkStore {
  /** Creates a link; concurrent calls may share one transaction (group commit). */
  createLink(req: NewLink): Promise<CreateOutcome>;
  /** The redirect decision record, tombstones included (they answer 404), or null. */
  getRedirect(code: string): Promise<RedirectRecord | null>;
  /** A live link with its click count; null when unknown or deleted. */
  getLink(code: string): Promise<LinkWithClicks | null>;
  listLinks(query: ListQuery): Promise<ListPage>;
  updateLink(code: string, patch: Partial<LinkFields>, now: Date): Promise<Link | null>;
  /** Leaves a tombstone so the code is never issued again. False when there was nothing live. */
  deleteLink(code: string, now: Date): Promise<boolean>;
  /** One atomic conditional increment for a maxClicks link; false when the limit is used up. */
  consumeClick(code: string): Promise<boolean>;
  getIdempotency(scope: string, key: string, notBefore: Date): Promise<StoredIdempotency | null>;
  /** Copies links in as they are (codes kept); idempotent. */
  importLinks(links: readonly Link[]): Promise<ImportStatus[]>;
  /** Every link in code order, tombstones only when asked. */
  exportLinks(opts: { includeDeleted: boolean }): AsyncIterable<Link>;
  /** The change stream (DESIGN §6): outbox rows after `afterSeq`, in order. */
  readChanges(afterSeq: number, limit: number): Promise<ChangeEvent[]>;
}

export interface ChangeEvent {
  readonly seq: number;
  readonly kind: 'link.created' | 'link.updated' | 'link.deleted';
  readonly code: string;
  readonly bucket: number;
  readonly at: Date;
  readonly link: Link;
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

/** One redirect that counted (DESIGN §7 lists the fields analytics will add). */
export interface ClickEvent {
  readonly code: string;
  /** Epoch milliseconds. */
  readonly at: number;
  readonly referrerHost: string | null;
}

/** The rollup increment a batch carries for one link, hour and referrer. */
export interface ClickCount {
  readonly code: string;
  readonly hour: Date;
  readonly referrerHost: string | null;
  readonly clicks: number;
}

/**
 * A producer's batch: clicks already summed per (code, hour, referrer), with an id that makes
 * writing it exactly-once. Summing first is what keeps the embedded write rate independent of
 * how many clicks a hot link gets.
 */
export interface ClickBatch {
  /** Time-ordered UUID (v7). */
  readonly id: string;
  readonly counts: readonly ClickCount[];
  /** How many clicks the counts add up to. */
  readonly events: number;
}

export interface ClickStore {
  /** Applies a batch's rollup increments exactly once: a replayed batch id changes nothing. */
  recordClickBatch(batch: ClickBatch): Promise<'applied' | 'duplicate'>;
}

export interface MigrationReport {
  readonly applied: string[];
  readonly alreadyApplied: string[];
}

/** Lifecycle of whatever holds the data. */
export interface StoreAdmin {
  readonly kind: string;
  migrate(): Promise<MigrationReport>;
  /** Throws when the store cannot answer (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export type Store = LinkStore & ApiKeyStore & ClickStore & StoreAdmin;
