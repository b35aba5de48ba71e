// Small builders shared by tests.

import type { RedirectRecord } from '../../src/domain/link.ts';
import type { LinkFields } from '../../src/domain/link-input.ts';
import type { NewLink } from '../../src/storage/ports.ts';

export function fields(over: Partial<LinkFields> = {}): LinkFields {
  return {
    url: 'https://example.com/',
    expiresAt: null,
    maxClicks: null,
    redirectType: 302,
    forwardQuery: true,
    tags: [],
    title: null,
    disabled: false,
    ...over,
  };
}

export function newLink(over: Partial<NewLink> & { f?: Partial<LinkFields> } = {}): NewLink {
  const { f, ...rest } = over;
  return { alias: null, fields: fields(f), createdAt: new Date(), idempotency: null, ...rest };
}

export function redirectRecord(over: Partial<RedirectRecord> = {}): RedirectRecord {
  return {
    code: 'abc',
    url: 'https://x.example/',
    redirectType: 302,
    forwardQuery: true,
    expiresAt: null,
    maxClicks: null,
    disabled: false,
    deletedAt: null,
    ...over,
  };
}
