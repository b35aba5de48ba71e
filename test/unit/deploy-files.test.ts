// The production files in deploy/ that no other test starts: every Kubernetes manifest parses and
// names its kind, and the pgBackRest configuration archives without dropping WAL, as the local
// cluster does (scripts/cluster/backups.ts).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

const DEPLOY = fileURLToPath(new URL('../../deploy/', import.meta.url));

test('every Kubernetes manifest parses, and each document has apiVersion, kind and a name', () => {
  const files = readdirSync(join(DEPLOY, 'k8s')).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.includes('pgbackrest-cronjob.yaml'));
  for (const f of files) {
    for (const doc of parseAllDocuments(readFileSync(join(DEPLOY, 'k8s', f), 'utf8'))) {
      assert.deepEqual(doc.errors, [], f);
      const o = doc.toJS() as { apiVersion?: string; kind?: string; metadata?: { name?: string } } | null;
      if (o === null) continue;
      assert.ok(
        o.apiVersion && o.kind && o.metadata?.name,
        `${f}: a document without apiVersion, kind or name`,
      );
    }
  }
});

test('the pgBackRest configuration: async archiving that never drops WAL, retention, a stanza per shard', () => {
  const conf = readFileSync(join(DEPLOY, 'pgbackrest', 'pgbackrest.conf'), 'utf8');
  const settings = conf.split('\n').filter((l) => /^[a-z0-9-]+=/.test(l));
  assert.ok(settings.includes('archive-async=y'));
  assert.ok(settings.some((l) => l.startsWith('repo1-retention-full=')));
  assert.ok(!settings.some((l) => l.startsWith('archive-push-queue-max')), 'WAL must never be dropped');
  assert.match(conf, /^\[shard0\]$/m);
  for (const unit of readdirSync(join(DEPLOY, 'pgbackrest')).filter((f) => f.endsWith('.service'))) {
    assert.match(
      readFileSync(join(DEPLOY, 'pgbackrest', unit), 'utf8'),
      /ExecStartPost=.*pgbackrest .*verify/,
      unit,
    );
  }
});
