// Machine-enforced layering: the domain does no I/O and imports no adapter; routes and use
// cases see ports only; only the composition root picks adapters.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+'([^']+)'/gm)].map((m) => {
    const spec = m[1]!;
    return spec.startsWith('.') ? relative(SRC, resolve(dirname(file), spec)) : spec;
  });
}

const files = sourceFiles(SRC).map((f) => ({ path: relative(SRC, f), imports: imports(f) }));
const ADAPTERS = [
  /^storage\/(embedded|sql|memory|postgres)\//,
  /^metrics\/prometheus-metrics\.ts$/,
  /^ratelimit\/(memory|redis)-rate-limiter\.ts$/,
  /^cache\/(redis-cache|memory-shared-cache)\.ts$/,
  /^events\/(buffered|stream|thread)-click-sink\.ts$/,
  /^tracing\/otel-tracing\.ts$/,
];
// deps.ts composes Hop; worker/run-worker.ts composes `hop worker`. Resharding copies rows
// between databases itself (the `hop shards` and `hop move-store` commands): storage-layer work.
const COMPOSITION = [/^deps\.ts$/, /^storage\//, /^cli\//, /^worker\/run-worker\.ts$/, /^resharding\//];

test('the domain imports nothing but itself and node:crypto', () => {
  for (const f of files.filter((f) => f.path.startsWith('domain/'))) {
    for (const i of f.imports) {
      assert.ok(i.startsWith('domain/') || i === 'node:crypto', `${f.path} imports ${i}`);
    }
  }
});

test('only the composition root and the storage layer import concrete adapters', () => {
  for (const f of files.filter((f) => !COMPOSITION.some((c) => c.test(f.path)))) {
    for (const i of f.imports) {
      assert.ok(!ADAPTERS.some((a) => a.test(i)), `${f.path} imports the adapter ${i}`);
    }
  }
});

test('routes and use cases do not reach into http internals of each other or the store', () => {
  for (const f of files.filter((f) => /^(links|redirect|keys)\//.test(f.path))) {
    for (const i of f.imports)
      assert.ok(!/^(storage\/(?!ports\.ts|link-json\.ts)|redis\/)/.test(i), `${f.path} imports ${i}`);
  }
});

test('only the tracing adapter imports OpenTelemetry (loaded on demand, so off loads none of it)', () => {
  for (const f of files.filter((f) => f.path !== 'tracing/otel-tracing.ts')) {
    for (const i of f.imports) assert.ok(!i.startsWith('@opentelemetry/'), `${f.path} imports ${i}`);
  }
});

test('server code logs through the structured logger, never console', () => {
  for (const f of files.filter((f) => !f.path.startsWith('cli/'))) {
    const text = readFileSync(join(SRC, f.path), 'utf8');
    assert.ok(!/\bconsole\.(log|info|warn|error)\(/.test(text), `${f.path} uses console`);
  }
});
