// The chaos suite's steady mixed load, open loop (requests leave on schedule whatever the servers do;
// latency counts from the intended send time): creates with Idempotency-Keys that a client retries
// with the same key after a 5xx or a dropped connection, redirects of known links checked against
// their URLs, and browser-like clicks on links made for counting. Every outcome is kept with its time,
// so a fault's row can say what failed, when, and what came back.
import { randomUUID } from 'node:crypto';
import { LatencyHistogram } from '../lib/histogram.ts';

export const CHAOS_KEY = 'hop_chaoskeychaoskeychaoskey00001';
const AUTH = { authorization: `Bearer ${CHAOS_KEY}` };
const JSON_AUTH = { ...AUTH, 'content-type': 'application/json' };
const BROWSER =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36';

export interface LoadRates {
  /** New creates a second (each retried until acknowledged or the load ends). */
  readonly creates: number;
  /** Redirects of known links a second. */
  readonly redirects: number;
  /** Counted clicks a second (GET with a browser's user agent on the round's click links). */
  readonly clicks: number;
}

export interface Attempt {
  readonly sent: number;
  readonly ended: number;
  readonly ok: boolean;
  /** HTTP status, or 0 for a connection failure / timeout. */
  readonly status: number;
  readonly code: string | null;
}

export interface LoadOutcome {
  /** Creates answered 201 (or 200 for a replayed key): each must exist afterwards with its URL. */
  readonly acknowledged: { code: string; url: string; key: string }[];
  /** Creates never acknowledged (every attempt failed until the end): not promised, not checked. */
  readonly unacknowledged: number;
  readonly attempts: Attempt[];
  readonly redirects: {
    total: number;
    errors: number;
    wrong: number;
    latency: LatencyHistogram;
    log: Attempt[];
  };
  /** Clicks served (a 302 to a browser) per click link. */
  readonly clicksServed: Map<string, number>;
}

export interface RunningLoad {
  /** Stops scheduling; retries of unacknowledged creates go on until `retryForMs` has passed. */
  stop(retryForMs: number): Promise<LoadOutcome>;
}

export async function createLink(base: string, url: string, tags: string[] = []): Promise<string> {
  const res = await fetch(`${base}/api/v1/links`, {
    method: 'POST',
    headers: JSON_AUTH,
    body: JSON.stringify({ url, tags }),
    signal: AbortSignal.timeout(10_000),
  });
  const body = (await res.json()) as { code?: string };
  if (res.status !== 201 || body.code === undefined) throw new Error(`create answered ${res.status}`);
  return body.code;
}

export function startChaosLoad(
  base: string,
  o: {
    rates: LoadRates;
    /** Links for redirects; those named in clickLinks take the clicks, the rest the plain redirects. */
    known: readonly { code: string; url: string }[];
    clickLinks: readonly string[];
    /** Names the round's creates (their URLs and tag). */
    round: string;
    timeoutMs?: number;
  },
): RunningLoad {
  const timeoutMs = o.timeoutMs ?? 5_000;
  const began = performance.now();
  let scheduling = true;
  let retryDeadline = Number.POSITIVE_INFINITY;
  const inflight = new Set<Promise<void>>();
  const acknowledged: LoadOutcome['acknowledged'] = [];
  let unacknowledged = 0;
  const attempts: Attempt[] = [];
  const latency = new LatencyHistogram();
  const redirectLog: Attempt[] = [];
  let redirectTotal = 0;
  let redirectErrors = 0;
  let redirectWrong = 0;
  const clicksServed = new Map<string, number>(o.clickLinks.map((c) => [c, 0]));
  let createN = 0;

  const track = (p: Promise<void>) => {
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  };

  const create = async () => {
    const i = createN++;
    const url = `https://example.com/chaos/${o.round}/${i}`;
    const key = randomUUID();
    for (;;) {
      const sent = Date.now();
      let status = 0;
      let code: string | null = null;
      let retryAfterMs = 500;
      try {
        const res = await fetch(`${base}/api/v1/links`, {
          method: 'POST',
          headers: { ...JSON_AUTH, 'idempotency-key': key },
          body: JSON.stringify({ url, tags: [o.round] }),
          signal: AbortSignal.timeout(timeoutMs),
        });
        status = res.status;
        const body = (await res.json().catch(() => ({}))) as { code?: string };
        code = body.code ?? null;
        const ra = Number(res.headers.get('retry-after'));
        if (Number.isFinite(ra) && ra > 0) retryAfterMs = Math.min(ra * 1000, 2_000);
      } catch {
        status = 0;
      }
      const ok = (status === 201 || status === 200) && code !== null;
      attempts.push({ sent, ended: Date.now(), ok, status, code });
      if (ok) {
        acknowledged.push({ code: code!, url, key });
        return;
      }
      // 4xx other than 409/429 would be the load's own mistake: not retried, shown as a failure.
      if (status >= 400 && status < 500 && status !== 409 && status !== 429) return;
      if (Date.now() + retryAfterMs > retryDeadline) {
        unacknowledged++;
        return;
      }
      // A client retries with the same key: the answer is the one true outcome of the first try.
      await sleep(retryAfterMs * (0.5 + Math.random() / 2));
    }
  };

  const redirect = async (intended: number, link: { code: string; url: string }, click: boolean) => {
    let status = 0;
    let location: string | null = null;
    try {
      const res = await fetch(`${base}/${link.code}`, {
        redirect: 'manual',
        headers: click ? { 'user-agent': BROWSER, 'accept-language': 'en' } : { 'user-agent': 'chaos-probe' },
        signal: AbortSignal.timeout(timeoutMs),
      });
      status = res.status;
      location = res.headers.get('location');
      await res.arrayBuffer();
    } catch {
      status = 0;
    }
    const ended = Date.now();
    latency.recordMillis(performance.now() - intended);
    redirectTotal++;
    const ok = status >= 300 && status < 400;
    redirectLog.push({
      sent: Date.now() - Math.round(performance.now() - intended),
      ended,
      ok,
      status,
      code: link.code,
    });
    if (!ok) {
      if (status === 404 || status === 410) redirectWrong++;
      else redirectErrors++;
    } else if (location !== link.url) redirectWrong++;
    else if (click) clicksServed.set(link.code, (clicksServed.get(link.code) ?? 0) + 1);
  };

  // One scheduler per kind: the next send time advances by the interval whatever the last answer did.
  const schedule = (rate: number, fire: (intended: number, n: number) => void) => {
    if (rate <= 0) return;
    const interval = 1000 / rate;
    let n = 0;
    const tick = () => {
      if (!scheduling) return;
      const now = performance.now();
      while (began + n * interval <= now) {
        // Bounded: a fault makes answers slow, never the load unbounded.
        if (inflight.size < 400) fire(began + n * interval, n);
        n++;
      }
      setTimeout(tick, Math.max(1, began + n * interval - performance.now()));
    };
    tick();
  };
  schedule(o.rates.creates, () => track(create()));
  const plain = o.known.filter((k) => !o.clickLinks.includes(k.code));
  schedule(o.rates.redirects, (t, n) => {
    const link = plain[n % plain.length];
    if (link !== undefined) track(redirect(t, link, false));
  });
  const clickTargets = o.clickLinks.map((code) => o.known.find((k) => k.code === code)!).filter(Boolean);
  schedule(o.rates.clicks, (t, n) => {
    const link = clickTargets[n % clickTargets.length];
    if (link !== undefined) track(redirect(t, link, true));
  });

  return {
    async stop(retryForMs) {
      scheduling = false;
      retryDeadline = Date.now() + retryForMs;
      while (inflight.size > 0) await Promise.all([...inflight]);
      return {
        acknowledged,
        unacknowledged,
        attempts,
        redirects: {
          total: redirectTotal,
          errors: redirectErrors,
          wrong: redirectWrong,
          latency,
          log: redirectLog,
        },
        clicksServed,
      };
    },
  };
}

/**
 * Write unavailability after a fault at `faultAt`: from the fault to the end of the first successful
 * create sent after the last one that failed; 0 when none failed.
 */
export function writeRto(attempts: readonly Attempt[], faultAt: number): number {
  const failed = attempts.filter((a) => !a.ok && a.ended >= faultAt);
  if (failed.length === 0) return 0;
  const lastFail = Math.max(...failed.map((a) => a.sent));
  const next = attempts.filter((a) => a.ok && a.sent > lastFail).sort((a, b) => a.ended - b.ended)[0];
  return next === undefined ? Number.POSITIVE_INFINITY : next.ended - faultAt;
}

/** Every acknowledged link, read back through the API: missing or wrong ones, by code. */
export async function checkAcknowledged(
  base: string,
  links: readonly { code: string; url: string }[],
): Promise<{ lost: string[]; wrong: string[] }> {
  const lost: string[] = [];
  const wrong: string[] = [];
  for (let i = 0; i < links.length; i += 20) {
    await Promise.all(
      links.slice(i, i + 20).map(async (l) => {
        for (let attempt = 0; ; attempt++) {
          const res = await fetch(`${base}/api/v1/links/${l.code}`, {
            headers: AUTH,
            signal: AbortSignal.timeout(10_000),
          }).catch(() => null);
          if (res === null || res.status >= 500) {
            if (attempt < 10) {
              await sleep(500);
              continue;
            }
            throw new Error(`cannot read ${l.code} back: ${res === null ? 'no answer' : res.status}`);
          }
          const body = (await res.json()) as { url?: string };
          if (res.status === 404) lost.push(l.code);
          else if (body.url !== l.url) wrong.push(l.code);
          return;
        }
      }),
    );
  }
  return { lost, wrong };
}

/** Links tagged with the round, by URL: a URL stored twice means one create became two links. */
export async function duplicateCreates(base: string, round: string): Promise<number> {
  const seen = new Map<string, number>();
  let cursor: string | null = null;
  do {
    const q = new URLSearchParams({ tag: round, limit: '100', ...(cursor === null ? {} : { cursor }) });
    const res = await fetch(`${base}/api/v1/links?${q}`, {
      headers: AUTH,
      signal: AbortSignal.timeout(10_000),
    });
    if (!res.ok) throw new Error(`listing the round's links answered ${res.status}`);
    const page = (await res.json()) as { items: { url: string }[]; nextCursor: string | null };
    for (const l of page.items) seen.set(l.url, (seen.get(l.url) ?? 0) + 1);
    cursor = page.nextCursor;
  } while (cursor !== null);
  let dup = 0;
  for (const n of seen.values()) if (n > 1) dup += n - 1;
  return dup;
}

/** Clicks the pipeline has counted per link, once they stop changing (or `timeoutMs` passes). */
export async function clicksCounted(
  base: string,
  codes: readonly string[],
  want: ReadonlyMap<string, number>,
  timeoutMs: number,
): Promise<Map<string, number>> {
  const deadline = Date.now() + timeoutMs;
  let last = new Map<string, number>();
  let stableSince = Date.now();
  for (;;) {
    const now = new Map<string, number>();
    for (const code of codes) {
      const res = await fetch(`${base}/api/v1/links/${code}`, {
        headers: AUTH,
        signal: AbortSignal.timeout(10_000),
      }).catch(() => null);
      const body = res?.ok ? ((await res.json()) as { clicks: number }) : null;
      now.set(code, body?.clicks ?? last.get(code) ?? 0);
    }
    const same = codes.every((c) => now.get(c) === last.get(c));
    if (!same) stableSince = Date.now();
    last = now;
    const done = codes.every((c) => (now.get(c) ?? 0) >= (want.get(c) ?? 0));
    if (done || Date.now() > deadline || (same && Date.now() - stableSince > 12_000)) return now;
    await sleep(500);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
