// Lints the OpenAPI document Hop serves with Redocly's recommended rules and fails on any error or
// warning: builds the app in this process (in memory, no logs), writes /api/v1/openapi.json to a
// temporary folder and runs `redocly lint` there, offline. `node --import tsx scripts/lint-openapi.ts`
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { buildDeps, closeDeps } from '../src/deps.ts';
import { createLogger } from '../src/logger.ts';
import { MemoryStore } from '../src/storage/memory/memory-store.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
// Problems recorded as accepted, each with its reason; Redocly reads it from the folder it runs in.
const IGNORE_FILE = '.redocly.lint-ignore.yaml';
const REDOCLY = createRequire(import.meta.url).resolve('@redocly/cli/bin/cli.js');

interface Problem {
  ruleId: string;
  severity: string;
  message: string;
  location: { pointer?: string }[];
}

interface LintReport {
  totals: { errors: number; warnings: number; ignored: number };
  problems: Problem[];
}

async function servedDocument(): Promise<string> {
  const config = loadConfig({}, { HOP_DATA_DIR: ':memory:', HOP_LOG_LEVEL: 'silent' });
  // The document comes from the route schemas alone; the memory store spares booting PGlite.
  const deps = await buildDeps(config, { log: createLogger('silent'), store: new MemoryStore() });
  try {
    const app = await buildApp(deps);
    try {
      const res = await app.inject({ url: '/api/v1/openapi.json' });
      if (res.statusCode !== 200) throw new Error(`GET /api/v1/openapi.json answered ${res.statusCode}`);
      // Pretty, so a problem's line number points somewhere readable.
      return JSON.stringify(res.json(), null, 2);
    } finally {
      await app.close();
    }
  } finally {
    await closeDeps(deps);
  }
}

function lint(dir: string): LintReport {
  const run = spawnSync(process.execPath, [REDOCLY, 'lint', 'openapi.json', '--format=json'], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 120_000,
    // No usage report and no version check: the test command runs offline.
    env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
  });
  if (run.error !== undefined) throw run.error;
  try {
    return JSON.parse(run.stdout) as LintReport;
  } catch {
    throw new Error(`redocly lint exited ${run.status} without a report:\n${run.stdout}\n${run.stderr}`);
  }
}

const dir = mkdtempSync(join(tmpdir(), 'hop-openapi-'));
try {
  writeFileSync(join(dir, 'openapi.json'), await servedDocument());
  copyFileSync(join(ROOT, IGNORE_FILE), join(dir, IGNORE_FILE));
  const { totals, problems } = lint(dir);
  for (const p of problems) {
    console.error(`${p.severity} ${p.ruleId}: ${p.message} at ${p.location[0]?.pointer ?? '?'}`);
  }
  if (totals.errors + totals.warnings > 0) {
    console.error(
      `openapi: ${totals.errors} errors and ${totals.warnings} warnings under Redocly's recommended rules`,
    );
    process.exitCode = 1;
  } else {
    console.log(
      `openapi: clean under Redocly's recommended rules (${totals.ignored} accepted in ${IGNORE_FILE})`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
