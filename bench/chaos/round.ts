// One fault under load: links for redirects and clicks made first, the load started, the fault
// injected after a steady stretch, healed, the load kept on until writes have worked again for a
// while, then every acknowledged create read back and the clicks counted.
import { LatencyHistogram } from '../lib/histogram.ts';
import type { Fault, FaultTimings } from './faults.ts';
import {
  checkAcknowledged,
  clicksCounted,
  createLink,
  duplicateCreates,
  type LoadRates,
  startChaosLoad,
  writeRto,
} from './load.ts';
import type { ChaosSystem } from './system.ts';

export interface ChaosRow {
  readonly fault: string;
  readonly note: string;
  readonly acknowledged: number;
  /** Acknowledged creates missing afterwards, or with another URL: must be 0. */
  readonly lost: number;
  readonly wrong: number;
  /** One create (one Idempotency-Key) stored as two links: must be 0. */
  readonly duplicates: number;
  readonly unacknowledged: number;
  readonly redirectErrors: number;
  /** What the failed redirects and creates answered, e.g. "503×12 0×3" (0: no answer). */
  readonly redirectErrorStatuses: string;
  readonly writeErrorStatuses: string;
  /** A known link answered 404/410 or sent elsewhere: must be 0. */
  readonly wrongRedirects: number;
  readonly redirects: number;
  /** Create answers that were not 2xx (each retried with its key). */
  readonly writeErrors: number;
  /** Fault → first successful create after the last failed one (0: none failed). */
  readonly rtoMs: number;
  readonly redirectP99Ms: number;
  readonly clicksServed: number;
  readonly clicksCounted: number;
  /** Acknowledged links of this round, for a check after every round. */
  readonly links: { code: string; url: string }[];
}

export interface RoundOptions {
  readonly rates: LoadRates;
  readonly timings: FaultTimings;
  /** Load before the fault. */
  readonly steadyMs: number;
  /** Load after healing, with writes working. */
  readonly afterMs: number;
  readonly round: string;
}

export async function runRound(sys: ChaosSystem, fault: Fault, o: RoundOptions): Promise<ChaosRow> {
  const base = sys.fleet.balancer.url;
  // Known links for redirects (half of them also take counted clicks), made and redirected once so the
  // caches hold them before the fault.
  const known: { code: string; url: string }[] = [];
  for (let i = 0; i < 20; i++) {
    const url = `https://example.com/known/${o.round}/${i}`;
    known.push({ code: await createLink(base, url, [`${o.round}-known`]), url });
  }
  // Ten take the counted clicks, the other ten the plain redirects, so a link's count is its clicks.
  const clickLinks = known.slice(0, 10).map((k) => k.code);
  // Redirected once (by HEAD, no click) before the fault, as links in use are: the caches hold them.
  for (const k of known) {
    const res = await fetch(`${base}/${k.code}`, { method: 'HEAD', redirect: 'manual' });
    if (res.status !== 302) throw new Error(`${k.code} answered ${res.status} before the fault`);
  }
  const load = startChaosLoad(base, { rates: o.rates, known, clickLinks, round: o.round });
  await sleep(o.steadyMs);
  const faultAt = Date.now();
  let note = '';
  let healError: unknown = null;
  try {
    const { note: n, heal } = await fault.inject(sys, o.timings);
    note = n;
    sys.log(`${fault.name}: ${note}`);
    await heal();
    sys.log(`${fault.name}: healed after ${((Date.now() - faultAt) / 1000).toFixed(1)} s`);
  } catch (err) {
    healError = err;
  }
  await sleep(o.afterMs);
  // Creates still unacknowledged get a last stretch of retries, as a client would.
  const out = await load.stop(15_000);
  const windowEnd = Date.now();
  if (healError !== null) throw healError;
  const { lost, wrong } = await checkAcknowledged(base, out.acknowledged);
  const duplicates = await duplicateCreates(base, o.round);
  const counted = await clicksCounted(base, clickLinks, out.clicksServed, 60_000);
  const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  // Redirect p99 while the fault lasted: from the fault to the end of recovery.
  const during = out.redirects.log.filter((r) => r.sent >= faultAt && r.sent <= windowEnd);
  const hist = new LatencyHistogram();
  for (const r of during) hist.recordMillis(r.ended - r.sent);
  const p99 = hist.percentileMs(99);
  return {
    fault: fault.name,
    note,
    acknowledged: out.acknowledged.length,
    lost: lost.length,
    wrong: wrong.length,
    duplicates,
    unacknowledged: out.unacknowledged,
    redirectErrors: out.redirects.errors,
    redirectErrorStatuses: statusCounts(out.redirects.log.filter((r) => !r.ok)),
    writeErrorStatuses: statusCounts(out.attempts.filter((a) => !a.ok)),
    wrongRedirects: out.redirects.wrong,
    redirects: out.redirects.total,
    writeErrors: out.attempts.filter((a) => !a.ok).length,
    rtoMs: writeRto(out.attempts, faultAt),
    redirectP99Ms: p99,
    clicksServed: sum(out.clicksServed),
    clicksCounted: sum(counted),
    links: out.acknowledged.map(({ code, url }) => ({ code, url })),
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function statusCounts(xs: readonly { status: number }[]): string {
  const by = new Map<number, number>();
  for (const x of xs) by.set(x.status, (by.get(x.status) ?? 0) + 1);
  return [...by].map(([s, n]) => `${s}×${n}`).join(' ');
}
