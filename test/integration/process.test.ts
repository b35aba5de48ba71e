// The real `hop` process: restarts keep data, SIGTERM drains and loses nothing, the CLI works.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { migrationNames } from '../support/fixtures.ts';
import { runHop, startHop, tempDir } from '../support/hop-process.ts';

const KEY = 'hop_processtestkeyprocesstestkey01';

describe('the hop process', () => {
  const dir = tempDir();
  const env = { HOP_DATA_DIR: dir.path, HOP_INITIAL_API_KEY: KEY, HOP_CLICK_FLUSH_MS: '60000' };
  after(() => dir.remove());

  test('data survives a restart, and SIGTERM flushes every acknowledged click', async () => {
    const first = await startHop(env);
    const created = await fetch(`${first.url}/api/v1/links`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ url: 'https://survive.example/', alias: 'survivor' }),
    });
    assert.equal(created.status, 201);
    // Redirects in flight when SIGTERM lands: each one answered must be counted.
    const inflight = Array.from({ length: 40 }, () =>
      fetch(`${first.url}/survivor`, { redirect: 'manual' }).then(
        (r) => r.status,
        () => 0,
      ),
    );
    await new Promise((r) => setTimeout(r, 20));
    const code = await first.stop('SIGTERM');
    const statuses = await Promise.all(inflight);
    assert.equal(code, 0, first.stderr());
    const answered = statuses.filter((s) => s === 302).length;
    assert.ok(
      statuses.every((s) => s === 302 || s === 0 || s === 503),
      `statuses: ${statuses}`,
    );

    const second = await startHop(env);
    try {
      const r = await fetch(`${second.url}/survivor`, { redirect: 'manual' });
      assert.equal(r.status, 302);
      assert.equal(r.headers.get('location'), 'https://survive.example/');
      const res = await fetch(`${second.url}/api/v1/links/survivor`, { headers: { 'x-api-key': KEY } });
      const link = (await res.json()) as { clicks: number };
      // Every click the first process answered, and the one just made (counted at once).
      assert.equal(link.clicks, answered + 1);
    } finally {
      assert.equal(await second.stop(), 0);
    }
  });

  test('SIGTERM behind a balancer: unready first, still serving (each answer closing its connection), then gone', async () => {
    const drained = tempDir();
    const hop = await startHop({
      HOP_DATA_DIR: drained.path,
      HOP_INITIAL_API_KEY: KEY,
      HOP_DRAIN_DELAY_MS: '1500',
    });
    try {
      const created = await fetch(`${hop.url}/api/v1/links`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ url: 'https://drain.example/', alias: 'draining' }),
      });
      assert.equal(created.status, 201);
      const agent = new http.Agent({ keepAlive: true });
      const get = (path: string) =>
        new Promise<{ status: number; connection: string | undefined }>((resolve, reject) => {
          http
            .get(`${hop.url}${path}`, { agent }, (res) => {
              res.resume();
              res.on('end', () =>
                resolve({ status: res.statusCode ?? 0, connection: res.headers.connection }),
              );
            })
            .on('error', reject);
        });
      assert.deepEqual(await get('/readyz'), { status: 200, connection: 'keep-alive' });
      const exited = hop.stop('SIGTERM');
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(await get('/readyz'), { status: 503, connection: 'close' }, 'unready while draining');
      assert.deepEqual(
        await get('/draining'),
        { status: 302, connection: 'close' },
        'redirects still served',
      );
      assert.equal(await exited, 0, hop.stderr());
      agent.destroy();
    } finally {
      drained.remove();
    }
  });

  test('SIGKILL loses at most the clicks of the last flush interval', async () => {
    const killed = tempDir();
    const env = { HOP_DATA_DIR: killed.path, HOP_INITIAL_API_KEY: KEY, HOP_CLICK_FLUSH_MS: '200' };
    try {
      const first = await startHop(env);
      const created = await fetch(`${first.url}/api/v1/links`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ url: 'https://killed.example/', alias: 'killed' }),
      });
      assert.equal(created.status, 201);
      for (let i = 0; i < 30; i++) await fetch(`${first.url}/killed`, { redirect: 'manual' });
      await new Promise((r) => setTimeout(r, 1_500)); // several flush intervals: all 30 written
      for (let i = 0; i < 20; i++) await fetch(`${first.url}/killed`, { redirect: 'manual' });
      await first.stop('SIGKILL');
      const second = await startHop(env);
      try {
        const res = await fetch(`${second.url}/api/v1/links/killed`, { headers: { 'x-api-key': KEY } });
        const { clicks } = (await res.json()) as { clicks: number };
        assert.ok(clicks >= 30 && clicks <= 50, `clicks after SIGKILL: ${clicks}`);
      } finally {
        assert.equal(await second.stop(), 0);
      }
    } finally {
      killed.remove();
    }
  });

  test('the admin key is printed once, on the first start only', async () => {
    const fresh = tempDir();
    try {
      const a = await startHop({ HOP_DATA_DIR: fresh.path });
      await a.stop();
      const key = /Admin API key[^:]*: (hop_\w+)/.exec(a.stdout())?.[1];
      assert.ok(key, a.stdout());
      assert.match(a.stdout(), /Hop is running at http:\/\/127\.0\.0\.1:\d+/);
      const b = await startHop({ HOP_DATA_DIR: fresh.path });
      try {
        assert.doesNotMatch(b.stdout(), /Admin API key/);
        const ok = await fetch(`${b.url}/api/v1/links`, { headers: { authorization: `Bearer ${key}` } });
        assert.equal(ok.status, 200);
      } finally {
        await b.stop();
      }
    } finally {
      fresh.remove();
    }
  });

  test('a bad setting stops the process with a message naming it', async () => {
    const r = await runHop(['serve'], { PORT: 'eighty', HOP_DATA_DIR: dir.path });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /PORT="eighty" must be a whole number/);
    const f = await runHop(['serve', '--cache-size=-5'], { HOP_DATA_DIR: dir.path });
    assert.equal(f.code, 2);
    assert.match(f.stderr, /--cache-size="-5"/);
    const p = await runHop(['serve'], { HOP_PUBLIC_URL: 'not a url', HOP_DATA_DIR: dir.path });
    assert.match(p.stderr, /HOP_PUBLIC_URL/);
  });
});

describe('the hop CLI', () => {
  const dir = tempDir();
  const env = { HOP_DATA_DIR: dir.path };
  before(async () => {
    const m = await runHop(['migrate'], env);
    assert.equal(m.code, 0, m.stderr);
    assert.ok(
      m.stdout.includes(`embedded: applied ${migrationNames().join(', ')}; already applied: 0`),
      m.stdout,
    );
  });
  after(() => dir.remove());

  test('--help works on every command', async () => {
    for (const args of [
      ['--help'],
      ['serve', '--help'],
      ['migrate', '--help'],
      ['keys', '--help'],
      ['export', '--help'],
      ['import', '--help'],
    ]) {
      const r = await runHop(args, env);
      assert.equal(r.code, 0, `${args}: ${r.stderr}`);
      assert.match(r.stdout, /Usage: hop/);
      assert.match(r.stdout, /HOP_DATA_DIR/);
    }
    const bad = await runHop(['frobnicate'], env);
    assert.equal(bad.code, 2);
  });

  test('keys create, list and revoke', async () => {
    const c = await runHop(['keys', 'create', '--name', 'deploy'], env);
    assert.equal(c.code, 0, c.stderr);
    const key = /(hop_\w{32})/.exec(c.stdout)?.[1];
    const id = /(key_[\w-]+)/.exec(c.stdout)?.[1];
    assert.ok(key && id);
    const l = await runHop(['keys', 'list'], env);
    assert.match(l.stdout, new RegExp(`${id}.*deploy.*active`));
    assert.ok(!l.stdout.includes(key), 'keys are shown once only');
    assert.equal((await runHop(['keys', 'revoke', id], env)).code, 0);
    assert.match((await runHop(['keys', 'list'], env)).stdout, new RegExp(`${id}.*revoked`));
    assert.equal((await runHop(['keys', 'revoke', id], env)).code, 1);
  });

  test('import is idempotent, reports bad lines and carries on; export round-trips', async () => {
    const lines = [
      JSON.stringify({
        code: 'imp-one',
        url: 'https://one.example/',
        tags: ['x'],
        createdAt: '2025-01-01T00:00:00.000Z',
      }),
      '{not json',
      JSON.stringify({ code: 'imp-two', url: 'ftp://nope' }),
      JSON.stringify({ code: 'imp-three', url: 'https://three.example/', expiresAt: '2020-01-01T00:00:00Z' }),
      JSON.stringify({ code: 'api', url: 'https://reserved.example/' }),
      // The same code on another domain is another link; its domain is registered as it is met.
      JSON.stringify({ code: 'imp-one', domain: 'Go.Imp.Example', url: 'https://one-b.example/' }),
    ];
    const file = join(dir.path, 'links.jsonl');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const first = await runHop(['import', file], env);
    assert.equal(first.code, 1);
    assert.match(first.stdout, /3 created, 0 unchanged, 0 conflicts, 3 invalid/);
    assert.match(first.stderr, /Registered domain go\.imp\.example/);
    assert.match(first.stderr, /line 2: validation_failed/);
    assert.match(first.stderr, /line 3: invalid_url/);
    assert.match(first.stderr, /line 5: reserved_alias/);
    const again = await runHop(
      ['import', '-'],
      env,
      `${lines[0]}\n${JSON.stringify({ code: 'imp-three', url: 'https://changed.example/' })}\n`,
    );
    assert.match(again.stdout, /0 created, 1 unchanged, 1 conflicts, 0 invalid/);
    assert.match(again.stderr, /line 2: conflict/);

    const exported = await runHop(['export'], env);
    assert.equal(exported.code, 0, exported.stderr);
    const rows = exported.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const one = rows.find((r) => r.code === 'imp-one' && r.domain === undefined);
    assert.equal(
      rows.find((r) => r.code === 'imp-one' && r.domain === 'go.imp.example').url,
      'https://one-b.example/',
    );
    assert.equal(one.url, 'https://one.example/');
    assert.equal(one.createdAt, '2025-01-01T00:00:00.000Z');
    assert.deepEqual(one.tags, ['x']);
    assert.equal(rows.find((r) => r.code === 'imp-three').expiresAt, '2020-01-01T00:00:00.000Z');

    const other = tempDir();
    try {
      const moved = await runHop(['import', '-'], { HOP_DATA_DIR: other.path }, exported.stdout);
      assert.equal(moved.code, 0, moved.stderr);
      assert.match(moved.stdout, new RegExp(`${rows.length} created`));
      assert.match(moved.stderr, /Registered domain go\.imp\.example/);
    } finally {
      other.remove();
    }
  });

  test('a second process on the same data directory is turned away clearly', async () => {
    const running = await startHop(env);
    try {
      const r = await runHop(['keys', 'list'], env);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /in use by process \d+/);
    } finally {
      await running.stop();
    }
  });
});
