// The point of the open-loop generator: a server stall must show up in the tail for every request that
// was due during it, where a closed-loop run records it only once per connection.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { runClosedLoop } from '../../../bench/lib/closed-loop.ts';
import { runOpenLoop } from '../../../bench/lib/open-loop.ts';
import { histogramOf } from '../../../bench/lib/recorder.ts';

const STALL_MS = 1000;
const STALL_AFTER_MS = 600;
const RUN_S = 2.5;

describe('coordinated omission', () => {
  let server: Server;
  let port = 0;
  // Every response due inside [stallFrom, stallUntil) is held until stallUntil: the whole server freezes.
  let stallFrom = Number.POSITIVE_INFINITY;
  let stallUntil = Number.POSITIVE_INFINITY;

  before(async () => {
    server = createServer((_req, res) => {
      const now = performance.now();
      const answer = () =>
        res.writeHead(302, { Location: 'https://example.com/', 'Content-Length': '0' }).end();
      if (now >= stallFrom && now < stallUntil) setTimeout(answer, stallUntil - now);
      else answer();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const armStall = () => {
    stallFrom = performance.now() + STALL_AFTER_MS;
    stallUntil = stallFrom + STALL_MS;
  };

  it('open loop charges the stall to every request that was due during it', async () => {
    armStall();
    const rate = 200;
    const r = await runOpenLoop({
      target: { host: '127.0.0.1', port },
      label: 'stall',
      rate,
      connections: 8,
      durationS: RUN_S,
      maxRequests: 10_000,
      request: () => ({ method: 'GET', path: '/x', expect: 'redirect' }),
      progress: false,
    });
    assert.equal(r.errorCount, 0);
    assert.equal(r.completed, rate * RUN_S);
    // About rate * stall = 200 requests were due during the stall, their waits spread evenly over
    // 0..1000 ms, so about 100 of them waited at least half of it. Margins allow for a loaded machine.
    const slow = histogramOf(r)!.countAtOrAboveMs(STALL_MS / 2);
    assert.ok(slow >= 60, `expected many requests >= ${STALL_MS / 2} ms, got ${slow}`);
    assert.ok(r.latency.p99 >= STALL_MS * 0.8, `open-loop p99 ${r.latency.p99} ms should reflect the stall`);
    assert.ok(r.latency.max >= STALL_MS * 0.9, `open-loop max ${r.latency.max} ms`);
  });

  it('closed loop under-reports the same stall (one slow sample per connection)', async () => {
    armStall();
    const connections = 4;
    const r = await runClosedLoop({
      target: { host: '127.0.0.1', port },
      label: 'stall',
      connections,
      durationS: RUN_S,
      maxRequests: 200_000,
      request: () => ({ method: 'GET', path: '/x', expect: 'redirect' }),
      progress: false,
    });
    assert.equal(r.errorCount, 0);
    assert.ok(r.completed > 1000, `closed loop should have run many requests, got ${r.completed}`);
    const slow = histogramOf(r)!.countAtOrAboveMs(STALL_MS / 2);
    assert.ok(slow >= 1 && slow <= connections * 2, `closed loop saw ${slow} slow samples`);
    assert.ok(r.latency.max >= STALL_MS * 0.5, `closed-loop max ${r.latency.max} ms`);
    assert.ok(r.latency.p99 < STALL_MS / 4, `closed-loop p99 ${r.latency.p99} ms should hide the stall`);
  });
});
