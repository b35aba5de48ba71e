// An embedded data directory as a Hop that has served for a while leaves it, for `hop move-store`
// (its bench and its integration test): links imported in big batches (some on a second domain),
// tombstones and updates, an API key, a webhook with its deliveries, an idempotency record, orphan
// visits, click history on some links (folded, compacted into days, split into visit rows), and the
// last clicks as a killed Hop leaves them: raw and unfolded.
import { createHash, randomBytes } from 'node:crypto';
import { bucketOf } from '../../src/domain/bucket.ts';
import { type ClickEvent, DAY_MS, floorTo, HOUR_MS, summarizeClicks } from '../../src/domain/clicks.ts';
import { generateCode } from '../../src/domain/codes.ts';
import { bareDomain, linkKey } from '../../src/domain/domains.ts';
import type { Link } from '../../src/domain/link.ts';
import { uuid7 } from '../../src/events/uuid7.ts';
import { openPglite } from '../../src/storage/embedded/pglite-client.ts';
import { migrate } from '../../src/storage/sql/migrate.ts';
import { SqlStore } from '../../src/storage/sql/sql-store.ts';

export interface EmbeddedSeedOptions {
  links: number;
  /** Links with click history (the first ones), and clicks per such link on average. */
  clickedLinks: number;
  clicksPerLink: number;
  /** Links deleted (tombstones) and updated after the webhook was made. */
  deletes: number;
  updates: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

export interface EmbeddedSeed {
  /** Keys of the links with clicks. */
  clicked: string[];
  clicks: number;
  /** The API key's secret (HOP_INITIAL_API_KEY would make another; this one is moved). */
  apiKey: string;
  /** When the clicks end: stats windows up to an hour after it see all of them. */
  now: number;
}

export const SEED_DOMAIN = 'go.example';
const BATCH = 5_000;
const REFERRERS = ['news.example', 'mail.example', 'social.example', null];
const COUNTRIES = ['NL', 'DE', 'US', 'FR', 'JP', null];
const BROWSERS = ['Chrome', 'Firefox', 'Safari'];

function seedLink(i: number, at: Date): Link {
  const code = generateCode(7);
  return {
    code,
    domain: i % 100 === 7 ? SEED_DOMAIN : '',
    bucket: bucketOf(code),
    url: `https://site-${i % 997}.example/articles/${i}?ref=seed`,
    redirectType: i % 10 === 0 ? 301 : 302,
    forwardQuery: i % 3 !== 0,
    expiresAt: i % 50 === 0 ? new Date(at.getTime() + 365 * DAY_MS) : null,
    validSince: null,
    maxClicks: i % 200 === 0 ? 1_000 : null,
    disabled: i % 500 === 0,
    crawlable: i % 40 === 0,
    tags: i % 4 === 0 ? [`t${i % 20}`] : [],
    title: i % 2 === 0 ? `Article ${i}` : null,
    rules: null,
    expiredUrl: null,
    passwordHash: null,
    usedClicks: 0,
    deletedAt: null,
    createdAt: at,
    updatedAt: at,
  };
}

function clicksOf(key: string, n: number, from: number, to: number, rand: () => number): ClickEvent[] {
  return Array.from({ length: n }, (_, k) => ({
    id: uuid7(),
    code: key,
    at: Math.floor(from + rand() * (to - from)),
    referrerHost: REFERRERS[k % REFERRERS.length]!,
    country: COUNTRIES[Math.floor(rand() * COUNTRIES.length)]!,
    browser: BROWSERS[k % BROWSERS.length]!,
    os: k % 2 === 0 ? 'Windows' : 'iOS',
    device: k % 2 === 0 ? 'desktop' : 'mobile',
    bot: k % 17 === 0,
    visitor: createHash('sha256')
      .update(`${key}/${Math.floor(rand() * 50)}`)
      .digest('hex')
      .slice(0, 16),
  }));
}

/** A small deterministic generator, so runs are alike (codes still come from the CSPRNG). */
function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function writeClicks(store: SqlStore, events: ClickEvent[], raw: boolean): Promise<void> {
  for (let i = 0; i < events.length; i += 2_000) {
    const part = events.slice(i, i + 2_000);
    if (raw) await store.writeRawClicks(uuid7(), part);
    else await store.recordClickBatch({ id: uuid7(), events: part, ...summarizeClicks(part) });
  }
}

export async function seedEmbeddedData(dataDir: string, o: EmbeddedSeedOptions): Promise<EmbeddedSeed> {
  const log = o.log ?? (() => {});
  const db = await openPglite(dataDir, { buffersMb: 128, compiler: 'optimizing' });
  await migrate(db);
  const store = new SqlStore(db, { kind: 'embedded', codeLength: 7 });
  try {
    const now = floorTo(Date.now(), HOUR_MS);
    const rand = mulberry32(42);
    await store.createDomain(bareDomain(SEED_DOMAIN, new Date(now - 40 * DAY_MS)));
    const apiKey = `hop_${randomBytes(18).toString('base64url')}`;
    await store.createApiKey(
      {
        id: 'seedkey',
        name: 'seed',
        prefix: apiKey.slice(0, 8),
        createdAt: new Date(now - 40 * DAY_MS),
        revokedAt: null,
      },
      createHash('sha256').update(apiKey).digest('hex'),
    );

    const keys: string[] = [];
    const t0 = performance.now();
    for (let start = 0; start < o.links; start += BATCH) {
      const batch: Link[] = [];
      for (let i = start; i < Math.min(o.links, start + BATCH); i++)
        batch.push(seedLink(i, new Date(now - 30 * DAY_MS + Math.floor((i / o.links) * 29 * DAY_MS))));
      await store.importLinks(batch);
      for (const l of batch) keys.push(linkKey(l.domain, l.code));
      if ((start / BATCH) % 20 === 19)
        log(`seed: ${keys.length} links (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    }
    log(`seed: ${keys.length} links imported in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    // Changes after the webhook exists are owed to it: some delivered, the rest pending. The fan-out
    // had kept up with the imports before it (they were owed to nobody).
    await db.query('INSERT INTO webhook_offsets (stream, seq) SELECT 0, max(seq) FROM outbox');
    await store.createWebhook({
      id: 'wh_seed',
      url: 'https://hooks.example/hop',
      events: ['link.created', 'link.updated', 'link.deleted'],
      secret: 'seed-secret',
      clickSampleRate: 1,
      createdAt: new Date(),
    });
    const when = new Date(now - HOUR_MS);
    for (let i = 0; i < o.updates; i++)
      await store.updateLink(keys[keys.length - 1 - i]!, { title: `Updated ${i}`, tags: ['updated'] }, when);
    while ((await store.fanOutChanges(0, 10_000)) === 10_000) {}
    const due = await store.claimDeliveries(new Date(now), 5, 60_000);
    for (const d of due) await store.finishAttempt(d.id, { ok: true, status: 204 }, null, new Date(now));
    for (let i = 0; i < o.deletes; i++) await store.deleteLink(keys[keys.length - 1 - o.updates - i]!, when);
    await store.createLink({
      alias: null,
      domain: '',
      fields: {
        url: 'https://keyed.example/',
        expiresAt: null,
        validSince: null,
        maxClicks: null,
        redirectType: 302,
        forwardQuery: true,
        tags: ['keyed'],
        title: 'Made with an Idempotency-Key',
        disabled: false,
        crawlable: false,
        rules: null,
        expiredUrl: null,
        passwordHash: null,
      },
      createdAt: when,
      idempotency: { scope: 'seedkey', key: 'seed-idempotency-key', requestHash: 'seed-request' },
    });
    // As a Hop from before migration 013 wrote it: no bucket (move-store gives it its own).
    await db.query('UPDATE idempotency_keys SET bucket = NULL');

    await store.recordOrphans({
      id: uuid7(),
      rows: [{ domain: '', hour: now - HOUR_MS, bot: false, type: 'unknown_code', path: '/nope', visits: 3 }],
      list: [
        {
          id: uuid7(),
          at: now - HOUR_MS + 5,
          domain: '',
          type: 'unknown_code',
          path: '/nope',
          bot: false,
          userAgent: 'seed',
          referer: null,
        },
      ],
    });
    await store.daySalts([floorTo(now, DAY_MS)], () => 'seed-salt');

    // Click history: three days folded and compacted into days, then a late day, then the last
    // hour as a killed Hop leaves it (raw, unfolded).
    const clicked = keys.slice(0, o.clickedLinks);
    let clicks = 0;
    const history: ClickEvent[] = [];
    for (const key of clicked) {
      const n = 1 + Math.floor(rand() * (2 * o.clicksPerLink - 1));
      history.push(...clicksOf(key, n, now - 3 * DAY_MS, now - 2 * HOUR_MS, rand));
    }
    history.sort((a, b) => a.at - b.at);
    await writeClicks(store, history, false);
    await store.maintainClicks(now, 30);
    const late = clicked
      .slice(0, Math.ceil(clicked.length / 4))
      .flatMap((key) => clicksOf(key, 2, now - 2 * DAY_MS, now - DAY_MS - HOUR_MS, rand));
    await writeClicks(store, late, false);
    const last = clicked
      .slice(0, Math.ceil(clicked.length / 2))
      .flatMap((key) => clicksOf(key, 2, now - HOUR_MS, now, rand));
    await writeClicks(store, last, true);
    clicks += history.length + late.length + last.length;
    log(`seed: ${clicks} clicks on ${clicked.length} links (${last.length} left raw and unfolded)`);
    return { clicked: clicked.filter((k) => k !== ''), clicks, apiKey, now };
  } finally {
    await store.close();
  }
}
