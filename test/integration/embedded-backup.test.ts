// `hop backup` and `hop restore` on the embedded database, as users run them: a backup asked of a
// serving Hop over its control socket and one of a stopped data directory, restored into an empty
// directory and served again with the same links (tombstones too), keys, webhooks, click stats and
// change stream; a non-empty directory and a damaged file are refused.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runHopSources, startHopSources } from '../support/hop-cli.ts';
import { type HopProcess, tempDir } from '../support/hop-process.ts';

const KEY = 'hop_backuptestkeybackuptestkey0001';
const auth = { authorization: `Bearer ${KEY}` };

async function api(hop: HopProcess, method: string, path: string, body?: unknown) {
  const res = await fetch(`${hop.url}${path}`, {
    method,
    headers: body === undefined ? auth : { ...auth, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  // Request ids differ per request; everything else must not.
  const parsed =
    text === ''
      ? null
      : (JSON.parse(text, (k, v) => (k === 'requestId' ? undefined : v)) as Record<string, unknown>);
  return { status: res.status, body: parsed };
}

/** What a user sees of the data: the answers that must be the same after a restore. */
async function answers(hop: HopProcess, codes: string[]) {
  const links: unknown[] = [];
  for (const c of codes) {
    const r = await api(hop, 'GET', `/api/v1/links/${c}`);
    const redirect = await fetch(`${hop.url}/${c}`, { method: 'HEAD', redirect: 'manual' });
    links.push({ code: c, status: r.status, body: r.body, redirect: redirect.status });
  }
  const window = `from=${encodeURIComponent(FROM)}&to=${encodeURIComponent(TO)}&interval=day`;
  const stats = await api(hop, 'GET', `/api/v1/links/${codes[0]}/stats?${window}`);
  const all = await api(hop, 'GET', `/api/v1/stats?${window}`);
  const keys = await api(hop, 'GET', '/api/v1/keys');
  const hooks = await api(hop, 'GET', '/api/v1/webhooks');
  const list = await api(hop, 'GET', '/api/v1/links?limit=100');
  return { links, stats, all, keys, hooks, list };
}

const DAY = 86_400_000;
const FROM = new Date(Math.floor(Date.now() / DAY) * DAY - 7 * DAY).toISOString();
const TO = new Date(Math.floor(Date.now() / DAY) * DAY + 2 * DAY).toISOString();

const seqOf = (stdout: string) => Number(/changes through seq (\d+)/.exec(stdout)?.[1] ?? Number.NaN);

describe('embedded backups', () => {
  const dir = tempDir('hop-bk-');
  const data = join(dir.path, 'data');
  const backups = join(dir.path, 'scheduled');
  const env = {
    HOP_DATA_DIR: data,
    HOP_INITIAL_API_KEY: KEY,
    // One public URL for the server and the restored one (links show it in shortUrl).
    HOP_PUBLIC_URL: 'http://hop.test',
    HOP_WEBHOOK_ALLOW_TARGETS: '127.0.0.1',
    HOP_WEBHOOKS: 'off',
    HOP_CLICK_FLUSH_MS: '60000',
  };
  const codes = ['bk-live', 'bk-gone', 'bk-edited'];
  let before_: Awaited<ReturnType<typeof answers>>;
  let liveSeq = 0;
  after(() => dir.remove());

  before(async () => {
    const hop = await startHopSources({
      ...env,
      HOP_BACKUP_DIR: backups,
      HOP_BACKUP_INTERVAL: '1s',
      HOP_BACKUP_KEEP: '2',
    });
    try {
      for (const c of codes)
        assert.equal(
          (await api(hop, 'POST', '/api/v1/links', { url: `https://${c}.example/`, alias: c })).status,
          201,
        );
      for (let i = 0; i < 20; i++)
        await api(hop, 'POST', '/api/v1/links', { url: `https://bulk.example/${i}` });
      assert.equal((await api(hop, 'DELETE', '/api/v1/links/bk-gone')).status, 204);
      assert.equal(
        (await api(hop, 'PATCH', '/api/v1/links/bk-edited', { url: 'https://edited.example/', tags: ['x'] }))
          .status,
        200,
      );
      assert.equal((await api(hop, 'POST', '/api/v1/keys', { name: 'second' })).status, 201);
      assert.equal(
        (
          await api(hop, 'POST', '/api/v1/webhooks', {
            url: 'http://127.0.0.1:9/hook',
            events: ['link.created'],
          })
        ).status,
        201,
      );
      // Clicks the server still holds (flush every 60 s): the backup must write them first.
      for (let i = 0; i < 7; i++) await fetch(`${hop.url}/bk-live`, { redirect: 'manual' });
      before_ = await answers(hop, codes);

      const r = await runHopSources(['backup', '--output', join(dir.path, 'live.gz')], env);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /from the running server: 2\d tables/);
      assert.match(r.stdout, /answered nothing else for \d+ ms/);
      liveSeq = seqOf(r.stdout);
      assert.ok(liveSeq >= 25, r.stdout);

      // The schedule (1 s here) keeps the newest 2 and says when the last one succeeded.
      const deadline = Date.now() + 20_000;
      let metrics = '';
      for (;;) {
        metrics = await (await fetch(`${hop.url}/metrics`)).text();
        const n = Number(/^hop_backup_last_success_timestamp_seconds (\S+)$/m.exec(metrics)?.[1]);
        if (n > 0 && readdirSync(backups).length >= 2 && /^hop_backup_size_bytes [1-9]/m.test(metrics)) break;
        assert.ok(Date.now() < deadline, `no scheduled backups: ${readdirSync(backups)}`);
        await new Promise((res) => setTimeout(res, 200));
      }
      await new Promise((res) => setTimeout(res, 2_500));
      const files = readdirSync(backups).filter((f) => f.endsWith('.gz'));
      assert.equal(files.length, 2, `kept: ${files}`);
      assert.match(metrics, /^hop_backup_interval_seconds 1$/m);
      assert.match(metrics, /^hop_backup_failures_total 0$/m);
    } finally {
      assert.equal(await hop.stop(), 0, hop.stderr());
    }
    assert.ok(!existsSync(join(data, 'hop.sock')), 'the control socket is removed on shutdown');
  });

  test('a stopped data directory is backed up by the CLI itself, with the same changes', async () => {
    const r = await runHopSources(['backup', '--output', join(dir.path, 'stopped.gz')], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /no server running/);
    assert.equal(seqOf(r.stdout), liveSeq);
  });

  test('a restore into an empty directory serves the same data, and new changes number after it', async () => {
    const restored = join(dir.path, 'restored');
    const r = await runHopSources(['restore', join(dir.path, 'live.gz'), '--data-dir', restored], {});
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /links\s+23\s+OK/);
    assert.match(r.stdout, /outbox\s+\d+\s+OK/);
    assert.match(r.stdout, /^OK: \d+ tables/m);

    const hop = await startHopSources({
      ...env,
      HOP_DATA_DIR: restored,
      HOP_BACKUP_DIR: backups,
      HOP_BACKUP_INTERVAL: '1d',
    });
    try {
      assert.deepEqual(await answers(hop, codes), before_);
      // The tombstone keeps its code retired.
      const again = await api(hop, 'POST', '/api/v1/links', {
        url: 'https://reuse.example/',
        alias: 'bk-gone',
      });
      assert.equal(again.status, 409);
      assert.equal((await api(hop, 'POST', '/api/v1/links', { url: 'https://after.example/' })).status, 201);
      // A restart knows the newest good backup in HOP_BACKUP_DIR at once.
      const metrics = await (await fetch(`${hop.url}/metrics`)).text();
      assert.ok(Number(/^hop_backup_last_success_timestamp_seconds (\S+)$/m.exec(metrics)?.[1]) > 0, metrics);
    } finally {
      assert.equal(await hop.stop(), 0, hop.stderr());
    }
    const b = await runHopSources(['backup', '--output', join(dir.path, 'after.gz')], {
      HOP_DATA_DIR: restored,
    });
    assert.equal(b.code, 0, b.stderr);
    assert.equal(seqOf(b.stdout), liveSeq + 1, 'the new create took the seq after the restored ones');
  });

  test('a restore refuses a non-empty directory and a damaged file, and leaves nothing behind', async () => {
    const full = join(dir.path, 'not-empty');
    const occupied = tempDir('hop-bk-full-');
    writeFileSync(join(occupied.path, 'something'), 'x');
    try {
      const r = await runHopSources(['restore', join(dir.path, 'live.gz'), '--data-dir', occupied.path], {});
      assert.equal(r.code, 1);
      assert.match(r.stderr, /is not empty/);
    } finally {
      occupied.remove();
    }
    const cut = join(dir.path, 'cut.gz');
    copyFileSync(join(dir.path, 'live.gz'), cut);
    truncateSync(cut, Math.floor(statSync(cut).size * 0.6));
    const r = await runHopSources(['restore', cut, '--data-dir', full], {});
    assert.equal(r.code, 1);
    assert.match(r.stderr, /truncated/);
    assert.ok(!existsSync(full), 'no data directory is left by a refused restore');
  });
});
