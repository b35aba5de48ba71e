// The README is a contract: its two commands and its configuration table must stay true.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { SETTINGS } from '../../src/config.ts';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
const ci = readFileSync(new URL('../../.ci/run', import.meta.url), 'utf8');

test('the quick start has the install-and-run command and the test command, and CI runs the latter', () => {
  assert.match(readme, /```sh\nnpm install && npm start\n```/);
  assert.match(readme, /```sh\nnpm test\n```/);
  assert.ok(pkg.scripts.start && pkg.scripts.test);
  assert.match(ci, /^npm test$/m);
});

test('every setting is in the README table with its default', () => {
  for (const s of SETTINGS) {
    const row = readme.split('\n').find((l) => l.startsWith(`| \`${s.env}\` |`));
    assert.ok(row, `${s.env} missing from README`);
    assert.ok(row.includes(`\`--${s.flag}\``), `${s.env} flag`);
    if (s.default !== '') assert.ok(row.includes(`\`${s.default}\``), `${s.env} default`);
  }
});
