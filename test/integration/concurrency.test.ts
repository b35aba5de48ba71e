// Races over real HTTP on a real port: the guarantees must hold with requests truly in flight.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { baseUrl, type Harness, startHarness } from '../support/harness.ts';

let h: Harness;
let base: string;
before(async () => {
  h = await startHarness({}, { listen: true });
  base = baseUrl(h.app);
});
after(async () => {
  await h.close();
});

const post = (body: unknown) =>
  fetch(`${base}/api/v1/links`, {
    method: 'POST',
    headers: { ...h.auth, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

test('100 concurrent creates of the same alias: exactly one 201, the rest 409', async () => {
  const res = await Promise.all(
    Array.from({ length: 100 }, (_, i) => post({ url: `https://race.example/${i}`, alias: 'contested' })),
  );
  const statuses = res.map((r) => r.status);
  assert.equal(statuses.filter((s) => s === 201).length, 1);
  assert.equal(statuses.filter((s) => s === 409).length, 99);
  const bodies = await Promise.all(
    res.filter((r) => r.status === 409).map((r) => r.json() as Promise<{ code: string }>),
  );
  assert.ok(bodies.every((b) => b.code === 'alias_taken'));
});

test('maxClicks 10 under 50 concurrent redirects: exactly 10 redirect, the rest 410', async () => {
  assert.equal((await post({ url: 'https://limit.example/', alias: 'ten-only', maxClicks: 10 })).status, 201);
  const res = await Promise.all(
    Array.from({ length: 50 }, () => fetch(`${base}/ten-only`, { redirect: 'manual' })),
  );
  const statuses = res.map((r) => r.status);
  assert.equal(statuses.filter((s) => s === 302).length, 10);
  assert.equal(statuses.filter((s) => s === 410).length, 40);
});

test('concurrent creates with one Idempotency-Key make one link', async () => {
  const res = await Promise.all(
    Array.from({ length: 20 }, () =>
      fetch(`${base}/api/v1/links`, {
        method: 'POST',
        headers: { ...h.auth, 'content-type': 'application/json', 'idempotency-key': 'same-key' },
        body: JSON.stringify({ url: 'https://idem-race.example/' }),
      }),
    ),
  );
  assert.ok(res.every((r) => r.status === 201));
  const codes = new Set(await Promise.all(res.map(async (r) => ((await r.json()) as { code: string }).code)));
  assert.equal(codes.size, 1);
});

test('a redirect never waits on click recording', async () => {
  assert.equal((await post({ url: 'https://fast.example/', alias: 'no-wait' })).status, 201);
  // Stall every click write: redirects must keep answering at once.
  const store = h.deps.store;
  const original = store.recordClickBatch.bind(store);
  let release!: () => void;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  store.recordClickBatch = async (b) => {
    await gate;
    return original(b);
  };
  try {
    assert.equal((await fetch(`${base}/no-wait`, { redirect: 'manual' })).status, 302);
    await new Promise((r) => setTimeout(r, 700)); // the flush timer has now started a write that hangs
    const started = performance.now();
    for (let i = 0; i < 20; i++)
      assert.equal((await fetch(`${base}/no-wait`, { redirect: 'manual' })).status, 302);
    assert.ok(performance.now() - started < 2_000, 'redirects kept answering while the click write hung');
  } finally {
    release();
    store.recordClickBatch = original;
  }
});
