// Tracing is off unless the standard OTEL_* variables ask for it, and off costs nothing: no
// OpenTelemetry module is loaded, the redirect path is the same code. On, a bad value stops Hop at
// boot naming the variable.
import assert from 'node:assert/strict';
import { createRequire, register } from 'node:module';
import { after, test } from 'node:test';
import { MessageChannel } from 'node:worker_threads';
import { openTracing } from '../../src/tracing/open-tracing.ts';
import { NO_TRACING } from '../../src/tracing/tracing.ts';
import { TRACING_OFF, tracingSettings } from '../../src/tracing/tracing-config.ts';
import { startHarness } from '../support/harness.ts';

// Every module specifier this process resolves under @opentelemetry/ is reported here, by a loader
// hook (the hooks run on a thread of their own; the port carries their word back).
const HOOK = `
let port;
export function initialize(data) { port = data.port; }
export async function resolve(specifier, context, next) {
  if (specifier.startsWith('@opentelemetry/')) port.postMessage(specifier);
  return next(specifier, context);
}`;
const resolved: string[] = [];
const { port1, port2 } = new MessageChannel();
port1.on('message', (s: string) => resolved.push(s));
port1.unref();
register(`data:text/javascript,${encodeURIComponent(HOOK)}`, {
  data: { port: port2 },
  transferList: [port2],
});
after(() => port1.close());

const settle = () => new Promise((r) => setTimeout(r, 200));
// prom-client requires @opentelemetry/api (its no-op facade, for exemplars) whatever Hop does; the
// SDK, the exporter and everything else are what tracing would load.
const openTelemetrySdkModules = () =>
  Object.keys(createRequire(import.meta.url).cache).filter(
    (p) => p.includes('/@opentelemetry/') && !p.includes('/@opentelemetry/api/'),
  );

test('with no OTEL_ variables Hop serves creates and redirects without loading OpenTelemetry', async () => {
  const h = await startHarness({}, { store: 'memory', listen: true });
  try {
    assert.equal(h.config.tracing.enabled, false);
    assert.equal(h.deps.tracing, NO_TRACING);
    // Off, the server's listener is the listener itself: no wrapper, no hook, nothing per request.
    const listener = () => {};
    assert.equal(NO_TRACING.serveHttp(listener, new Set()), listener);
    const base = `http://127.0.0.1:${(h.app.server.address() as { port: number }).port}`;
    const created = await fetch(`${base}/api/v1/links`, {
      method: 'POST',
      headers: { ...h.auth, 'content-type': 'application/json' },
      body: JSON.stringify({ url: 'https://example.com/untraced' }),
    });
    assert.equal(created.status, 201);
    const { code } = (await created.json()) as { code: string };
    const redirect = await fetch(`${base}/${code}`, {
      redirect: 'manual',
      headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
    });
    assert.equal(redirect.status, 302);
  } finally {
    await h.close();
  }
  await settle();
  assert.deepEqual(resolved, []);
  assert.deepEqual(openTelemetrySdkModules(), []);
});

test('an OTLP endpoint turns tracing on, and only then is the SDK loaded', async () => {
  const settings = tracingSettings({
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9',
    OTEL_TRACES_SAMPLER: 'always_off',
  });
  assert.equal(settings.enabled, true);
  const tracing = await openTracing(settings, { serviceName: 'hop', logLevel: 'silent' });
  try {
    assert.equal(tracing.enabled, true);
    // always_off: loaded, sampling nothing (the benchmark's middle setting).
    assert.equal(
      tracing.withSpan('x', {}, () => tracing.currentTraceparent()),
      null,
    );
    await settle();
    assert.ok(resolved.includes('@opentelemetry/sdk-trace-node'), `resolved: ${resolved}`);
    assert.ok(openTelemetrySdkModules().length > 0);
  } finally {
    await tracing.close();
  }
});

test('the OTEL_ variables: which turn tracing on, the samplers, and errors that name the variable', () => {
  assert.deepEqual(tracingSettings({}), TRACING_OFF);
  assert.equal(tracingSettings({ OTEL_TRACES_EXPORTER: 'otlp' }).enabled, true);
  assert.equal(
    tracingSettings({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/v1/traces' }).enabled,
    true,
  );
  assert.equal(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }).enabled, true);
  assert.equal(
    tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'TRUE' }).enabled,
    false,
  );
  assert.equal(
    tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' }).enabled,
    false,
  );
  const on = { OTEL_TRACES_EXPORTER: 'otlp' };
  assert.equal(tracingSettings(on).sampler, 'parentbased_always_on');
  const ratio = tracingSettings({
    ...on,
    OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
    OTEL_TRACES_SAMPLER_ARG: '0.01',
  });
  assert.deepEqual([ratio.sampler, ratio.ratio], ['parentbased_traceidratio', 0.01]);
  assert.equal(tracingSettings({ ...on, OTEL_TRACES_SAMPLER: 'traceidratio' }).ratio, 1);
  for (const s of ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on']) {
    assert.equal(tracingSettings({ ...on, OTEL_TRACES_SAMPLER: s }).sampler, s);
  }
  assert.throws(() => tracingSettings({ ...on, OTEL_TRACES_SAMPLER: 'xray' }), /OTEL_TRACES_SAMPLER="xray"/);
  assert.throws(
    () => tracingSettings({ ...on, OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '2' }),
    /OTEL_TRACES_SAMPLER_ARG="2" must be a number from 0 to 1/,
  );
  assert.throws(() => tracingSettings({ OTEL_TRACES_EXPORTER: 'zipkin' }), /OTEL_TRACES_EXPORTER="zipkin"/);
  assert.throws(
    () => tracingSettings({ ...on, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }),
    /OTEL_EXPORTER_OTLP_PROTOCOL="grpc" is not supported/,
  );
  assert.equal(tracingSettings({ ...on, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' }).notes.length, 1);
});
