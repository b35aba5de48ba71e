// Every metric the alerting and recording rules and the Grafana dashboards read is one that exists:
// exported by Hop or `hop worker` (read off their registries, built here as the processes build
// them), recorded by a rule, or exported by one of the few other programs deploy/ scrapes. A renamed
// metric would otherwise leave an alert that can never fire and a panel that shows nothing.
// Expressions are parsed with Prometheus' own PromQL grammar (@prometheus-io/lezer-promql).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createPrometheusMetrics } from '../../src/metrics/prometheus-metrics.ts';
import type { RedisClient } from '../../src/redis/connect-redis.ts';
import { createWorkerMetrics } from '../../src/worker/worker-metrics.ts';
import { allRules, dashboardQueries, metricNames, withoutGrafanaVariables } from '../support/monitoring.ts';

/**
 * Other exporters deploy/prometheus.yml scrapes, by name prefix (docs/slos.md, "Exporters other
 * than Hop"); test/integration/prometheus-fleet.test.ts checks the probe_ and haproxy_ names used
 * against the real programs.
 */
const OTHER_EXPORTERS: { what: string; matches: (name: string) => boolean }[] = [
  { what: 'Prometheus (a target answered its scrape)', matches: (n) => n === 'up' },
  { what: 'the blackbox exporter', matches: (n) => n.startsWith('probe_') },
  { what: "HAProxy's prometheus-exporter service", matches: (n) => n.startsWith('haproxy_') },
  { what: "Patroni's REST API", matches: (n) => n.startsWith('patroni_') },
];

/** The sample names a text exposition can hold: histograms as their _bucket, _sum and _count. */
function sampleNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const m of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m as unknown as [string, string, string];
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
    else if (type === 'summary') for (const s of ['', '_sum', '_count']) names.add(name + s);
    else names.add(name);
  }
  return names;
}

async function exportedByHop(): Promise<Set<string>> {
  const hop = createPrometheusMetrics({ defaultMetrics: true });
  // The worker's gauges ask Redis at scrape time; without one they are empty, but registered.
  const noRedis = async () => {
    throw new Error('no Redis in this test');
  };
  const worker = createWorkerMetrics({ xlen: noRedis, xinfo: noRedis } as unknown as RedisClient, 4);
  const [a, b] = await Promise.all([hop.render(), worker.render()]);
  return new Set([...sampleNames(a.body), ...sampleNames(b.body)]);
}

const queries = () => [
  ...allRules().map((r) => ({ where: `rule ${r.record ?? r.alert}`, expr: r.expr })),
  ...dashboardQueries().map((q) => ({
    where: `dashboard ${q.where}`,
    expr: withoutGrafanaVariables(q.expr),
  })),
];

describe('metric names in the rules and dashboards', () => {
  test('the parser finds names, __name__ matchers included, and rejects bad PromQL', () => {
    assert.deepEqual(
      [
        ...metricNames(
          'sum by (le) (rate(a_bucket{x="1"}[5m])) / on() group_left b:c:ratio + {__name__="d", y="2"} offset 1h',
        ),
      ].sort(),
      ['a_bucket', 'b:c:ratio', 'd'],
    );
    assert.throws(() => metricNames('sum(rate(a[5m])'), /syntax error/);
  });

  test('every PromQL expression parses', () => {
    const all = queries();
    assert.ok(all.length > 100, `${all.length} expressions`);
    for (const q of all) assert.doesNotThrow(() => metricNames(q.expr), `${q.where}: ${q.expr}`);
  });

  test('every metric they read is exported by Hop or hop worker, recorded by a rule, or a listed exporter', async () => {
    const exported = await exportedByHop();
    const recorded = new Set(allRules().flatMap((r) => (r.record === undefined ? [] : [r.record])));
    const unknown: string[] = [];
    const used = new Set<string>();
    for (const q of queries()) {
      for (const name of metricNames(q.expr)) {
        used.add(name);
        if (exported.has(name) || recorded.has(name) || OTHER_EXPORTERS.some((e) => e.matches(name)))
          continue;
        unknown.push(`${name} (${q.where})`);
      }
    }
    assert.deepEqual(unknown, [], 'metric names nobody exports');
    // The check is not vacuous: Hop's and the worker's own metrics are most of what is read.
    assert.ok([...used].filter((n) => exported.has(n)).length > 40);
    // Every recording rule is read by an alert or a dashboard, or it is work for nothing.
    const read = new Set(
      queries()
        .filter((q) => !q.where.startsWith('rule hop:'))
        .flatMap((q) => [...metricNames(q.expr)]),
    );
    assert.deepEqual(
      [...recorded].filter((r) => !read.has(r)),
      [],
      'recording rules nothing reads',
    );
  });
});
