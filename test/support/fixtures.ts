// Small builders shared by tests.

import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { type ClickEvent, summarizeClicks } from '../../src/domain/clicks.ts';
import type { RedirectRecord } from '../../src/domain/link.ts';
import type { LinkFields } from '../../src/domain/link-input.ts';
import { uuid7 } from '../../src/events/uuid7.ts';
import { MIGRATIONS_DIR } from '../../src/paths.ts';
import type { ClickBatch, NewLink } from '../../src/storage/ports.ts';

export function fields(over: Partial<LinkFields> = {}): LinkFields {
  return {
    url: 'https://example.com/',
    expiresAt: null,
    validSince: null,
    maxClicks: null,
    redirectType: 302,
    forwardQuery: true,
    tags: [],
    title: null,
    disabled: false,
    crawlable: false,
    rules: null,
    expiredUrl: null,
    passwordHash: null,
    ...over,
  };
}

export function newLink(over: Partial<NewLink> & { f?: Partial<LinkFields> } = {}): NewLink {
  const { f, ...rest } = over;
  return { alias: null, domain: '', fields: fields(f), createdAt: new Date(), idempotency: null, ...rest };
}

export function redirectRecord(over: Partial<RedirectRecord> = {}): RedirectRecord {
  return {
    code: 'abc',
    domain: '',
    url: 'https://x.example/',
    redirectType: 302,
    forwardQuery: true,
    expiresAt: null,
    validSince: null,
    maxClicks: null,
    disabled: false,
    deletedAt: null,
    rules: null,
    expiredUrl: null,
    passwordHash: null,
    ...over,
  };
}

let clickSeq = 0;

/** A click as the enricher would make it; a fresh visitor unless one is given. */
export function clickEvent(over: Partial<ClickEvent> = {}): ClickEvent {
  clickSeq++;
  return {
    id: uuid7(),
    code: 'abc',
    at: Date.now(),
    referrerHost: null,
    country: null,
    browser: 'Chrome',
    os: 'Windows',
    device: 'desktop',
    bot: false,
    visitor: createHash('sha256').update(`visitor-${clickSeq}-${Math.random()}`).digest('hex').slice(0, 16),
    ...over,
  };
}

/** One exactly-once batch carrying these clicks, summed as the pipeline sums them. */
export function clickBatch(events: readonly ClickEvent[], id: string = uuid7()): ClickBatch {
  return { id, events, ...summarizeClicks(events) };
}

/** Every migration Hop ships, in the order they apply (a new one needs no test edited). */
export function migrationNames(): string[] {
  return readdirSync(MIGRATIONS_DIR)
    .filter((f) => f.endsWith('.sql'))
    .sort()
    .map((f) => f.slice(0, -'.sql'.length));
}
