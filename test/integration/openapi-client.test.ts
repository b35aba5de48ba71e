// The OpenAPI document is usable as a client contract: types generated from the document a
// listening Hop serves (openapi-typescript) type-check a small openapi-fetch program under strict
// settings, and that program then creates a link, reads it back and reads its stats.
// openapi-typescript 6: version 7 needs TypeScript 5's compiler API, which TypeScript 7 has not.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import openapiTS, { type OpenAPI3 } from 'openapi-typescript';
import { baseUrl, type Harness, startHarness } from '../support/harness.ts';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

// Compiled with the project's own strictness: a wrong path, parameter or field fails it, and so
// do the expected errors in refused() if the generated types ever stop telling them apart.
const CLIENT = `import createClient from 'openapi-fetch';
import type { paths } from './api.ts';

const [baseUrl, key] = process.argv.slice(2);
if (baseUrl === undefined || key === undefined) throw new Error('usage: client.ts BASE_URL KEY');
const client = createClient<paths>({ baseUrl, headers: { authorization: \`Bearer \${key}\` } });

const created = await client.POST('/api/v1/links', {
  body: { url: 'https://example.com/docs', alias: 'typed-client', tags: ['generated'] },
});
if (created.error !== undefined) throw new Error(\`create answered \${created.error.code}\`);
const link = created.data;

const read = await client.GET('/api/v1/links/{code}', { params: { path: { code: link.code } } });
if (read.error !== undefined) throw new Error(\`read answered \${read.error.code}\`);

const stats = await client.GET('/api/v1/links/{code}/stats', {
  params: { path: { code: link.code }, query: { interval: 'day' } },
});
if (stats.error !== undefined) throw new Error(\`stats answered \${stats.error.code}\`);

const missing = await client.GET('/api/v1/links/{code}', { params: { path: { code: 'no-such-link' } } });
const problem: string | undefined = missing.error?.code;

// Never called: what the types must refuse.
export function refused() {
  // @ts-expect-error: the API has no such path
  void client.GET('/api/v1/linkz');
  // @ts-expect-error: a link has no such field
  void link.shortCode;
  // @ts-expect-error: interval is hour or day
  void client.GET('/api/v1/stats', { params: { query: { interval: 'week' } } });
  // @ts-expect-error: a link needs its url
  void client.POST('/api/v1/links', { body: { title: 'no url' } });
}

console.log(
  JSON.stringify({
    created: { status: created.response.status, code: link.code, url: link.url, shortUrl: link.shortUrl },
    read: { status: read.response.status, url: read.data.url, linkStatus: read.data.status },
    stats: { status: stats.response.status, clicks: stats.data.totals.clicks, interval: stats.data.interval },
    missing: { status: missing.response.status, code: problem },
  }),
);
`;

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    types: ['node'],
    strict: true,
    noUncheckedIndexedAccess: true,
    exactOptionalPropertyTypes: true,
    allowImportingTsExtensions: true,
    noEmit: true,
    skipLibCheck: true,
  },
  files: ['client.ts'],
};

describe('a typed client generated from the OpenAPI document', () => {
  let h: Harness;
  let dir: string;
  let doc: OpenAPI3;

  before(async () => {
    h = await startHarness({}, { listen: true });
    dir = mkdtempSync(join(tmpdir(), 'hop-openapi-client-'));
    // The program resolves openapi-fetch, tsx and Node's types from the project.
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
    const res = await fetch(`${baseUrl(h.app)}/api/v1/openapi.json`);
    assert.equal(res.status, 200);
    doc = (await res.json()) as OpenAPI3;
    writeFileSync(join(dir, 'api.ts'), await openapiTS(doc, { silent: true }));
    writeFileSync(join(dir, 'client.ts'), CLIENT);
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify(TSCONFIG));
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
  });

  after(async () => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    await h?.close();
  });

  test('names the public URL as its server and every operation by an operationId', () => {
    assert.deepEqual(doc.servers, [{ url: 'http://hop.test' }]);
    const ids = Object.values(doc.paths ?? {}).flatMap((item) =>
      Object.values(item as Record<string, { operationId?: string }>).map((op) => op.operationId),
    );
    assert.ok(ids.length >= 25, `${ids.length} operations`);
    assert.ok(
      ids.every((id) => typeof id === 'string' && /^[a-z][A-Za-z]+$/.test(id)),
      `camelCase ids: ${ids}`,
    );
    assert.equal(new Set(ids).size, ids.length, 'operationIds are unique');
  });

  test('type-checks a program against the generated types under strict settings', async () => {
    await run(join(ROOT, 'node_modules/.bin/tsc'), ['-p', join(dir, 'tsconfig.json')], { cwd: dir });
  });

  test('creates a link, reads it back and reads its stats against a listening Hop', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'client.ts', baseUrl(h.app), h.key], {
      cwd: dir,
    });
    assert.deepEqual(JSON.parse(stdout), {
      created: {
        status: 201,
        code: 'typed-client',
        url: 'https://example.com/docs',
        shortUrl: 'http://hop.test/typed-client',
      },
      read: { status: 200, url: 'https://example.com/docs', linkStatus: 'active' },
      stats: { status: 200, clicks: 0, interval: 'day' },
      missing: { status: 404, code: 'not_found' },
    });
  });
});
