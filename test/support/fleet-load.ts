// A steady, bounded load through a balancer for the fleet tests: redirects of known links (each
// answer checked against the link's URL) and creates with Idempotency-Keys, every outcome kept so a
// test can say which requests failed, when and how.
import { randomUUID } from 'node:crypto';
import { TEST_KEY } from './harness.ts';

export interface Failure {
  readonly kind: 'redirect' | 'create';
  readonly at: number;
  readonly why: string;
}

export interface LoadResult {
  readonly redirects: number;
  readonly creates: number;
  readonly failures: Failure[];
  /** Every create that answered 201: what must resolve afterwards. */
  readonly created: { code: string; url: string }[];
}

export interface Load {
  /** Stops the loops and resolves once every request in flight has answered. */
  stop(): Promise<LoadResult>;
}

const headers = { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json' };

export async function createLink(base: string, url: string, extra: object = {}): Promise<string> {
  const res = await fetch(`${base}/api/v1/links`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ url, ...extra }),
  });
  const body = (await res.json()) as { code?: string };
  if (res.status !== 201 || body.code === undefined) {
    throw new Error(`create answered ${res.status}: ${JSON.stringify(body)}`);
  }
  return body.code;
}

/** Starts `redirectWorkers` + `createWorkers` loops against `base`, pausing `pauseMs` between requests. */
export function startLoad(
  base: string,
  known: readonly { code: string; url: string }[],
  o: { redirectWorkers: number; createWorkers: number; pauseMs: number; maxSeconds?: number },
): Load {
  let running = true;
  const deadline = Date.now() + (o.maxSeconds ?? 120) * 1000;
  const failures: Failure[] = [];
  const created: { code: string; url: string }[] = [];
  let redirects = 0;
  let creates = 0;
  const go = () => running && Date.now() < deadline;
  const pause = () => new Promise((r) => setTimeout(r, o.pauseMs));
  const redirectLoop = async (w: number) => {
    for (let i = w; go(); i++) {
      const link = known[i % known.length];
      if (link === undefined) return;
      try {
        const res = await fetch(`${base}/${link.code}`, {
          redirect: 'manual',
          signal: AbortSignal.timeout(60_000),
        });
        await res.arrayBuffer();
        const to = res.headers.get('location');
        if (res.status < 300 || res.status > 308 || to !== link.url) {
          failures.push({ kind: 'redirect', at: Date.now(), why: `${res.status} → ${to}` });
        }
      } catch (err) {
        failures.push({ kind: 'redirect', at: Date.now(), why: errorText(err) });
      }
      redirects++;
      await pause();
    }
  };
  const createLoop = async (w: number) => {
    for (let i = 0; go(); i++) {
      const url = `https://example.com/fleet/${w}/${i}/${randomUUID()}`;
      try {
        const res = await fetch(`${base}/api/v1/links`, {
          method: 'POST',
          headers: { ...headers, 'idempotency-key': randomUUID() },
          body: JSON.stringify({ url }),
          signal: AbortSignal.timeout(60_000),
        });
        const body = (await res.json().catch(() => ({}))) as { code?: string };
        if (res.status === 201 && typeof body.code === 'string') created.push({ code: body.code, url });
        else failures.push({ kind: 'create', at: Date.now(), why: `${res.status} ${JSON.stringify(body)}` });
      } catch (err) {
        failures.push({ kind: 'create', at: Date.now(), why: errorText(err) });
      }
      creates++;
      await pause();
    }
  };
  const loops = [
    ...Array.from({ length: o.redirectWorkers }, (_, w) => redirectLoop(w)),
    ...Array.from({ length: o.createWorkers }, (_, w) => createLoop(w)),
  ];
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      return { redirects, creates, failures, created };
    },
  };
}

/** Every link answers with a redirect to its URL (checked `concurrency` at a time). */
export async function missingLinks(
  base: string,
  links: readonly { code: string; url: string }[],
  concurrency = 8,
): Promise<string[]> {
  const wrong: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < links.length; i = next++) {
        const l = links[i];
        if (l === undefined) continue;
        const res = await fetch(`${base}/${l.code}`, { redirect: 'manual' });
        await res.arrayBuffer();
        if (res.headers.get('location') !== l.url) wrong.push(`${l.code}: ${res.status}`);
      }
    }),
  );
  return wrong;
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: { code?: string } }).cause;
    return cause?.code ?? err.message;
  }
  return String(err);
}
