import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Link } from '../../src/domain/link.ts';
import { sameMapping } from '../../src/storage/link-json.ts';
import { fields } from '../support/fixtures.ts';

const link = (conditions: Record<string, string>[]): Link => ({
  ...fields({ rules: [{ url: 'https://r.example/', conditions: conditions as never }] }),
  code: 'same',
  domain: '',
  bucket: 1,
  usedClicks: 0,
  deletedAt: null,
  createdAt: new Date(0),
  updatedAt: new Date(0),
});

test('rules are the same mapping whatever order their conditions keep their keys in (jsonb reorders them)', () => {
  const built = link([{ type: 'query', key: 'utm', value: 'x' }]);
  const stored = link([{ key: 'utm', type: 'query', value: 'x' }]);
  assert.ok(sameMapping(built, stored));
  assert.ok(!sameMapping(built, link([{ type: 'query', key: 'utm', value: 'y' }])));
  assert.ok(!sameMapping(built, link([{ type: 'query', key: 'utm' }])));
});
