// deploy/'s monitoring files are valid to the programs that read them: promtool checks the rules and
// the Prometheus configuration and runs the rules' unit tests (every alert has a case where it fires
// and one where it does not), the blackbox exporter checks its configuration, and both compose
// files wire Prometheus, Alertmanager, the blackbox exporter and Grafana to files that exist.
// promtool and the exporter are Debian's (scripts/ensure-debian.sh, which npm test runs).
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  allRules,
  DASHBOARDS_DIR,
  DEPLOY,
  PROMETHEUS_CONFIG,
  RULES_DIR,
  readYaml,
  ruleFiles,
  ruleTestFiles,
  run,
} from '../support/monitoring.ts';

describe('Prometheus rules and configuration', () => {
  test('promtool check rules passes every rule file', async () => {
    const files = ruleFiles().map((f) => f.file);
    assert.ok(files.length >= 4, `rule files in ${RULES_DIR}`);
    const r = await run('promtool', ['check', 'rules', ...files]);
    assert.equal(r.code, 0, r.output);
  });

  test('promtool check config passes deploy/prometheus.yml, with every rule file it names', async () => {
    const r = await run('promtool', ['check', 'config', PROMETHEUS_CONFIG]);
    assert.equal(r.code, 0, r.output);
    // Its rule_files glob finds every rule file (a file outside it would never be loaded).
    assert.match(r.output, new RegExp(`SUCCESS: ${ruleFiles().length} rule files found`));
  });

  test('promtool test rules passes every rule test file', async () => {
    const r = await run('promtool', ['test', 'rules', ...ruleTestFiles()], { timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.output);
  });

  test('every alert has a rule test where it fires and one where it does not', () => {
    const fires = new Set<string>();
    const silent = new Set<string>();
    const tested = new Set<string>();
    for (const file of ruleTestFiles()) {
      const t = readYaml<{
        rule_files: string[];
        tests: { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[];
      }>(file);
      for (const r of t.rule_files) tested.add(join(RULES_DIR, '..', 'tests', r));
      for (const c of t.tests) {
        for (const a of c.alert_rule_test ?? []) {
          ((a.exp_alerts ?? []).length > 0 ? fires : silent).add(a.alertname);
        }
      }
    }
    const alerts = allRules().flatMap((r) => (r.alert === undefined ? [] : [r.alert]));
    assert.ok(alerts.length > 20, 'alerts found');
    assert.deepEqual(
      alerts.filter((a) => !fires.has(a)),
      [],
      'alerts without a firing case',
    );
    assert.deepEqual(
      alerts.filter((a) => !silent.has(a)),
      [],
      'alerts without a silent case',
    );
    for (const f of ruleFiles()) {
      const hasAlerts = f.groups.some((g) => g.rules.some((r) => r.alert !== undefined));
      if (hasAlerts) assert.ok(tested.has(join(f.file)), `${f.file} is loaded by a rule test`);
    }
  });

  test('every alert is a page or a ticket, with a summary and a runbook section in docs/slos.md', () => {
    const slos = readFileSync(join(DEPLOY, '../docs/slos.md'), 'utf8');
    const anchors = new Set(
      [...slos.matchAll(/^#+ (.+)$/gm)].map((m) =>
        m[1]!
          .toLowerCase()
          .replace(/[^a-z0-9 -]/g, '')
          .replace(/ /g, '-'),
      ),
    );
    for (const r of allRules()) {
      if (r.alert === undefined) continue;
      assert.ok(['page', 'ticket'].includes(r.labels?.severity ?? ''), `${r.alert} severity`);
      assert.ok(r.annotations?.summary, `${r.alert} summary`);
      const anchor = /^docs\/slos\.md#(.+)$/.exec(r.annotations?.runbook_url ?? '')?.[1];
      assert.ok(anchor !== undefined && anchors.has(anchor), `${r.alert} runbook_url names a section`);
      assert.ok(slos.includes(r.alert.replace(/(Fast|Slow)Burn$/, '')), `${r.alert} is in docs/slos.md`);
    }
  });
});

describe('the blackbox exporter configuration', () => {
  test('prometheus-blackbox-exporter --config.check accepts deploy/blackbox.yml', async () => {
    const r = await run('prometheus-blackbox-exporter', [
      '--config.check',
      `--config.file=${join(DEPLOY, 'blackbox.yml')}`,
    ]);
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, /Config file is ok/);
  });

  test('the canary module expects a redirect it does not follow, by HEAD', () => {
    const m = readYaml<{ modules: Record<string, { prober: string; http: Record<string, unknown> }> }>(
      join(DEPLOY, 'blackbox.yml'),
    ).modules.hop_canary!;
    assert.equal(m.prober, 'http');
    assert.equal(m.http.method, 'HEAD');
    assert.equal(m.http.follow_redirects, false);
    assert.deepEqual(m.http.valid_status_codes, [301, 302, 307, 308]);
  });
});

describe('compose files and Grafana provisioning', () => {
  interface Compose {
    services: Record<string, { volumes?: string[]; image?: string; build?: unknown }>;
  }
  const composeFiles = ['compose.yaml', 'compose.postgres.yaml'];

  for (const name of composeFiles) {
    test(`${name} runs Prometheus, Alertmanager, the blackbox exporter and Grafana on files that exist`, () => {
      const c = readYaml<Compose>(join(DEPLOY, name));
      for (const s of ['hop', 'prometheus', 'alertmanager', 'blackbox', 'grafana', 'canary']) {
        assert.ok(c.services[s], `${name}: service ${s}`);
      }
      for (const [service, s] of Object.entries(c.services)) {
        for (const v of s.volumes ?? []) {
          const source = v.split(':')[0]!;
          if (source.startsWith('.'))
            assert.ok(existsSync(join(DEPLOY, source)), `${name}: ${service} mounts ${source}`);
        }
      }
      const mounts = (s: string) =>
        (c.services[s]?.volumes ?? []).map((v) => v.split(':').slice(0, 2).join(':'));
      // prometheus.yml's relative rule_files and file_sd paths resolve beside it in the container.
      assert.deepEqual(mounts('prometheus'), [
        './prometheus.yml:/etc/prometheus/prometheus.yml',
        './prometheus:/etc/prometheus/prometheus',
      ]);
      assert.ok(mounts('grafana').includes('./grafana/dashboards:/var/lib/grafana/dashboards'));
      assert.ok(mounts('grafana').includes('./grafana/provisioning:/etc/grafana/provisioning'));
    });
  }

  test('the dashboards use the provisioned data source, and the provider reads where they are mounted', () => {
    const ds = readYaml<{ datasources: { uid: string; type: string; url: string }[] }>(
      join(DEPLOY, 'grafana/provisioning/datasources/prometheus.yml'),
    ).datasources;
    assert.deepEqual(
      ds.map((d) => [d.uid, d.type, d.url]),
      [['prometheus', 'prometheus', 'http://prometheus:9090']],
    );
    const providers = readYaml<{ providers: { options: { path: string } }[] }>(
      join(DEPLOY, 'grafana/provisioning/dashboards/hop.yml'),
    ).providers;
    assert.deepEqual(
      providers.map((p) => p.options.path),
      ['/var/lib/grafana/dashboards'],
    );
    const uids = new Set<string>();
    for (const f of readdirSync(DASHBOARDS_DIR).filter((x) => x.endsWith('.json'))) {
      const text = readFileSync(join(DASHBOARDS_DIR, f), 'utf8');
      const d = JSON.parse(text) as { uid: string; panels: unknown[] };
      assert.ok(!uids.has(d.uid), `${f}: uid ${d.uid} is unique`);
      uids.add(d.uid);
      assert.ok(d.panels.length > 0, `${f} has panels`);
      for (const m of text.matchAll(/"uid": "([^"]+)"/g)) {
        if (m[1] !== d.uid) assert.equal(m[1], 'prometheus', `${f}: data source uid`);
      }
    }
    assert.deepEqual([...uids].sort(), ['hop-click-pipeline', 'hop-golden-signals', 'hop-store-replicas']);
  });
});
