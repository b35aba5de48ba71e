// The embedded default fits a small server: the real `hop` process, confined from its first
// instruction to a 320 MiB memory cgroup (what a container limit is), takes 10,000 links, serves
// each one's redirect and the stats, restarts, and still has every link and every click, without
// the kernel ever killing it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MemoryCgroup, memoryCgroupUnavailable } from '../../scripts/lib/memory-cgroup.ts';
import { type HopProcess, startHop, tempDir } from '../support/hop-process.ts';

const LIMIT_BYTES = 320 * 1024 * 1024;
const LINKS = 10_000;
const KEY = 'hop_memorylimitmemorylimitmemory0';
const BROWSER =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36';

/** Runs `fn` over `items` with at most `width` in flight. */
async function inParallel<T>(
  items: readonly T[],
  width: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: width }, lane));
}

// CI runs as root with the cgroup v1 memory controller; elsewhere the test says why it cannot run.
const unavailable = memoryCgroupUnavailable();
describe('Hop in a 320 MiB memory limit', { skip: process.env.CI ? false : (unavailable ?? false) }, () => {
  let group: MemoryCgroup;
  const data = tempDir('hop-memory-');
  let hop: HopProcess | null = null;
  const links: { code: string; url: string }[] = [];

  const start = () =>
    startHop({ HOP_DATA_DIR: data.path, HOP_INITIAL_API_KEY: KEY, HOP_RATE_LIMITS: 'off' }, 90_000, {
      wrap: (argv) => group.wrap(argv),
    });
  const api = (path: string, init: RequestInit = {}) =>
    fetch(`${hop!.url}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', ...init.headers },
    });
  const redirectsAll = async () => {
    let wrong = 0;
    await inParallel(links, 16, async (l) => {
      const res = await fetch(`${hop!.url}/${l.code}`, {
        redirect: 'manual',
        headers: { 'user-agent': BROWSER },
      });
      if (res.status !== 302 || res.headers.get('location') !== l.url) wrong++;
      await res.body?.cancel();
    });
    return wrong;
  };
  const totalClicks = async () => {
    const res = await api(
      '/api/v1/stats?interval=hour&from=' + new Date(Date.now() - 3_600_000).toISOString(),
    );
    assert.equal(res.status, 200);
    return ((await res.json()) as { totals: { clicks: number } }).totals.clicks;
  };

  before(async () => {
    if (unavailable !== null) throw new Error(`cannot limit memory here: ${unavailable}`);
    group = await MemoryCgroup.create(`hop-test-${process.pid}`, LIMIT_BYTES);
    hop = await start();
  });
  after(async () => {
    await hop?.stop();
    await group?.remove();
    data.remove();
  });

  test(`takes ${LINKS} links, serves them and the stats, restarts and finds everything, never OOM-killed`, async () => {
    await inParallel(
      Array.from({ length: LINKS }, (_, i) => i),
      16,
      async (i) => {
        const url = `https://example.com/memory/${i}`;
        const res = await api('/api/v1/links', { method: 'POST', body: JSON.stringify({ url }) });
        assert.equal(res.status, 201);
        links.push({ code: ((await res.json()) as { code: string }).code, url });
      },
    );
    assert.equal(links.length, LINKS);
    assert.equal(await redirectsAll(), 0, 'every link redirects to its URL');
    assert.equal(await totalClicks(), LINKS, 'every click is counted');
    const one = await api(`/api/v1/links/${links[123]!.code}/stats`);
    assert.equal(one.status, 200);
    assert.equal(((await one.json()) as { totals: { clicks: number } }).totals.clicks, 1);

    assert.equal(await hop!.stop(), 0, 'a clean exit on SIGTERM, not a kill');
    hop = await start();
    const listed = await api('/api/v1/links?limit=1');
    assert.equal(listed.status, 200);
    assert.equal(await redirectsAll(), 0, 'after the restart every link still redirects');
    assert.equal(await totalClicks(), 2 * LINKS, "the first run's clicks were kept, the second's counted");

    const report = await group.report();
    process.stderr.write(
      `# memory cgroup: peak ${(report.maxUsageBytes / 2 ** 20).toFixed(0)} MiB of ${LIMIT_BYTES / 2 ** 20}, limit reached ${report.limitHits} times, OOM kills ${report.oomKills}\n`,
    );
    assert.equal(report.oomKills, 0, 'the OOM killer never ran');
    assert.equal(hop!.child.exitCode, null, 'still running');
  });
});
