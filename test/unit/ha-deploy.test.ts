// The HA shape in deploy/ha/ for containers, held to the local HA cluster the chaos suite measured
// (scripts/cluster/ha-cluster.ts, pg-balancer-config.ts): the same HAProxy configuration, the same
// Patroni timings and flags, and a compose file whose names, ports and mounts agree with both. No
// container runs here; Patroni's own validator and haproxy -c check what they can.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { HA_TIMINGS } from '../../scripts/cluster/ha-cluster.ts';
import { DEPLOY_PG_BALANCER, pgBalancerConfig } from '../../scripts/cluster/pg-balancer-config.ts';
import { pgBinDir } from '../../scripts/cluster/pg-cluster.ts';
import { freePort } from '../../scripts/lib/free-port.ts';

const HA = fileURLToPath(new URL('../../deploy/ha/', import.meta.url));

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
}

interface PatroniYml {
  name?: string;
  scope?: string;
  restapi: { listen: string };
  etcd?: { hosts: string };
  etcd3?: unknown;
  bootstrap: {
    dcs: Record<string, unknown> & {
      postgresql: { use_pg_rewind: boolean; use_slots: boolean; parameters: Record<string, unknown> };
    };
  };
  postgresql: { listen: string; bin_dir: string; data_dir: string };
}

const read = (file: string) => readFileSync(join(HA, file), 'utf8');
// Compose's anchors with merge keys (<<: *x), as Compose reads them.
const compose = parse(read('compose.yaml'), { merge: true }) as { services: Record<string, Service> };
const patroni = parse(read('patroni.yml')) as PatroniYml;
const services = compose.services;

/** A value as Compose would pass it with nothing set in the shell: ${X:-default} is the default. */
function interpolate(value: string): string {
  return value.replace(/\$\{\w+(?::?([-?])([^}]*))?\}/g, (_, op: string | undefined, word: string) =>
    op === '-' ? word : '',
  );
}

/** Compose's environment of a service, interpolated. */
function envOf(name: string): Record<string, string> {
  const env = services[name]?.environment ?? {};
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, interpolate(String(v))]));
}

const members = DEPLOY_PG_BALANCER.shards.flatMap((shard, i) =>
  shard.members.map((m) => ({ ...m, shard: i })),
);
const portOf = (address: string) => Number(address.slice(address.lastIndexOf(':') + 1));

describe('the PostgreSQL balancer for compose', () => {
  test('deploy/ha/haproxy-postgres.cfg is what the template renders (node --import tsx scripts/cluster/pg-balancer-config.ts)', () => {
    assert.equal(read('haproxy-postgres.cfg'), pgBalancerConfig(DEPLOY_PG_BALANCER));
  });

  test('haproxy accepts it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hop-haproxy-'));
    try {
      const file = join(dir, 'haproxy.cfg');
      writeFileSync(file, read('haproxy-postgres.cfg'));
      execFileSync('haproxy', ['-c', '-q', '-f', file], { stdio: 'pipe' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("a Patroni member's configuration (deploy/ha/patroni.yml)", () => {
  test('has the timings the chaos suite measured, and they keep two leaders from overlapping', () => {
    const dcs = patroni.bootstrap.dcs;
    assert.deepEqual(
      { ttl: dcs.ttl, loop_wait: dcs.loop_wait, retry_timeout: dcs.retry_timeout },
      { ...HA_TIMINGS },
    );
    // Patroni's own rule: a leader that cannot renew demotes itself before its key expires.
    assert.ok(HA_TIMINGS.loop_wait + 2 * HA_TIMINGS.retry_timeout <= HA_TIMINGS.ttl);
  });

  test("uses etcd's v2 API (etcd:), not etcd3: (Patroni 3.0.2's etcd3 driver steals the leader key back)", () => {
    assert.ok(patroni.etcd, 'an etcd: section');
    assert.equal(patroni.etcd3, undefined);
  });

  test('synchronous mode, failsafe mode, pg_rewind and slots are on', () => {
    const dcs = patroni.bootstrap.dcs;
    assert.equal(dcs.synchronous_mode, true);
    assert.equal(dcs.failsafe_mode, true);
    assert.equal(dcs.postgresql.use_pg_rewind, true);
    assert.equal(dcs.postgresql.use_slots, true);
    // pg_rewind needs hint bits in WAL (or checksums).
    assert.equal(dcs.postgresql.parameters.wal_log_hints, 'on');
  });

  test('listens where HAProxy checks and Hop connects, and leaves scope and name to each member', () => {
    const apiPorts = new Set(members.map((m) => m.apiPort));
    const pgPorts = new Set(members.map((m) => portOf(m.address)));
    assert.deepEqual([...apiPorts], [portOf(patroni.restapi.listen)]);
    assert.deepEqual([...pgPorts], [portOf(patroni.postgresql.listen)]);
    // Set by the environment: a member started without them must not join another shard's cluster.
    assert.equal(patroni.scope, undefined);
    assert.equal(patroni.name, undefined);
  });

  test("Patroni 3.0.2's validator accepts it with a compose member's environment", async (t) => {
    if (spawnSync('patroni', ['--version']).status !== 0) {
      t.skip('patroni is not installed');
      return;
    }
    // The validator connects to the etcd hosts and refuses listen ports in use: a listener stands in
    // for etcd, and the listen addresses move to free local ports. The rest is the file and compose.
    const etcd = createServer((socket) => socket.destroy());
    await new Promise<void>((ok) => etcd.listen(0, '127.0.0.1', ok));
    try {
      const address = etcd.address();
      assert.ok(address !== null && typeof address === 'object');
      const env: Record<string, string> = {
        ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PATRONI_'))),
        ...envOf('pg0-0'),
        PATRONI_ETCD_HOSTS: `127.0.0.1:${address.port}`,
        PATRONI_RESTAPI_LISTEN: `127.0.0.1:${await freePort()}`,
        PATRONI_POSTGRESQL_LISTEN: `127.0.0.1:${await freePort()}`,
      };
      // The image's PostgreSQL 15 binaries are where Debian puts them, as here unless HOP_PG_BIN says.
      if (!existsSync(patroni.postgresql.bin_dir)) env.PATRONI_POSTGRESQL_BIN_DIR = pgBinDir();
      const r = spawnSync('patroni', ['--validate-config', join(HA, 'patroni.yml')], {
        env,
        encoding: 'utf8',
        timeout: 30_000,
      });
      assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    } finally {
      etcd.close();
    }
  });
});

describe('the compose file (deploy/ha/compose.yaml)', () => {
  test('every file it mounts or builds from exists', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const v of s.volumes ?? []) {
        const source = v.split(':')[0]!;
        if (source.startsWith('.')) assert.ok(existsSync(join(HA, source)), `${name} mounts ${source}`);
      }
      if (s.build !== undefined) {
        assert.ok(
          existsSync(join(HA, s.build.context, s.build.dockerfile)),
          `${name} builds ${s.build.dockerfile}`,
        );
      }
    }
    assert.ok(
      services['pg-balancer']?.volumes?.includes(
        './haproxy-postgres.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro',
      ),
    );
  });

  test("runs a Patroni member for every server the balancer names, each in its shard's scope", () => {
    const patroniServices = Object.entries(services)
      .filter(([, s]) => s.build?.dockerfile === 'Dockerfile.patroni')
      .map(([name]) => name);
    assert.deepEqual(patroniServices.sort(), members.map((m) => m.name).sort());
    for (const m of members) {
      const env = envOf(m.name);
      const host = m.address.slice(0, m.address.lastIndexOf(':'));
      assert.equal(host, m.name, 'the balancer reaches a member by its service name');
      assert.equal(env.PATRONI_SCOPE, `shard${m.shard}`, m.name);
      assert.equal(env.PATRONI_NAME, m.name);
      assert.equal(env.PATRONI_RESTAPI_CONNECT_ADDRESS, `${m.name}:${m.apiPort}`);
      assert.equal(env.PATRONI_POSTGRESQL_CONNECT_ADDRESS, m.address);
      assert.ok(env.PATRONI_SUPERUSER_PASSWORD && env.PATRONI_REPLICATION_PASSWORD, m.name);
    }
  });

  test("HOP_DATABASE_URLS names per shard the balancer's port first, then every member", () => {
    for (const name of ['hop', 'worker']) {
      const shards = envOf(name).HOP_DATABASE_URLS!.split(';');
      assert.equal(shards.length, DEPLOY_PG_BALANCER.shards.length, name);
      shards.forEach((urls, i) => {
        const shard = DEPLOY_PG_BALANCER.shards[i]!;
        const hosts = urls.split(',').map((u) => {
          const url = new URL(u);
          assert.equal(url.pathname, '/hop');
          return url.host;
        });
        assert.deepEqual(hosts, [
          `pg-balancer:${portOf(shard.bind)}`,
          ...shard.members.map((m) => m.address),
        ]);
      });
    }
    // Hop's superuser password is the one Patroni gives the role.
    const url = new URL(envOf('hop').HOP_DATABASE_URLS!.split(',')[0]!);
    assert.equal(url.password, envOf('pg0-0').PATRONI_SUPERUSER_PASSWORD);
  });

  test('etcd serves the v2 API, on the hosts patroni.yml names', () => {
    const etcds = Object.entries(services).filter(([, s]) => s.command?.[0] === 'etcd');
    assert.ok(etcds.length >= 1);
    for (const [name, s] of etcds) assert.ok(s.command!.includes('--enable-v2=true'), name);
    assert.deepEqual(patroni.etcd!.hosts.split(',').sort(), etcds.map(([name]) => `${name}:2379`).sort());
  });

  test('Prometheus scrapes every Patroni member', () => {
    assert.ok(
      services.prometheus?.volumes?.includes(
        './patroni-targets.yml:/etc/prometheus/prometheus/targets/patroni.yml:ro',
      ),
    );
    const targets = parse(read('patroni-targets.yml')) as { targets: string[] }[];
    assert.deepEqual(
      targets.flatMap((t) => t.targets).sort(),
      members.map((m) => `${m.name}:${m.apiPort}`).sort(),
    );
  });

  test("the member's image: Debian bookworm's PostgreSQL 15 and Patroni, run as postgres, with patroni.yml", () => {
    const dockerfile = read('Dockerfile.patroni');
    assert.match(dockerfile, /^FROM debian:bookworm/m);
    assert.match(dockerfile, /apt-get install [^\n]*\bpostgresql-15\b[^\n]*\bpatroni\b/);
    assert.match(dockerfile, /^USER postgres$/m);
    assert.match(dockerfile, /^COPY patroni\.yml \/etc\/patroni\/patroni\.yml$/m);
    assert.match(dockerfile, /^CMD \["patroni", "\/etc\/patroni\/patroni\.yml"\]$/m);
    assert.equal(patroni.postgresql.bin_dir, '/usr/lib/postgresql/15/bin');
  });
});
