// deploy/'s monitoring files as the tests read them: the Prometheus rules and configuration, the
// Grafana dashboards, the PromQL in both and the metric names that PromQL selects (parsed with
// Prometheus' own grammar), and the Debian programs that check them.
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parser } from '@prometheus-io/lezer-promql';
import { parse as parseYaml } from 'yaml';

export const DEPLOY = fileURLToPath(new URL('../../deploy/', import.meta.url));
export const PROMETHEUS_CONFIG = join(DEPLOY, 'prometheus.yml');
export const RULES_DIR = join(DEPLOY, 'prometheus/rules');
export const RULE_TESTS_DIR = join(DEPLOY, 'prometheus/tests');
export const DASHBOARDS_DIR = join(DEPLOY, 'grafana/dashboards');

export interface Rule {
  readonly record?: string;
  readonly alert?: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
}

export interface RuleFile {
  readonly file: string;
  readonly groups: { name: string; rules: Rule[] }[];
}

const yamlFiles = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f.endsWith('.yml'))
    .sort()
    .map((f) => join(dir, f));

export function readYaml<T>(file: string): T {
  return parseYaml(readFileSync(file, 'utf8')) as T;
}

export function ruleFiles(): RuleFile[] {
  return yamlFiles(RULES_DIR).map((file) => ({ file, ...readYaml<Omit<RuleFile, 'file'>>(file) }));
}

export function ruleTestFiles(): string[] {
  return yamlFiles(RULE_TESTS_DIR);
}

export function allRules(): Rule[] {
  return ruleFiles().flatMap((f) => f.groups.flatMap((g) => g.rules));
}

interface Panel {
  title?: string;
  targets?: { expr?: string }[];
  panels?: Panel[];
}

/** Every PromQL query of every dashboard: where it is, and the query. */
export function dashboardQueries(): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  for (const f of readdirSync(DASHBOARDS_DIR).filter((x) => x.endsWith('.json'))) {
    const d = JSON.parse(readFileSync(join(DASHBOARDS_DIR, f), 'utf8')) as { panels: Panel[] };
    const visit = (p: Panel) => {
      for (const t of p.targets ?? [])
        if (t.expr !== undefined) out.push({ where: `${f}: ${p.title}`, expr: t.expr });
      for (const child of p.panels ?? []) visit(child);
    };
    for (const p of d.panels) visit(p);
  }
  return out;
}

/** Grafana's interval variables become a plain duration, so the query parses as Prometheus sees it. */
export function withoutGrafanaVariables(expr: string): string {
  return expr.replace(/\$__(rate_interval|interval|range)\b/g, '5m');
}

/**
 * The metric names a PromQL expression selects (by name, or by a `__name__` matcher). Throws on
 * any syntax error, naming where it is.
 */
export function metricNames(expr: string): Set<string> {
  const tree = parser.parse(expr);
  const names = new Set<string>();
  const errors: number[] = [];
  tree.iterate({
    enter(node) {
      if (node.type.isError) errors.push(node.from);
      if (node.name !== 'VectorSelector') return;
      const id = node.node.getChild('Identifier');
      if (id !== null) names.add(expr.slice(id.from, id.to));
      for (const m of node.node.getChild('LabelMatchers')?.getChildren('UnquotedLabelMatcher') ?? []) {
        const label = m.getChild('LabelName');
        const value = m.getChild('StringLiteral');
        if (label !== null && value !== null && expr.slice(label.from, label.to) === '__name__') {
          names.add(JSON.parse(expr.slice(value.from, value.to)) as string);
        }
      }
    },
  });
  if (errors.length > 0) {
    throw new Error(`PromQL syntax error at ${errors[0]}: ${expr.slice(errors[0], (errors[0] ?? 0) + 30)}`);
  }
  return names;
}

/** Runs a program to its end: exit code and output. Missing programs name the installer. */
export function run(
  command: string,
  args: string[],
  opts: { cwd?: string; timeoutMs?: number } = {},
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { cwd: opts.cwd, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if ((err as NodeJS.ErrnoException | null)?.code === 'ENOENT') {
          reject(
            new Error(
              `${command} is not on PATH: run \`bash scripts/ensure-debian.sh promtool=prometheus prometheus-blackbox-exporter=prometheus-blackbox-exporter\` (npm test does)`,
            ),
          );
          return;
        }
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
        resolve({ code, output: `${stdout}${stderr}` });
      },
    );
  });
}
