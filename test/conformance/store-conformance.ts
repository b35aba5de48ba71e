// One contract for every Store adapter: the memory adapter and the SQL adapters all run it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { bucketOf } from '../../src/domain/bucket.ts';
import { ALL_LINKS, estimateVisitors } from '../../src/domain/clicks.ts';
import { linkKey } from '../../src/domain/domains.ts';
import type { Link } from '../../src/domain/link.ts';
import { ensureInitialKey, hashApiKey } from '../../src/keys/api-keys.ts';
import type { Store } from '../../src/storage/ports.ts';
import { clickBatch, clickEvent, fields, newLink } from '../support/fixtures.ts';

const statsQuery = (code: string, from: number, to: number) => ({
  code,
  from,
  to,
  interval: 'hour' as const,
  includeBots: false,
  top: 10,
});
const sum = (series: readonly { clicks: number }[]) => series.reduce((n, p) => n + p.clicks, 0);

export function runStoreConformance(name: string, open: () => Promise<Store>): void {
  describe(`Store conformance: ${name}`, () => {
    let store: Store;
    before(async () => {
      store = await open();
    });
    after(async () => {
      await store.close();
    });

    test('processes starting at once with one initial key all start, and store it once', async () => {
      const initial = `hop_${'r'.repeat(20)}${Date.now()}`;
      // First in the suite: the store has no key yet, as on a fleet's first start.
      assert.equal(await store.countApiKeys(), 0);
      const starts = await Promise.all([1, 2, 3].map(() => ensureInitialKey(store, initial, new Date())));
      assert.ok(starts.every((s) => s.generatedKey === null));
      assert.notEqual(await store.findApiKeyByHash(hashApiKey(initial)), null);
      assert.equal(starts.filter((s) => s.created).length, 1);
      assert.equal(await store.countApiKeys(), 1);
      await assert.rejects(
        store.createApiKey(
          {
            id: 'key_dup',
            name: 'dup',
            prefix: initial.slice(0, 12),
            createdAt: new Date(),
            revokedAt: null,
          },
          hashApiKey(initial),
        ),
      );
    });

    test('a generated code is 7 base62 characters and stores its bucket', async () => {
      const r = await store.createLink(newLink());
      assert.equal(r.kind, 'created');
      if (r.kind !== 'created') return;
      assert.match(r.link.code, /^[0-9A-Za-z]{7}$/);
      assert.equal(r.link.bucket, bucketOf(r.link.code));
    });

    test('two thousand concurrent generated codes are all distinct', async () => {
      const rs = await Promise.all(Array.from({ length: 2000 }, () => store.createLink(newLink())));
      const codes = new Set(rs.map((r) => (r.kind === 'created' ? r.link.code : 'x')));
      assert.equal(codes.size, 2000);
    });

    test('100 concurrent creates of one alias: exactly one wins', async () => {
      const rs = await Promise.all(
        Array.from({ length: 100 }, () => store.createLink(newLink({ alias: 'race-alias' }))),
      );
      assert.equal(rs.filter((r) => r.kind === 'created').length, 1);
      assert.equal(rs.filter((r) => r.kind === 'alias_taken').length, 99);
    });

    test('aliases are case-sensitive', async () => {
      assert.equal((await store.createLink(newLink({ alias: 'CaseA' }))).kind, 'created');
      assert.equal((await store.createLink(newLink({ alias: 'casea' }))).kind, 'created');
    });

    test('a deleted link leaves a tombstone and its code is never issued again', async () => {
      await store.createLink(newLink({ alias: 'gone-soon', f: { url: 'https://a.example/' } }));
      assert.equal(await store.deleteLink('gone-soon', new Date()), true);
      assert.equal(await store.deleteLink('gone-soon', new Date()), false);
      assert.equal(await store.getLink('gone-soon'), null);
      const rec = await store.getRedirect('gone-soon');
      assert.notEqual(rec?.deletedAt ?? null, null);
      assert.equal((await store.createLink(newLink({ alias: 'gone-soon' }))).kind, 'alias_taken');
    });

    test('the redirect record carries the whole decision', async () => {
      const expiresAt = new Date(Date.now() + 3600_000);
      await store.createLink(
        newLink({
          alias: 'decide',
          f: {
            url: 'https://d.example/x',
            redirectType: 308,
            forwardQuery: false,
            expiresAt,
            maxClicks: 3,
            rules: [{ url: 'https://d.example/fr', conditions: [{ type: 'language', value: 'fr' }] }],
            expiredUrl: 'https://d.example/over',
            passwordHash: 'scrypt$16384$8$1$c2FsdA$a2V5',
          },
        }),
      );
      const rec = await store.getRedirect('decide');
      assert.deepEqual(rec, {
        code: 'decide',
        domain: '',
        validSince: null,
        url: 'https://d.example/x',
        redirectType: 308,
        forwardQuery: false,
        expiresAt,
        maxClicks: 3,
        disabled: false,
        deletedAt: null,
        rules: [{ url: 'https://d.example/fr', conditions: [{ type: 'language', value: 'fr' }] }],
        expiredUrl: 'https://d.example/over',
        passwordHash: 'scrypt$16384$8$1$c2FsdA$a2V5',
      });
      // Each can be changed and removed again.
      await store.updateLink('decide', { rules: null, expiredUrl: null, passwordHash: null }, new Date());
      const cleared = await store.getRedirect('decide');
      assert.deepEqual([cleared?.rules, cleared?.expiredUrl, cleared?.passwordHash], [null, null, null]);
      assert.equal(await store.getRedirect('no-such-code'), null);
    });

    test('update changes only the fields given and is visible at once', async () => {
      await store.createLink(
        newLink({ alias: 'upd', f: { url: 'https://old.example/', tags: ['a'], title: 'T' } }),
      );
      const l = await store.updateLink('upd', { url: 'https://new.example/', disabled: true }, new Date());
      assert.equal(l?.url, 'https://new.example/');
      assert.equal(l?.disabled, true);
      assert.deepEqual(l?.tags, ['a']);
      assert.equal(l?.title, 'T');
      assert.equal((await store.getRedirect('upd'))?.url, 'https://new.example/');
      assert.equal(await store.updateLink('missing', { title: 'x' }, new Date()), null);
    });

    test('maxClicks N under 50 concurrent consumers: exactly N succeed', async () => {
      await store.createLink(newLink({ alias: 'limited', f: { maxClicks: 7 } }));
      const rs = await Promise.all(Array.from({ length: 50 }, () => store.consumeClick('limited')));
      assert.equal(rs.filter(Boolean).length, 7);
      assert.equal((await store.getLink('limited'))?.usedClicks, 7);
    });

    test('list is newest first with a keyset cursor that is stable under inserts', async () => {
      const t0 = Date.UTC(2030, 0, 1);
      for (let i = 0; i < 25; i++) {
        await store.createLink(
          newLink({
            alias: `page-${String(i).padStart(2, '0')}`,
            createdAt: new Date(t0 + (i % 5) * 1000),
            f: { tags: ['paging'] },
          }),
        );
      }
      const seen: string[] = [];
      let cursor = null;
      for (let page = 0; page < 10; page++) {
        const res = await store.listLinks({ limit: 7, cursor, tag: 'paging', q: null, domain: null });
        seen.push(...res.items.map((l) => l.code));
        // Newer links arriving between pages must not shift what the cursor returns next.
        await store.createLink(
          newLink({ createdAt: new Date(t0 + 100_000 + page), f: { tags: ['paging'] } }),
        );
        if (res.next === null) break;
        cursor = res.next;
      }
      assert.equal(seen.length, 25);
      assert.equal(new Set(seen).size, 25);
      const first = seen.slice(0, 5).sort();
      assert.deepEqual(first, ['page-04', 'page-09', 'page-14', 'page-19', 'page-24']);
    });

    test('search matches code, URL or title, case-insensitively, with wildcards taken literally', async () => {
      await store.createLink(
        newLink({ alias: 'srch-one', f: { url: 'https://findme.example/path', title: 'Quarterly Report' } }),
      );
      await store.createLink(newLink({ alias: 'srch-two', f: { url: 'https://other.example/100%_done' } }));
      const byUrl = await store.listLinks({ limit: 10, cursor: null, tag: null, q: 'FINDME', domain: null });
      assert.deepEqual(
        byUrl.items.map((l) => l.code),
        ['srch-one'],
      );
      const byTitle = await store.listLinks({
        limit: 10,
        cursor: null,
        tag: null,
        q: 'quarterly',
        domain: null,
      });
      assert.deepEqual(
        byTitle.items.map((l) => l.code),
        ['srch-one'],
      );
      const byCode = await store.listLinks({ limit: 10, cursor: null, tag: null, q: 'srch-t', domain: null });
      assert.deepEqual(
        byCode.items.map((l) => l.code),
        ['srch-two'],
      );
      const literal = await store.listLinks({ limit: 10, cursor: null, tag: null, q: '%_d', domain: null });
      assert.deepEqual(
        literal.items.map((l) => l.code),
        ['srch-two'],
      );
      const none = await store.listLinks({ limit: 10, cursor: null, tag: null, q: 'srch_o', domain: null });
      assert.deepEqual(none.items, []);
    });

    test('an idempotency key replays the first outcome within its window', async () => {
      const idem = { scope: 'key_1', key: 'idem-1', requestHash: 'h1' };
      const first = await store.createLink(newLink({ idempotency: idem }));
      assert.equal(first.kind, 'created');
      const again = await store.createLink(newLink({ idempotency: idem }));
      assert.equal(again.kind, 'replayed');
      if (first.kind === 'created' && again.kind === 'replayed') {
        assert.equal(again.stored.requestHash, 'h1');
        assert.equal(again.stored.outcome.kind, 'created');
        if (again.stored.outcome.kind === 'created')
          assert.equal(again.stored.outcome.link.code, first.link.code);
      }
      const got = await store.getIdempotency('key_1', 'idem-1', new Date(Date.now() - 1000));
      assert.equal(got?.requestHash, 'h1');
      assert.equal(await store.getIdempotency('key_2', 'idem-1', new Date(0)), null);
      const later = new Date(Date.now() + 25 * 3600_000);
      const expired = await store.createLink(newLink({ idempotency: idem, createdAt: later }));
      assert.equal(expired.kind, 'created');
    });

    test('concurrent requests with one idempotency key create one link', async () => {
      const idem = { scope: 'key_1', key: 'idem-race', requestHash: 'hr' };
      const rs = await Promise.all(
        Array.from({ length: 20 }, () => store.createLink(newLink({ idempotency: idem }))),
      );
      assert.equal(rs.filter((r) => r.kind === 'created').length, 1);
      assert.equal(rs.filter((r) => r.kind === 'replayed').length, 19);
    });

    test('a click batch is counted once however often it is written', async () => {
      await store.createLink(newLink({ alias: 'clicked' }));
      const at = Date.UTC(2030, 0, 1, 10, 5);
      const batch = clickBatch(
        [
          ...Array.from({ length: 3 }, () => clickEvent({ code: 'clicked', at })),
          ...Array.from({ length: 2 }, () =>
            clickEvent({ code: 'clicked', at, referrerHost: 'news.example' }),
          ),
        ],
        '01900000-0000-7000-8000-00000000abcd',
      );
      assert.equal(await store.recordClickBatch(batch), 'applied');
      assert.equal(await store.recordClickBatch(batch), 'duplicate');
      assert.equal((await store.getLink('clicked'))?.clicks, 5);
      const s = await store.clickStats(statsQuery('clicked', Date.UTC(2030, 0, 1), Date.UTC(2030, 0, 2)));
      assert.equal(sum(s.series), 5);
    });

    test('visits: a link newest first across split and raw batches, paged, filtered by time and bots, deleted', async () => {
      const tag = Math.random().toString(36).slice(2, 8);
      const hot = `vhot${tag}`;
      const onDomain = `v${tag}.example/vdom${tag}`;
      const t0 = Date.UTC(2031, 2, 3, 10);
      const hotEvents: ReturnType<typeof clickEvent>[] = [];
      const batch = (b: number) => {
        const events = [];
        for (let i = 0; i < 100; i++) {
          const e = clickEvent({
            code: hot,
            at: t0 + (b * 100 + i) * 1_000,
            bot: i % 10 === 0,
            userAgent: `Agent/${i % 3}`,
            ...(i % 2 === 0 ? { referer: `https://ref.example/${b}` } : {}),
          });
          hotEvents.push(e);
          events.push(e);
          events.push(clickEvent({ code: `vother${tag}${i}`, at: t0 + (b * 100 + i) * 1_000 }));
        }
        events.push(clickEvent({ code: onDomain, at: t0 + b * 100_000 }));
        return clickBatch(events);
      };
      // Split after every batch, as a splitter running often does: small rows, merged later.
      for (let b = 0; b < 4; b++) {
        assert.equal(await store.recordClickBatch(batch(b)), 'applied');
        while ((await store.splitVisits()) > 0) {}
      }
      // The newest batch stays raw: lists read it too.
      assert.equal(await store.recordClickBatch(batch(4)), 'applied');
      const expected = [...hotEvents].sort((a, b) => b.at - a.at);
      const all = { keys: [hot], from: 0, to: Number.MAX_SAFE_INTEGER, includeBots: true };

      const first = await store.visits({ ...all, offset: 0, limit: 50 });
      assert.equal(first.total, 500);
      assert.deepEqual(
        first.visits.map((v) => v.id),
        expected.slice(0, 50).map((e) => e.id),
      );
      const newest = first.visits[0]!;
      assert.equal(newest.userAgent, expected[0]!.userAgent);
      assert.equal(newest.referer, expected[0]!.referer);
      assert.equal(newest.code, hot);
      const last = await store.visits({ ...all, offset: 450, limit: 100 });
      assert.deepEqual(
        last.visits.map((v) => v.id),
        expected.slice(450).map((e) => e.id),
      );
      const people = await store.visits({ ...all, includeBots: false, offset: 0, limit: 1000 });
      assert.equal(people.total, 450);
      assert.ok(people.visits.every((v) => !v.bot));
      // A window that cuts through batches: [t0 + 150 s, t0 + 350 s).
      const window = await store.visits({
        ...all,
        from: t0 + 150_000,
        to: t0 + 350_000,
        offset: 0,
        limit: 20,
      });
      assert.equal(window.total, 200);
      assert.deepEqual(
        window.visits.map((v) => v.at),
        expected
          .filter((e) => e.at >= t0 + 150_000 && e.at < t0 + 350_000)
          .slice(0, 20)
          .map((e) => e.at),
      );
      const domain = await store.visits({
        keys: null,
        domain: `v${tag}.example`,
        from: 0,
        to: Number.MAX_SAFE_INTEGER,
        includeBots: true,
        offset: 0,
        limit: 10,
      });
      assert.equal(domain.total, 5);
      assert.ok(domain.visits.every((v) => v.code === onDomain));

      // The upkeep splits what is left and merges the small rows: the same pages after it.
      await store.maintainClicks(t0 + 7_200_000, 3650);
      const again = await store.visits({ ...all, offset: 0, limit: 50 });
      assert.equal(again.total, 500);
      assert.deepEqual(
        again.visits.map((v) => v.id),
        first.visits.map((v) => v.id),
      );
      assert.deepEqual(
        (await store.visits({ ...all, offset: 450, limit: 100 })).visits.map((v) => v.id),
        last.visits.map((v) => v.id),
      );

      assert.equal(await store.deleteVisits([hot]), 500);
      assert.equal((await store.visits({ ...all, offset: 0, limit: 10 })).total, 0);
      assert.equal((await store.visits({ ...all, keys: [`vother${tag}7`], offset: 0, limit: 10 })).total, 5);
    });

    test('stats: series per hour and day, top breakdowns, bots apart, visitors estimated', async () => {
      await store.createLink(newLink({ alias: 'statsy' }));
      const t0 = Date.UTC(2031, 4, 1, 9, 30);
      const alice = clickEvent().visitor;
      const events = [
        ...Array.from({ length: 4 }, () =>
          clickEvent({ code: 'statsy', at: t0, referrerHost: 'news.example', country: 'DE', visitor: alice }),
        ),
        clickEvent({
          code: 'statsy',
          at: t0 + 3_600_000,
          country: 'FR',
          browser: 'Firefox',
          device: 'mobile',
        }),
        clickEvent({ code: 'statsy', at: t0 + 86_400_000, country: 'DE', os: 'Linux' }),
        clickEvent({ code: 'statsy', at: t0, bot: true, browser: null, device: 'bot' }),
      ];
      assert.equal(await store.recordClickBatch(clickBatch(events)), 'applied');
      const from = Date.UTC(2031, 4, 1);
      const to = Date.UTC(2031, 4, 3);
      const hourly = await store.clickStats(statsQuery('statsy', from, to));
      assert.deepEqual(hourly.series, [
        { t: Date.UTC(2031, 4, 1, 9), clicks: 4 },
        { t: Date.UTC(2031, 4, 1, 10), clicks: 1 },
        { t: Date.UTC(2031, 4, 2, 9), clicks: 1 },
      ]);
      assert.deepEqual(hourly.breakdowns.country, [
        { value: 'DE', clicks: 5 },
        { value: 'FR', clicks: 1 },
      ]);
      assert.deepEqual(hourly.breakdowns.referrer, [
        { value: 'news.example', clicks: 4 },
        { value: '', clicks: 2 },
      ]);
      assert.deepEqual(hourly.breakdowns.browser[0], { value: 'Chrome', clicks: 5 });
      assert.equal(
        estimateVisitors(hourly.visitorRegisters.map((r) => r.rank)),
        3,
        'alice counts once; two others',
      );
      const daily = await store.clickStats({
        ...statsQuery('statsy', from, to),
        interval: 'day',
        includeBots: true,
      });
      assert.deepEqual(daily.series, [
        { t: Date.UTC(2031, 4, 1), clicks: 6 },
        { t: Date.UTC(2031, 4, 2), clicks: 1 },
      ]);
      assert.deepEqual(
        daily.breakdowns.device.find((d) => d.value === 'bot'),
        { value: 'bot', clicks: 1 },
      );
      const all = await store.clickStats(statsQuery(ALL_LINKS, from, to));
      assert.equal(sum(all.series), 6);
      assert.deepEqual(all.topLinks, [{ code: 'statsy', clicks: 6 }]);
      const narrow = await store.clickStats(
        statsQuery('statsy', Date.UTC(2031, 4, 1, 10), Date.UTC(2031, 4, 1, 11)),
      );
      assert.equal(sum(narrow.series), 1);
    });

    test('summing past days into daily rollups changes no answer, late clicks included', async () => {
      await store.createLink(newLink({ alias: 'compact' }));
      const day = (d: number, h: number) => Date.UTC(2020, 2, d, h, 15);
      const events = [1, 1, 2, 3, 3, 3].map((d, i) =>
        clickEvent({ code: 'compact', at: day(d, 6 + i), country: i % 2 === 0 ? 'NL' : 'BE' }),
      );
      await store.recordClickBatch(clickBatch(events));
      const q = {
        ...statsQuery('compact', Date.UTC(2020, 2, 1, 12), Date.UTC(2020, 2, 4)),
        interval: 'day' as const,
      };
      const before = await store.clickStats(q);
      await store.maintainClicks(Date.UTC(2020, 2, 10), 3650);
      const afterCompaction = await store.clickStats(q);
      assert.deepEqual(afterCompaction, before);
      await store.recordClickBatch(
        clickBatch([clickEvent({ code: 'compact', at: day(2, 20), country: 'NL' })]),
      );
      const late = await store.clickStats(q);
      assert.equal(sum(late.series), sum(before.series) + 1);
      assert.equal(late.breakdowns.country.find((c) => c.value === 'NL')?.clicks, 3);
      const hourly = await store.clickStats({ ...q, interval: 'hour' });
      assert.equal(sum(hourly.series), sum(late.series));
    });

    test('raw events and batch ids leave after the retention window; rollups stay', async () => {
      await store.createLink(newLink({ alias: 'aging' }));
      const old = Date.UTC(2019, 0, 1, 12);
      await store.recordClickBatch(clickBatch([clickEvent({ code: 'aging', at: old })]));
      const r = await store.maintainClicks(Date.now(), 30);
      assert.ok(r.prunedEvents >= 1, `pruned ${r.prunedEvents}`);
      const s = await store.clickStats(statsQuery('aging', Date.UTC(2019, 0, 1), Date.UTC(2019, 0, 2)));
      assert.equal(sum(s.series), 1);
    });

    test('a day has one salt however often and by whom it is asked', async () => {
      const day = Date.UTC(2032, 0, 1);
      let n = 0;
      const fresh = () => `salt-${++n}`;
      const [a, b] = await Promise.all([store.daySalts([day], fresh), store.daySalts([day], fresh)]);
      assert.equal(a.get(day), b.get(day));
      assert.equal((await store.daySalts([day, day + 86_400_000], fresh)).get(day), a.get(day));
    });

    test('every change is on the change stream, in order', async () => {
      const streams = Array.from({ length: store.changeStreams }, (_, s) => s);
      const starts = await Promise.all(
        streams.map(async (s) => (await store.readChanges(0, 100_000, s)).at(-1)?.seq ?? 0),
      );
      await store.createLink(newLink({ alias: 'evented' }));
      await store.updateLink('evented', { title: 'x' }, new Date());
      await store.deleteLink('evented', new Date());
      const perStream = await Promise.all(streams.map((s) => store.readChanges(starts[s]!, 100, s)));
      assert.equal(perStream.filter((cs) => cs.some((c) => c.code === 'evented')).length, 1, 'one stream');
      const changes = perStream.flat().filter((c) => c.code === 'evented');
      assert.deepEqual(
        changes.map((c) => c.kind),
        ['link.created', 'link.updated', 'link.deleted'],
      );
      assert.ok(changes[0]!.seq < changes[1]!.seq && changes[1]!.seq < changes[2]!.seq);
      assert.equal(changes[1]!.link.title, 'x');
    });

    test('webhooks: each change is owed once per wanting webhook; claims are leased; attempts recorded', async () => {
      await new Promise((r) => setTimeout(r, 20)); // earlier tests' changes are older than the webhook
      const now = new Date();
      const hook = {
        id: `wh_conf${Math.floor(Math.random() * 1e9)}`,
        url: 'http://127.0.0.1:9/hook',
        events: ['link.created', 'link.deleted'] as const,
        secret: 'whsec_x',
        clickSampleRate: 1,
        createdAt: now,
      };
      await store.createWebhook({ ...hook, events: [...hook.events] });
      assert.equal((await store.getWebhook(hook.id))?.url, hook.url);
      const drain = async () => {
        for (let s = 0; s < store.changeStreams; s++) while ((await store.fanOutChanges(s, 500)) > 0) {}
      };
      await drain();
      const before = (await store.listDeliveries(hook.id, 10_000)).length;
      const code = `hooked${Math.floor(Math.random() * 1e6)}`;
      await store.createLink(newLink({ alias: code }));
      await store.updateLink(code, { title: 'not asked for' }, new Date());
      await store.deleteLink(code, new Date());
      await drain();
      await drain(); // fanning out again owes nothing more
      const ofCode = <D extends { payload: unknown }>(ds: readonly D[]) =>
        ds.filter((d) => (d.payload as { data: { link: { code: string } } }).data.link.code === code);
      const all = await store.listDeliveries(hook.id, 10_000);
      assert.equal(all.length, before + 2);
      const owed = ofCode(all);
      assert.deepEqual(owed.map((d) => d.eventType).sort(), ['link.created', 'link.deleted']);
      await store.enqueueDeliveries([{ ...owed[0]!, payload: { again: true } }]);
      assert.equal(
        (await store.listDeliveries(hook.id, 10_000)).length,
        before + 2,
        'same event id: owed once',
      );

      const t = new Date(Date.now() + 5_000);
      const claim = async (at: Date) =>
        ofCode((await store.claimDeliveries(at, 10_000, 30_000)).filter((d) => d.webhookId === hook.id));
      const mine = await claim(t);
      assert.equal(mine.length, 2);
      assert.equal(mine[0]!.secret, 'whsec_x');
      assert.equal((await claim(t)).length, 0, 'held by the first claim');
      await store.finishAttempt(
        mine[0]!.id,
        { ok: false, status: 500, error: 'answered 500' },
        new Date(t.getTime() + 1),
        t,
      );
      await store.finishAttempt(mine[1]!.id, { ok: true, status: 204 }, null, t);
      const retry = await claim(new Date(t.getTime() + 10));
      assert.equal(retry.length, 1, 'the failed one is due again, the delivered one is done');
      assert.equal(retry[0]!.attempts, 1);
      await store.finishAttempt(retry[0]!.id, { ok: false, status: null, error: 'timeout' }, null, t);
      const log = ofCode(await store.listDeliveries(hook.id, 10_000));
      assert.deepEqual(log.map((d) => d.status).sort(), ['dead', 'delivered']);
      assert.equal(await store.deleteWebhook(hook.id, new Date()), true);
      assert.equal(await store.getWebhook(hook.id), null);
      assert.equal(await store.deleteWebhook(hook.id, new Date()), false);
    });

    test('import is idempotent and reports conflicts; export returns what was imported', async () => {
      const now = new Date('2029-05-05T05:05:05.000Z');
      const link = (code: string, url: string): Link => ({
        ...fields({ url, tags: ['imp'] }),
        code,
        domain: '',
        bucket: bucketOf(code),
        usedClicks: 0,
        deletedAt: null,
        createdAt: now,
        updatedAt: now,
      });
      const first = await store.importLinks([
        link('imp-a', 'https://a.example/'),
        link('imp-b', 'https://b.example/'),
      ]);
      assert.deepEqual(first, ['created', 'created']);
      const again = await store.importLinks([
        link('imp-a', 'https://a.example/'),
        link('imp-b', 'https://changed.example/'),
      ]);
      assert.deepEqual(again, ['unchanged', 'conflict']);
      assert.equal((await store.getRedirect('imp-b'))?.url, 'https://b.example/');
      const changeCount = async () => {
        let n = 0;
        for (let s = 0; s < store.changeStreams; s++) n += (await store.readChanges(0, 1_000_000, s)).length;
        return n;
      };
      const before = await changeCount();
      const twice = await store.importLinks([
        link('imp-c', 'https://c.example/'),
        link('imp-c', 'https://c.example/'),
        link('imp-c', 'https://other.example/'),
      ]);
      assert.deepEqual(twice, ['created', 'unchanged', 'conflict']);
      assert.equal(await changeCount(), before + 1, 'one link.created event');
      const exported: Link[] = [];
      for await (const l of store.exportLinks({ includeDeleted: false })) exported.push(l);
      const a = exported.find((l) => l.code === 'imp-a');
      assert.equal(a?.url, 'https://a.example/');
      assert.equal(a?.createdAt.toISOString(), now.toISOString());
      assert.ok(!exported.some((l) => l.code === 'gone-soon'));
      const withTombstones: string[] = [];
      for await (const l of store.exportLinks({ includeDeleted: true })) withTombstones.push(l.code);
      assert.ok(withTombstones.includes('gone-soon'));
      assert.deepEqual(withTombstones, [...withTombstones].sort());
    });

    test('domains: registered once, redirects changed, the default row kept, removed', async () => {
      const at = new Date('2029-02-02T00:00:00.000Z');
      const d = {
        host: 'go.conf.example',
        rootRedirect: null,
        notFoundRedirect: null,
        expiredRedirect: null,
        otherNotFoundRedirect: null,
        createdAt: at,
      };
      assert.equal(await store.createDomain(d), true);
      assert.equal(await store.createDomain(d), false);
      const changed = await store.updateDomain('go.conf.example', { notFoundRedirect: 'https://n.example/' });
      assert.equal(changed?.notFoundRedirect, 'https://n.example/');
      assert.equal(changed?.rootRedirect, null);
      const hosts = (await store.listDomains()).map((x) => x.host);
      assert.ok(hosts.includes('') && hosts.includes('go.conf.example'), hosts.join());
      assert.equal(
        (await store.updateDomain('', { rootRedirect: 'https://r.example/' }))?.rootRedirect,
        'https://r.example/',
      );
      assert.equal(await store.updateDomain('nope.example', { rootRedirect: null }), null);
      assert.equal(await store.deleteDomain(''), false, 'the default row stays');
      assert.equal(await store.deleteDomain('go.conf.example'), true);
      assert.equal(await store.deleteDomain('go.conf.example'), false);
      await store.updateDomain('', { rootRedirect: null });
    });

    test('the same code on two domains: two links, each changed, counted and deleted on its own', async () => {
      const a = await store.createLink(newLink({ alias: 'twodom', f: { url: 'https://a.example/' } }));
      const b = await store.createLink(
        newLink({
          alias: 'twodom',
          domain: 'b.conf.example',
          f: { url: 'https://b.example/', maxClicks: 1 },
        }),
      );
      assert.equal(a.kind, 'created');
      assert.equal(b.kind, 'created');
      if (b.kind !== 'created') return;
      assert.equal(b.link.domain, 'b.conf.example');
      assert.equal(b.link.bucket, bucketOf('twodom'), 'placement is by code');
      const again = await store.createLink(newLink({ alias: 'twodom', domain: 'b.conf.example' }));
      assert.equal(again.kind, 'alias_taken');
      assert.equal((await store.getRedirect('twodom'))?.url, 'https://a.example/');
      assert.equal((await store.getRedirect('b.conf.example/twodom'))?.url, 'https://b.example/');
      assert.equal((await store.getRedirect('b.conf.example/twodom'))?.domain, 'b.conf.example');
      assert.equal(await store.getRedirect('c.conf.example/twodom'), null);
      await store.updateLink('b.conf.example/twodom', { title: 'on b' }, new Date());
      assert.equal((await store.getLink('twodom'))?.title, null);
      assert.equal((await store.getLink('b.conf.example/twodom'))?.title, 'on b');
      assert.equal(await store.consumeClick('b.conf.example/twodom'), true);
      assert.equal(await store.consumeClick('b.conf.example/twodom'), false);
      const now = Date.now();
      await store.recordClickBatch(clickBatch([clickEvent({ code: 'b.conf.example/twodom', at: now })]));
      const hour = now - (now % 3_600_000);
      const onB = await store.clickStats(statsQuery('b.conf.example/twodom', hour, hour + 3_600_000));
      const onA = await store.clickStats(statsQuery('twodom', hour, hour + 3_600_000));
      assert.equal(sum(onB.series), 1);
      assert.equal(sum(onA.series), 0);
      assert.equal((await store.getLink('b.conf.example/twodom'))?.clicks, 1);
      const window = statsQuery(ALL_LINKS, hour, hour + 3_600_000);
      const onlyB = await store.clickStats({ ...window, domain: 'b.conf.example' });
      assert.equal(sum(onlyB.series), 1);
      assert.deepEqual(onlyB.topLinks, [{ code: 'b.conf.example/twodom', clicks: 1 }]);
      assert.equal(onlyB.breakdowns.browser[0]?.clicks, 1);
      assert.equal(estimateVisitors(onlyB.visitorRegisters.map((r) => r.rank)), 1);
      const onDefault = await store.clickStats({ ...window, domain: '' });
      assert.ok(!onDefault.topLinks.some((l) => l.code.includes('/')));
      assert.equal(sum((await store.clickStats({ ...window, domain: 'none.conf.example' })).series), 0);
      const page = await store.listLinks({
        limit: 100,
        cursor: null,
        tag: null,
        q: 'twodom',
        domain: 'b.conf.example',
      });
      assert.deepEqual(
        page.items.map((l) => [l.domain, l.code]),
        [['b.conf.example', 'twodom']],
      );
      const both = await store.listLinks({ limit: 100, cursor: null, tag: null, q: 'twodom', domain: null });
      assert.equal(both.items.length, 2);
      assert.equal(await store.domainHasLinks('b.conf.example'), true);
      const changes = await store.readChanges(0, 100_000);
      assert.ok(
        changes.some((c) => c.code === 'b.conf.example/twodom' && c.link.domain === 'b.conf.example'),
      );
      assert.equal(await store.deleteLink('b.conf.example/twodom', new Date()), true);
      assert.equal((await store.getRedirect('twodom'))?.deletedAt, null);
      assert.equal(await store.domainHasLinks('b.conf.example'), false);
      const exported: string[] = [];
      for await (const l of store.exportLinks({ includeDeleted: true }))
        if (l.code === 'twodom') exported.push(l.domain);
      assert.deepEqual(exported, ['', 'b.conf.example']);
    });

    test("robots: a domain's live crawlable codes, in order", async () => {
      await store.createLink(newLink({ alias: 'crawl-b', f: { crawlable: true } }));
      await store.createLink(newLink({ alias: 'crawl-a', f: { crawlable: true } }));
      await store.createLink(newLink({ alias: 'crawl-c', domain: 'r.conf.example', f: { crawlable: true } }));
      await store.createLink(newLink({ alias: 'crawl-d', f: { crawlable: false } }));
      const gone = await store.createLink(newLink({ alias: 'crawl-e', f: { crawlable: true } }));
      if (gone.kind === 'created') await store.deleteLink('crawl-e', new Date());
      const codes = await store.crawlableCodes('', 100);
      assert.deepEqual(
        codes.filter((c) => c.startsWith('crawl-')),
        ['crawl-a', 'crawl-b'],
      );
      assert.deepEqual(await store.crawlableCodes('r.conf.example', 100), ['crawl-c']);
      await store.updateLink('crawl-a', { crawlable: false }, new Date());
      assert.deepEqual(
        (await store.crawlableCodes('', 100)).filter((c) => c.startsWith('crawl-')),
        ['crawl-b'],
      );
    });

    test('orphan visits: a batch counts once; types, paths and domains apart; bots only when asked', async () => {
      const hour = Date.UTC(2029, 3, 3, 10);
      const rows = [
        { domain: '', hour, bot: false, type: 'unknown_code' as const, path: '/nope', visits: 3 },
        { domain: '', hour, bot: false, type: 'root' as const, path: '/', visits: 2 },
        { domain: '', hour, bot: true, type: 'other' as const, path: '/wp-login.php', visits: 5 },
        { domain: 'o.conf.example', hour, bot: false, type: 'unknown_code' as const, path: '/x', visits: 1 },
        {
          domain: '',
          hour: hour + 3_600_000,
          bot: false,
          type: 'unknown_code' as const,
          path: '',
          visits: 4,
        },
      ];
      const batch = { id: '018f0000-0000-7000-8000-00000000abcd', rows };
      assert.equal(await store.recordOrphans(batch), 'applied');
      assert.equal(await store.recordOrphans(batch), 'duplicate');
      const q = {
        from: hour,
        to: hour + 2 * 3_600_000,
        interval: 'hour' as const,
        includeBots: false,
        top: 10,
      };
      const all = await store.orphanStats({ ...q, domain: null });
      assert.deepEqual(all.series, [
        { t: hour, clicks: 6 },
        { t: hour + 3_600_000, clicks: 4 },
      ]);
      assert.deepEqual(all.types, [
        { key: 'unknown_code', clicks: 8 },
        { key: 'root', clicks: 2 },
      ]);
      assert.deepEqual(all.paths, [
        { key: '/nope', clicks: 3 },
        { key: '/', clicks: 2 },
        { key: '/x', clicks: 1 },
      ]);
      const def = await store.orphanStats({ ...q, domain: '', includeBots: true });
      assert.equal(sum(def.series), 14);
      assert.deepEqual(def.paths[0], { key: '/wp-login.php', clicks: 5 });
      const other = await store.orphanStats({ ...q, domain: 'o.conf.example' });
      assert.equal(sum(other.series), 1);
    });

    test("Shlink's list: filters, tag modes, any order, offset pages with a total; tags renamed and deleted", async () => {
      const t0 = Date.UTC(2029, 6, 1);
      const mk = (alias: string, i: number, tags: string[], f: Record<string, unknown> = {}) =>
        store.createLink(
          newLink({
            alias,
            createdAt: new Date(t0 + i * 1000),
            f: { url: `https://search.conf.example/${alias}`, tags, title: `T ${alias}`, ...f },
          }),
        );
      await mk('srch-a', 1, ['s-red', 's-blue']);
      await mk('srch-b', 2, ['s-red']);
      await mk('srch-c', 3, ['s-blue'], { maxClicks: 1 });
      await mk('srch-d', 4, [], { expiresAt: new Date(t0 - 1000) });
      await store.consumeClick('srch-c');
      const now = Date.now();
      await store.recordClickBatch(
        clickBatch([
          clickEvent({ code: 'srch-b', at: now }),
          clickEvent({ code: 'srch-b', at: now }),
          clickEvent({ code: 'srch-b', at: now, bot: true }),
          clickEvent({ code: 'srch-a', at: now }),
        ]),
      );
      const base = {
        offset: 0,
        limit: 10,
        q: 'search.conf.example',
        tags: [],
        tagsAll: false,
        excludeTags: [],
        excludeTagsAll: false,
        order: { field: 'createdAt' as const, desc: false },
        createdFrom: null,
        createdTo: null,
        excludeUsedUp: false,
        expiredAt: null,
        domain: null,
      };
      const codes = async (over: Partial<typeof base> | Record<string, unknown>) => {
        const r = await store.searchLinks({ ...base, ...over } as typeof base);
        return r.items.map((l) => l.code);
      };
      assert.deepEqual(await codes({}), ['srch-a', 'srch-b', 'srch-c', 'srch-d']);
      assert.deepEqual(await codes({ tags: ['s-red', 's-blue'] }), ['srch-a', 'srch-b', 'srch-c']);
      assert.deepEqual(await codes({ tags: ['s-red', 's-blue'], tagsAll: true }), ['srch-a']);
      assert.deepEqual(await codes({ excludeTags: ['s-red'] }), ['srch-c', 'srch-d']);
      assert.deepEqual(await codes({ excludeTags: ['s-red', 's-blue'], excludeTagsAll: true }), [
        'srch-b',
        'srch-c',
        'srch-d',
      ]);
      assert.deepEqual(await codes({ excludeUsedUp: true, expiredAt: new Date(t0) }), ['srch-a', 'srch-b']);
      assert.deepEqual(await codes({ q: 's-blu' }), ['srch-a', 'srch-c'], 'search matches tags too');
      assert.deepEqual(await codes({ createdFrom: new Date(t0 + 2000), createdTo: new Date(t0 + 3000) }), [
        'srch-b',
        'srch-c',
      ]);
      assert.deepEqual(await codes({ order: { field: 'code', desc: true } }), [
        'srch-d',
        'srch-c',
        'srch-b',
        'srch-a',
      ]);
      assert.deepEqual((await codes({ order: { field: 'clicks', desc: true } })).slice(0, 2), [
        'srch-b',
        'srch-a',
      ]);
      const page2 = await store.searchLinks({ ...base, offset: 2, limit: 2 });
      assert.deepEqual(
        page2.items.map((l) => l.code),
        ['srch-c', 'srch-d'],
      );
      assert.equal(page2.total, 4);
      assert.deepEqual(await codes({ q: null, code: 'srch-b', domain: '' }), ['srch-b'], 'one link by code');
      const b = (await store.searchLinks({ ...base, q: null, code: 'srch-b', domain: '' })).items[0]!;
      assert.equal(b.clicks, 3);
      assert.equal(b.botClicks, 1);
      assert.equal(
        (await store.searchLinks({ ...base, offset: 10 })).total,
        4,
        'a page past the end still counts',
      );
      assert.equal((await store.findLinkByUrl('https://search.conf.example/srch-b', ''))?.code, 'srch-b');
      assert.equal(await store.findLinkByUrl('https://search.conf.example/srch-b', 'other.example'), null);

      const red = (await store.tagStats()).find((t) => t.tag === 's-red');
      assert.deepEqual(red, { tag: 's-red', links: 2, clicks: 4, botClicks: 1 });
      assert.equal(await store.renameTag('s-red', 's-blue', new Date()), 'conflict');
      assert.equal(await store.renameTag('s-nope', 's-x', new Date()), 'not_found');
      assert.equal(await store.renameTag('s-red', 's-green', new Date()), 'renamed');
      assert.deepEqual(await codes({ tags: ['s-green'] }), ['srch-a', 'srch-b']);
      assert.equal(await store.deleteTags(['s-blue'], new Date()), 2);
      assert.deepEqual((await store.getLink('srch-a'))?.tags, ['s-green']);
      const changes = await store.readChanges(0, 100_000);
      assert.ok(
        changes.some((c) => c.code === 'srch-c' && c.link.tags.length === 0),
        'retagging is on the change stream',
      );

      const long = await store.createLink(newLink({ codeLength: 11 }));
      assert.ok(long.kind === 'created' && long.link.code.length === 11);
    });

    test('API keys are found by hash until revoked by id or prefix', async () => {
      const rec = {
        id: 'key_abc',
        name: 'ci',
        prefix: 'hop_abcdefgh',
        createdAt: new Date(),
        revokedAt: null,
      };
      await store.createApiKey(rec, 'hash-1');
      assert.equal((await store.findApiKeyByHash('hash-1'))?.id, 'key_abc');
      assert.equal(await store.findApiKeyByHash('hash-2'), null);
      assert.ok((await store.countApiKeys()) >= 1);
      assert.equal(await store.revokeApiKey('hop_abcdefgh', new Date()), true);
      assert.equal(await store.findApiKeyByHash('hash-1'), null);
      assert.equal(await store.revokeApiKey('key_abc', new Date()), false);
      const listed = (await store.listApiKeys()).find((k) => k.id === 'key_abc');
      assert.notEqual(listed?.revokedAt ?? null, null);
    });

    test('restoring links after a mass delete: tombstones since the mistake lifted, the rest kept', async () => {
      const make = async (url: string) => {
        const r = await store.createLink(newLink({ f: { url } }));
        assert.equal(r.kind, 'created');
        return r.kind === 'created' ? r.link : (null as never);
      };
      const early = await make('https://restore.example/early-delete');
      const live = await make('https://restore.example/live');
      const victim = await make('https://restore.example/victim');
      const t0 = new Date(Date.now() - 60_000);
      await store.deleteLink(linkKey('', early.code), new Date(t0.getTime() - 60_000));
      const mistake = new Date(t0.getTime() + 1_000);
      await store.deleteLink(linkKey('', victim.code), mistake);
      await store.updateLink(linkKey('', live.code), { url: 'https://restore.example/live-edited' }, mistake);
      const missing = {
        ...victim,
        code: `gone${Date.now() % 100000}`,
        url: 'https://restore.example/missing',
      };
      const missingLink = { ...missing, bucket: bucketOf(missing.code) };
      const rightful = await make('https://restore.example/deleted-after-the-mistake');
      await store.deleteLink(linkKey('', rightful.code), new Date(mistake.getTime() + 30_000));
      const window = { from: t0, to: new Date(mistake.getTime() + 10_000) };
      const statuses = await store.restoreLinks(
        [early, live, victim, missingLink, rightful],
        window,
        new Date(),
      );
      assert.deepEqual(statuses, ['kept', 'kept', 'undeleted', 'recreated', 'kept']);
      assert.equal((await store.getLink(linkKey('', victim.code)))?.url, 'https://restore.example/victim');
      assert.equal((await store.getLink(linkKey('', victim.code)))?.deletedAt, null);
      assert.equal((await store.getLink(linkKey('', missing.code)))?.url, 'https://restore.example/missing');
      assert.equal((await store.getLink(linkKey('', live.code)))?.url, 'https://restore.example/live-edited');
      const liveCodes = new Set<string>();
      for await (const l of store.exportLinks({ includeDeleted: false })) liveCodes.add(l.code);
      assert.ok(!liveCodes.has(early.code), 'a link deleted before the mistake stays deleted');
      assert.ok(!liveCodes.has(rightful.code), 'a link deleted after the mistake stays deleted');
      assert.ok(liveCodes.has(victim.code));
      // Every stream (a shard each), each link's changes in order: the restore is the last one.
      const lastKind = new Map<string, string>();
      for (let stream = 0; stream < store.changeStreams; stream++) {
        for (const c of await store.readChanges(0, 100_000, stream)) lastKind.set(c.code, c.kind);
      }
      assert.equal(lastKind.get(linkKey('', victim.code)), 'link.updated');
      assert.equal(lastKind.get(linkKey('', missing.code)), 'link.created');
      assert.equal(lastKind.get(linkKey('', early.code)), 'link.deleted');
    });

    test('readiness answers while open', async () => {
      await store.ping();
    });
  });
}
