// The HAProxy configuration has one source (scripts/fleet/haproxy-config.ts): deploy/haproxy.cfg is
// its rendering, and both that and the fleet's rendering are valid for the real haproxy.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseEnvFile } from '../../scripts/fleet/fleet.ts';
import {
  DEFAULT_CHECK,
  DEPLOY_BALANCER,
  drainDelayFor,
  haproxyConfig,
} from '../../scripts/fleet/haproxy-config.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function haproxyAccepts(config: string): void {
  const dir = mkdtempSync(join(tmpdir(), 'hop-haproxy-'));
  try {
    const file = join(dir, 'haproxy.cfg');
    writeFileSync(file, config);
    execFileSync('haproxy', ['-c', '-q', '-f', file], { stdio: 'pipe' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('the balancer configuration', () => {
  test('deploy/haproxy.cfg is what the template renders for compose (node --import tsx scripts/fleet/haproxy-config.ts)', () => {
    assert.equal(readFileSync(join(ROOT, 'deploy/haproxy.cfg'), 'utf8'), haproxyConfig(DEPLOY_BALANCER));
  });

  test('haproxy accepts the deploy rendering and a fleet rendering', () => {
    haproxyAccepts(haproxyConfig(DEPLOY_BALANCER));
    haproxyAccepts(
      haproxyConfig({
        bind: '127.0.0.1:1',
        statsBind: '127.0.0.1:2',
        servers: { kind: 'static', list: [{ name: 'hop-1', address: '127.0.0.1:3' }] },
        check: DEFAULT_CHECK,
        maxconn: 1000,
      }),
    );
  });

  test('checks /readyz, retries only GETs after a request was sent, and forwards the client address', () => {
    const c = haproxyConfig(DEPLOY_BALANCER);
    assert.match(c, /option httpchk GET \/readyz/);
    assert.match(c, /http-request disable-l7-retry unless METH_GET/);
    assert.match(c, /option forwardfor/);
  });

  test('a draining process outlasts the checks that take it out of rotation', () => {
    const c = DEFAULT_CHECK;
    assert.ok(drainDelayFor(c) > c.intervalMs + (c.fall - 1) * c.fastIntervalMs + c.timeoutMs);
  });

  test('env files as the cluster script writes them', () => {
    assert.deepEqual(
      parseEnvFile(
        '# a comment\nHOP_DATABASE_URLS="postgres://a/hop,postgres://b/hop;postgres://c/hop"\n\nX=1\nexport Y=\'two words\'\n',
      ),
      { HOP_DATABASE_URLS: 'postgres://a/hop,postgres://b/hop;postgres://c/hop', X: '1', Y: 'two words' },
    );
    assert.throws(() => parseEnvFile('not an assignment'), /not a KEY=value line/);
  });
});
