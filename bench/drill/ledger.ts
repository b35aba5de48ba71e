// What the drill knows was acknowledged (DESIGN §12): for every code it wrote, the state its last
// acknowledged write left (a URL, or deleted) and when that answer came; for a write sent and never
// answered, the outcome it would have had (either one is right after recovery). After recovery each
// code is looked up through Hop's redirect and compared.

/** A link's state as the redirect shows it: its URL, or null for a tombstone (404/410). */
export type LinkState = string | null;

interface Entry {
  expected: LinkState;
  /** Date.now() of the acknowledgement (0 for seeded links: acknowledged by the import). */
  ackAt: number;
  /** Outcomes of writes sent but never answered: also right. */
  inDoubt: LinkState[];
}

export interface Check {
  checked: number;
  /** Acknowledged codes served wrong or not at all. */
  wrong: { code: string; expected: LinkState; actual: LinkState | 'error'; ackAt: number }[];
  /** Wrong codes among those acknowledged after `since` (null: not asked). */
  windowMs: number | null;
  /** Earliest and latest acknowledgement time of the wrong ones. */
  firstLost: number | null;
  lastLost: number | null;
}

export class Ledger {
  readonly entries = new Map<string, Entry>();

  seed(code: string, url: string): void {
    this.entries.set(code, { expected: url, ackAt: 0, inDoubt: [] });
  }

  /** Before a write is sent: its outcome is possible from now on. */
  sending(code: string, outcome: LinkState): void {
    const e = this.entries.get(code);
    if (e === undefined) this.entries.set(code, { expected: outcome, ackAt: -1, inDoubt: [outcome] });
    else e.inDoubt.push(outcome);
  }

  /** The write was answered 2xx: its outcome is now the one expected. */
  acknowledged(code: string, outcome: LinkState): void {
    const e = this.entries.get(code);
    if (e === undefined) this.entries.set(code, { expected: outcome, ackAt: Date.now(), inDoubt: [] });
    else {
      e.expected = outcome;
      e.ackAt = Date.now();
      e.inDoubt = e.inDoubt.filter((o) => o !== outcome);
    }
  }

  /** The write was refused for certain (4xx): it changed nothing. */
  refused(code: string, outcome: LinkState): void {
    const e = this.entries.get(code);
    if (e === undefined) return;
    const i = e.inDoubt.indexOf(outcome);
    if (i >= 0) e.inDoubt.splice(i, 1);
  }

  /** Acknowledged codes (entries whose only write is still in doubt are not). */
  codes(): string[] {
    return [...this.entries].filter(([, e]) => e.ackAt >= 0).map(([c]) => c);
  }

  get acknowledgedWrites(): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.ackAt > 0) n++;
    return n;
  }

  /** Compares every acknowledged code's served state with what is expected. */
  async check(lookup: (code: string) => Promise<LinkState | 'error'>, concurrency = 32): Promise<Check> {
    const codes = this.codes();
    const wrong: Check['wrong'] = [];
    let next = 0;
    const worker = async () => {
      while (next < codes.length) {
        const code = codes[next++]!;
        const e = this.entries.get(code)!;
        const actual = await lookup(code);
        if (actual === e.expected || (actual !== 'error' && e.inDoubt.includes(actual))) continue;
        wrong.push({ code, expected: e.expected, actual, ackAt: e.ackAt });
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const times = wrong.map((w) => w.ackAt);
    const firstLost = times.length === 0 ? null : Math.min(...times);
    const lastLost = times.length === 0 ? null : Math.max(...times);
    return {
      checked: codes.length,
      wrong,
      windowMs: firstLost === null || lastLost === null ? null : lastLost - firstLost,
      firstLost,
      lastLost,
    };
  }
}

/** Hop's redirect as a lookup: the Location of a 3xx, null for 404/410, 'error' for anything else. */
export function redirectLookup(baseUrl: string): (code: string) => Promise<LinkState | 'error'> {
  return async (code) => {
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await fetch(`${baseUrl}/${code}`, { redirect: 'manual' });
        await res.arrayBuffer();
        if (res.status >= 300 && res.status < 400) return res.headers.get('location');
        if (res.status === 404 || res.status === 410) return null;
        if (attempt >= 3) return 'error';
      } catch {
        if (attempt >= 3) return 'error';
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  };
}
