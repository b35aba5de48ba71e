// OpenTelemetry traces end to end (issue #22): Hop, `hop worker` and `hop replay` on real PostgreSQL
// and Redis export OTLP (JSON over HTTP) to a local receiver. One create and one redirect (sent with
// a W3C traceparent) give span trees checked by name, parent and attributes; the webhook delivery the
// create owes carries a traceparent; the worker's span writing the redirect's click links back to the
// redirect's trace (producer → stream → worker); log lines carry the trace_id.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type RedisServers, startRedis, stopRedis } from '../../scripts/cluster/redis-servers.ts';
import { TEST_KEY } from '../support/harness.ts';
import { type HopProcess, runHop, startHop, startWorker } from '../support/hop-process.ts';
import { receiver, until } from '../support/http-receiver.ts';
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from '../support/otlp-receiver.ts';
import { type Cluster, freshDatabases, stopCluster, testCluster } from '../support/pg-cluster.ts';

let pg: Cluster;
let redis: RedisServers;
let otlp: OtlpReceiver;
let hooks: Awaited<ReturnType<typeof receiver>>;
before(async () => {
  [pg, redis, otlp, hooks] = await Promise.all([
    testCluster(1, 0),
    startRedis({ mode: 'single' }),
    startOtlpReceiver(),
    receiver(() => 200),
  ]);
});
after(async () => {
  await Promise.all([stopCluster(pg), stopRedis(redis), otlp.close(), hooks.close()]);
});

const auth = { authorization: `Bearer ${TEST_KEY}` };
// What a caller's tracer would send: its trace, its span, sampled.
const CALLER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';

async function spansWhere(
  what: string,
  ok: (s: ReceivedSpan) => boolean,
  ms = 20_000,
): Promise<ReceivedSpan> {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = otlp.spans.find(ok);
    if (found !== undefined) return found;
    if (Date.now() > deadline) {
      const seen = otlp.spans.map((s) => `${s.service} ${s.name}`).join(', ');
      throw new Error(`no span ${what} within ${ms} ms; received: ${seen}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

const childrenOf = (parent: ReceivedSpan) =>
  otlp.spans.filter((s) => s.traceId === parent.traceId && s.parentSpanId === parent.spanId);

function childNamed(parent: ReceivedSpan, name: string): ReceivedSpan {
  const child = childrenOf(parent).find((s) => s.name === name);
  assert.ok(child, `${parent.name} has no child ${name}; it has ${childrenOf(parent).map((s) => s.name)}`);
  return child;
}

describe('OpenTelemetry traces', () => {
  let hop: HopProcess;
  let worker: HopProcess;
  let env: Record<string, string>;

  before(async () => {
    const db = await freshDatabases(pg);
    env = {
      HOP_DATABASE_URLS: db.urls,
      HOP_REDIS_URL: redis.url,
      HOP_CLICK_PIPELINE: 'stream',
      HOP_CLICK_FLUSH_MS: '100',
      HOP_INITIAL_API_KEY: TEST_KEY,
      HOP_RATE_LIMITS: 'off',
      HOP_WEBHOOK_ALLOW_TARGETS: '127.0.0.1',
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.endpoint,
      // Export within 100 ms of a span's end, not the default 5 s.
      OTEL_BSP_SCHEDULE_DELAY: '100',
    };
    hop = await startHop({ ...env, HOP_LOG_LEVEL: 'info' });
    worker = await startWorker(env);
  });
  after(async () => {
    await Promise.all([hop.stop(), worker.stop()]);
  });

  test('a create, a redirect with a traceparent, its webhook delivery and its click in the worker', async () => {
    const sub = await fetch(`${hop.url}/api/v1/webhooks`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ url: hooks.url, events: ['link.created'] }),
    });
    assert.equal(sub.status, 201, await sub.clone().text());
    const webhookId = ((await sub.json()) as { id: string }).id;

    const created = await fetch(`${hop.url}/api/v1/links`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ url: 'https://example.com/traced' }),
    });
    assert.equal(created.status, 201);
    const code = ((await created.json()) as { code: string }).code;

    const redirect = await fetch(`${hop.url}/${code}`, {
      redirect: 'manual',
      headers: { traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-01`, tracestate: 'caller=1' },
    });
    assert.equal(redirect.status, 302);

    // The create: a new trace, its server span named by route, the store and the L2 invalidation under it.
    const create = await spansWhere(
      'for the create',
      (s) => s.service === 'hop' && s.name === 'POST /api/v1/links',
    );
    assert.equal(create.kind, 'server');
    assert.equal(create.parentSpanId, null);
    assert.equal(create.attributes['http.route'], '/api/v1/links');
    assert.equal(create.attributes['http.request.method'], 'POST');
    assert.equal(create.attributes['http.response.status_code'], 201);
    const insert = childNamed(create, 'store createLink');
    assert.equal(insert.kind, 'client');
    assert.equal(insert.attributes['db.system.name'], 'postgresql');
    assert.equal(insert.attributes['db.operation.name'], 'createLink');
    assert.equal(insert.attributes['hop.store'], 'postgres');
    const invalidate = childNamed(create, 'cache.l2 invalidate');
    const del = childNamed(invalidate, 'redis DEL');
    assert.equal(del.kind, 'client');
    assert.equal(del.attributes['db.system.name'], 'redis');
    childNamed(invalidate, 'redis PUBLISH');

    // The redirect: in the caller's trace, under the caller's span; L1 and L2 miss, the store answers.
    const served = await spansWhere(
      'for the redirect',
      (s) => s.service === 'hop' && s.name === 'GET /:code',
    );
    assert.equal(served.kind, 'server');
    assert.equal(served.traceId, CALLER_TRACE);
    assert.equal(served.parentSpanId, CALLER_SPAN);
    assert.equal(served.attributes['http.route'], '/:code');
    assert.equal(served.attributes['url.path'], `/${code}`);
    assert.equal(served.attributes['http.response.status_code'], 302);
    assert.equal(childNamed(served, 'cache.l1 get').attributes['hop.cache.result'], 'miss');
    const l2 = childNamed(served, 'cache.l2 get');
    assert.equal(l2.attributes['hop.cache.result'], 'miss');
    assert.equal(childNamed(l2, 'redis MGET').attributes['db.operation.name'], 'MGET');
    assert.equal(childNamed(served, 'store getRedirect').attributes['hop.store'], 'postgres');
    for (const s of childrenOf(served)) assert.ok(s.startMs >= served.startMs - 1, `${s.name} starts inside`);

    // The click: appended under a producer span in the redirect's trace, written by the worker in a
    // trace of its own whose span links back to that producer span.
    const send = await spansWhere(
      'appending the click',
      (s) => s.service === 'hop' && s.name.startsWith('send hop:clicks:') && s.traceId === CALLER_TRACE,
    );
    assert.equal(send.kind, 'producer');
    assert.equal(send.parentSpanId, served.spanId);
    assert.equal(send.attributes['messaging.batch.message_count'], 1);
    childNamed(send, 'redis XADD');
    const processed = await spansWhere(
      'writing the click in the worker',
      (s) =>
        s.service === 'hop-worker' &&
        s.name.startsWith('process hop:clicks:') &&
        s.links.some((l) => l.spanId === send.spanId),
    );
    assert.equal(processed.kind, 'consumer');
    assert.equal(processed.parentSpanId, null);
    assert.notEqual(processed.traceId, CALLER_TRACE);
    assert.deepEqual(processed.links, [{ traceId: CALLER_TRACE, spanId: send.spanId }]);
    assert.equal(processed.name, send.name.replace('send', 'process'));
    assert.equal(processed.attributes['hop.click_batch.id'], send.attributes['hop.click_batch.id']);
    assert.equal(processed.attributes['hop.click_batch.result'], 'applied');
    assert.equal(childNamed(processed, 'store recordClickBatch').attributes['hop.store'], 'postgres');
    childNamed(processed, 'redis XACK');

    // The webhook delivery the create owes: a client span, its traceparent on the request.
    const isCreated = (g: (typeof hooks.got)[number]) => g.headers['hop-event-type'] === 'link.created';
    await until('the webhook delivery', () => hooks.got.some(isCreated), 20_000);
    const delivered = hooks.got.find(isCreated)!;
    const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(String(delivered.headers.traceparent));
    assert.ok(m, `traceparent ${delivered.headers.traceparent}`);
    const post = await spansWhere('for the webhook delivery', (s) => s.spanId === m[2]);
    assert.equal(post.traceId, m[1]);
    assert.equal(post.kind, 'client');
    assert.equal(post.name, 'POST');
    assert.equal(post.service, 'hop');
    assert.equal(post.attributes['hop.webhook.id'], webhookId);
    assert.equal(post.attributes['hop.webhook.event_type'], 'link.created');
    assert.equal(post.attributes['http.response.status_code'], 200);
    assert.equal(post.attributes['server.address'], '127.0.0.1');
    childNamed(post, 'store finishAttempt');

    // The relay moved the create into the change stream, as a producer span of the worker's.
    const relayed = await spansWhere(
      'relaying the change',
      (s) => s.service === 'hop-worker' && s.name === 'send hop:changes:{0}',
    );
    assert.equal(relayed.kind, 'producer');
    assert.ok(Number(relayed.attributes['messaging.batch.message_count']) >= 1);

    // Log lines written inside a span carry its trace.
    const line = hop
      .stdout()
      .split('\n')
      .find((l) => l.includes('"api request"') && l.includes('"route":"/api/v1/links"'));
    assert.ok(line, 'the create was logged');
    const logged = JSON.parse(line) as { trace_id?: string; span_id?: string };
    assert.equal(logged.trace_id, create.traceId);
    assert.equal(logged.span_id, create.spanId);
  });

  test('hop replay is one trace: the stream read and the cache writes under a root span', async () => {
    const run = await runHop(['replay', '--into', 'cache'], env);
    assert.equal(run.code, 0, run.stderr);
    const root = await spansWhere('for hop replay', (s) => s.name === 'hop replay');
    assert.equal(root.parentSpanId, null);
    assert.equal(root.attributes['hop.replay.into'], 'cache');
    assert.ok(Number(root.attributes['hop.replay.links']) >= 1);
    childNamed(root, 'redis XRANGE');
    const write = childNamed(root, 'replay write');
    // Each link's SET is inside the batch's span, not a span of its own.
    assert.equal(childrenOf(write).length, 0);
  });
});
