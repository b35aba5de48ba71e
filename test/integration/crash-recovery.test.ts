// DESIGN §12 on the embedded default: an acknowledged link survives the machine. Hop takes creates,
// edits and deletes from several clients, is backed up while it serves, and is SIGKILLed mid-load;
// then only what was fsynced is kept — the last backup and the change log, copied to a fresh place —
// and a new Hop, restored from the backup, must serve every acknowledged change.
import assert from 'node:assert/strict';
import { cpSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { runHop, startHop, tempDir } from '../support/hop-process.ts';

const KEY = 'hop_crashtestkeycrashtestkeycrash01';
const auth = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
const bearer = { authorization: `Bearer ${KEY}` };

describe('a machine crash on the embedded default', () => {
  const lost = tempDir('hop-crash-');
  const kept = tempDir('hop-kept-');
  after(() => {
    lost.remove();
    kept.remove();
  });

  test('every acknowledged create, edit and delete is served again from the last backup and the log', async () => {
    const first = await startHop({ HOP_DATA_DIR: lost.path, HOP_INITIAL_API_KEY: KEY });
    const live = new Map<string, string>(); // code → URL, as acknowledged
    const deleted = new Set<string>();
    // Sent when the kill came, never answered: either outcome is right.
    const inDoubt = new Map<string, string | null>();
    let stop = false;
    const client = async (c: number) => {
      for (let i = 0; !stop && i < 2_000; i++) {
        try {
          const url = `https://crash.example/${c}/${i}`;
          const res = await fetch(`${first.url}/api/v1/links`, {
            method: 'POST',
            headers: auth,
            body: JSON.stringify({ url }),
          });
          if (res.status !== 201) continue;
          const { code } = (await res.json()) as { code: string };
          live.set(code, url);
          if (i % 10 === 5) {
            const edited = `${url}/edited`;
            inDoubt.set(code, edited);
            const r = await fetch(`${first.url}/api/v1/links/${code}`, {
              method: 'PATCH',
              headers: auth,
              body: JSON.stringify({ url: edited }),
            });
            if (r.status === 200) live.set(code, edited);
            inDoubt.delete(code);
          } else if (i % 10 === 7) {
            inDoubt.set(code, null);
            const r = await fetch(`${first.url}/api/v1/links/${code}`, { method: 'DELETE', headers: bearer });
            if (r.status === 204) {
              live.delete(code);
              deleted.add(code);
            }
            inDoubt.delete(code);
          }
        } catch {
          // The kill: whatever was in flight was never acknowledged.
        }
      }
    };
    const clients = Array.from({ length: 6 }, (_, c) => client(c));
    // Backups while Hop serves (through its control socket). After each, the log drops the segments
    // the backup covers whole; the segment a backup falls inside goes after the next one.
    const backupFile = join(kept.path, 'backup.gz');
    for (const wait of [700, 700]) {
      await new Promise((r) => setTimeout(r, wait));
      const backup = await runHop(['backup', '--output', backupFile], { HOP_DATA_DIR: lost.path });
      assert.equal(backup.code, 0, backup.stderr);
    }
    const segments = readdirSync(join(lost.path, 'changes'));
    assert.ok(
      segments.every((f) => !f.startsWith('00000000000000000000')),
      `the log was not pruned after two backups: ${segments.join(', ')}`,
    );
    await new Promise((r) => setTimeout(r, 1_000));
    await first.stop('SIGKILL');
    stop = true;
    await Promise.all(clients);
    assert.ok(live.size > 50, `only ${live.size} creates acknowledged before the kill`);
    assert.ok(deleted.size > 5, `only ${deleted.size} deletes acknowledged before the kill`);

    // Only the backup and the fsynced log survive; the data directory is lost.
    const log = join(kept.path, 'changes');
    cpSync(join(lost.path, 'changes'), log, { recursive: true });
    const data = join(kept.path, 'data');
    // The log alone no longer reaches back to the start: without the backup, Hop refuses to start.
    const refused = await runHop(['migrate'], {
      HOP_DATA_DIR: join(kept.path, 'empty'),
      HOP_CHANGE_LOG: log,
    });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /are in neither/);
    const restored = await runHop(['restore', backupFile, '--data-dir', data], {});
    assert.equal(restored.code, 0, restored.stderr);
    const second = await startHop({
      HOP_DATA_DIR: data,
      HOP_CHANGE_LOG: log,
      HOP_INITIAL_API_KEY: KEY,
    });
    try {
      const wrong: string[] = [];
      for (const [code, url] of live) {
        const res = await fetch(`${second.url}/${code}`, { redirect: 'manual' });
        if (res.headers.get('location') !== url)
          wrong.push(`${code}: ${res.status} ${res.headers.get('location')}`);
      }
      for (const code of deleted) {
        const res = await fetch(`${second.url}/${code}`, { redirect: 'manual' });
        if (res.status !== 410 && res.status !== 404) wrong.push(`${code} deleted but answers ${res.status}`);
      }
      assert.deepEqual(wrong.slice(0, 10), [], `${wrong.length} of ${live.size + deleted.size} wrong`);
      // The rebuilt database goes on: a new link, and a deleted code is never issued again.
      const fresh = await fetch(`${second.url}/api/v1/links`, {
        method: 'POST',
        headers: auth,
        body: JSON.stringify({ url: 'https://crash.example/after' }),
      });
      assert.equal(fresh.status, 201);
      const [tomb] = deleted;
      if (tomb !== undefined) {
        const again = await fetch(`${second.url}/api/v1/links`, {
          method: 'POST',
          headers: auth,
          body: JSON.stringify({ url: 'https://crash.example/reuse', alias: tomb }),
        });
        assert.equal(again.status, 409);
      }
    } finally {
      assert.equal(await second.stop(), 0, second.stderr());
    }
  });

  test('an operator deletes links by mistake: a copy from just before puts back exactly those, later writes kept', async () => {
    const live = tempDir('hop-live-');
    const side = tempDir('hop-side-');
    try {
      const env = { HOP_DATA_DIR: live.path, HOP_INITIAL_API_KEY: KEY };
      const hop = await startHop(env);
      const create = async (url: string) => {
        const res = await fetch(`${hop.url}/api/v1/links`, {
          method: 'POST',
          headers: auth,
          body: JSON.stringify({ url }),
        });
        assert.equal(res.status, 201);
        return ((await res.json()) as { code: string }).code;
      };
      const before: [string, string][] = [];
      for (let i = 0; i < 40; i++)
        before.push([await create(`https://oops.example/${i}`), `https://oops.example/${i}`]);
      const backupFile = join(side.path, 'backup.gz');
      assert.equal((await runHop(['backup', '--output', backupFile], { HOP_DATA_DIR: live.path })).code, 0);
      for (let i = 40; i < 60; i++)
        before.push([await create(`https://oops.example/${i}`), `https://oops.example/${i}`]);
      const deletedEarlier = before.shift()!;
      await fetch(`${hop.url}/api/v1/links/${deletedEarlier[0]}`, { method: 'DELETE', headers: bearer });
      await new Promise((r) => setTimeout(r, 100));
      const mistakeAt = new Date();
      await new Promise((r) => setTimeout(r, 100));
      // The mistake: every third link deleted. Then life goes on: an edit and new links.
      const victims = before.filter((_, i) => i % 3 === 0);
      for (const [code] of victims) {
        const r = await fetch(`${hop.url}/api/v1/links/${code}`, { method: 'DELETE', headers: bearer });
        assert.equal(r.status, 204);
      }
      const mistakeEnd = new Date();
      await new Promise((r) => setTimeout(r, 100));
      // A delete made on purpose after the mistake: it must stay.
      const [rightful] = before.splice(2, 1)[0]!;
      assert.equal(
        (await fetch(`${hop.url}/api/v1/links/${rightful}`, { method: 'DELETE', headers: bearer })).status,
        204,
      );
      const [editedCode] = before[1]!;
      await fetch(`${hop.url}/api/v1/links/${editedCode}`, {
        method: 'PATCH',
        headers: auth,
        body: JSON.stringify({ url: 'https://oops.example/edited-after' }),
      });
      before[1] = [editedCode, 'https://oops.example/edited-after'];
      const after = [
        await create('https://oops.example/after-1'),
        await create('https://oops.example/after-2'),
      ];
      assert.equal(await hop.stop(), 0);

      // A copy as of just before the mistake: the backup, then the log up to that moment.
      const copy = join(side.path, 'copy');
      const restored = await runHop(
        [
          'restore',
          backupFile,
          '--data-dir',
          copy,
          '--change-log',
          join(live.path, 'changes'),
          '--until',
          mistakeAt.toISOString(),
        ],
        {},
      );
      assert.equal(restored.code, 0, restored.stderr);
      const recovered = await runHop(
        [
          'recover-links',
          '--from',
          copy,
          '--since',
          mistakeAt.toISOString(),
          '--until',
          mistakeEnd.toISOString(),
        ],
        env,
      );
      assert.equal(recovered.code, 0, recovered.stderr);
      assert.match(recovered.stdout, new RegExp(`${victims.length} undeleted`));

      const again = await startHop(env);
      try {
        for (const [code, url] of before) {
          const res = await fetch(`${again.url}/${code}`, { redirect: 'manual' });
          assert.equal(res.headers.get('location'), url, code);
        }
        for (const code of after) {
          assert.equal((await fetch(`${again.url}/${code}`, { redirect: 'manual' })).status, 302);
        }
        assert.notEqual((await fetch(`${again.url}/${rightful}`, { redirect: 'manual' })).status, 302);
        // Deleted before the mistake: stays deleted.
        assert.notEqual(
          (await fetch(`${again.url}/${deletedEarlier[0]}`, { redirect: 'manual' })).status,
          302,
        );
      } finally {
        assert.equal(await again.stop(), 0);
      }
    } finally {
      live.remove();
      side.remove();
    }
  });
});
