// What every importer hands the shared import run (run-import.ts): pages of links as the other
// shortener describes them, with their visits or click counts and any orphan visits. An importer
// only reads its source; turning links into Hop's, writing them and keeping state is shared.
import type { OrphanType } from '../storage/ports.ts';

/** A redirect rule already in Hop's shape (domain/redirect-rules.ts), checked when the link is built. */
export interface SourceRule {
  readonly url: string;
  readonly conditions: readonly { readonly type: string; readonly key?: string; readonly value?: string }[];
}

export interface SourceVisit {
  /** Epoch ms. */
  readonly at: number;
  readonly referer: string | null;
  readonly userAgent: string | null;
  /** ISO 3166-1 alpha-2, or null when unknown. */
  readonly country: string | null;
  readonly bot: boolean;
  /** What tells visitors apart besides the user agent (never an IP): e.g. region and city. */
  readonly place: string;
}

export interface SourceOrphan {
  readonly at: number;
  /** Host the visit was for (null: the source's default domain). */
  readonly host: string | null;
  /** The path asked for, without its query. */
  readonly path: string;
  readonly type: OrphanType;
  readonly bot: boolean;
  /** As the source recorded them, when it does. */
  readonly userAgent?: string | null;
  readonly referer?: string | null;
}

/** Pages of something read in one go (a link's visits, the orphan visits): a re-run reads it again. */
export type Stream<T> = () => AsyncIterable<readonly T[]>;

export interface SourceLink {
  /** How the source names the link, for messages (e.g. `s.example/abc`). */
  readonly ref: string;
  readonly code: string;
  /** The host the source puts it on; null or '' for the source's default domain. */
  readonly domain: string | null;
  readonly url: string;
  readonly title?: string | null;
  readonly tags?: readonly string[];
  readonly createdAt?: Date | null;
  readonly validSince?: Date | null;
  /** May lie in the past: an import keeps a link as it was. */
  readonly expiresAt?: Date | null;
  readonly maxClicks?: number | null;
  /** Redirects already counted against maxClicks. */
  readonly usedClicks?: number;
  readonly crawlable?: boolean;
  readonly forwardQuery?: boolean;
  readonly disabled?: boolean;
  readonly rules?: readonly SourceRule[];
  /** What could not be carried over but did not stop the link (e.g. a rule left out), reported. */
  readonly notes?: readonly string[];
  /** A click count without detail (written as one rollup at the link's creation hour). */
  readonly clicks?: number;
  /** The link's visits; read only once the link is imported. */
  readonly visits?: Stream<SourceVisit>;
}

export interface SourcePage {
  /** Where a later run resumes once this page is written (JSON). */
  readonly cursor: unknown;
  /** For progress and messages, e.g. "page 3 of 12". */
  readonly label: string;
  readonly links: readonly SourceLink[];
  /** Visits that found no link, read in one go after the page's links. */
  readonly orphans?: Stream<SourceOrphan>;
  /** Records the source had that could not be read as links, with the reason. */
  readonly failures?: readonly { readonly ref: string; readonly reason: string }[];
  /** Links the source has in all, when it says. */
  readonly total?: number | null;
}

export interface ImportSource {
  /** shlink, kutt, yourls, bitly, csv. */
  readonly name: string;
  /** The URL or file read: names the state file and seeds the batch ids. */
  readonly origin: string;
  /** Pages from `cursor` on (null: from the start); `extra` is kept in the state file between runs. */
  pages(cursor: unknown, extra: Record<string, string>): AsyncIterable<SourcePage>;
}

/** A source that cannot go on (refused credentials, an answer it cannot read). */
export class SourceError extends Error {
  override readonly name = 'SourceError';
}

/** A date as sources write them (ISO 8601, `+0000` offsets, or `YYYY-MM-DD hh:mm:ss` taken as UTC). */
export function sourceDate(v: unknown): Date | null {
  if (v === null || v === undefined || v === '') return null;
  if (typeof v === 'number') return Number.isFinite(v) ? new Date(v) : null;
  if (typeof v !== 'string') return null;
  let s = v.trim();
  if (/^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(s)) s = `${s.replace(' ', 'T')}Z`;
  s = s.replace(/([+-]\d{2})(\d{2})$/, '$1:$2');
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? null : d;
}
