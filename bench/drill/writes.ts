// The writes that go on while the drill runs: creates, edits and deletes through Hop's API from a few
// clients, each outcome recorded in the ledger as Hop answered it (2xx acknowledged, 4xx refused,
// anything else — 5xx, a reset, a kill — in doubt).
import type { Ledger, LinkState } from './ledger.ts';

export interface WriteLoad {
  /** Stops the clients after the writes in flight; resolves with the counts. */
  stop(): Promise<WriteCounts>;
  counts: WriteCounts;
}

export interface WriteCounts {
  creates: number;
  edits: number;
  deletes: number;
  failed: number;
}

export interface WriteOptions {
  baseUrl: string;
  apiKey: string;
  ledger: Ledger;
  /** Seeded codes the clients may edit and delete (each client takes its own share). */
  seeded: readonly string[];
  clients?: number;
  /** Pause between one client's writes, ms (0: as fast as Hop answers). */
  pauseMs?: number;
  tag?: string;
}

export function startWrites(opts: WriteOptions): WriteLoad {
  const clients = opts.clients ?? 4;
  const counts: WriteCounts = { creates: 0, edits: 0, deletes: 0, failed: 0 };
  const json = { authorization: `Bearer ${opts.apiKey}`, 'content-type': 'application/json' };
  const bearer = { authorization: `Bearer ${opts.apiKey}` };
  const tag = opts.tag ?? 'w';
  let stopping = false;
  const send = async (
    code: string,
    outcome: LinkState,
    req: () => Promise<Response>,
    ok: number,
  ): Promise<boolean> => {
    opts.ledger.sending(code, outcome);
    try {
      const res = await req();
      await res.arrayBuffer();
      if (res.status === ok) {
        opts.ledger.acknowledged(code, outcome);
        return true;
      }
      if (res.status >= 400 && res.status < 500) opts.ledger.refused(code, outcome);
    } catch {
      // In doubt: either outcome is right.
    }
    counts.failed++;
    return false;
  };
  const client = async (c: number) => {
    const mine: string[] = opts.seeded.filter((_, i) => i % clients === c).slice(0, 5_000);
    for (let i = 0; !stopping; i++) {
      try {
        const roll = i % 10;
        if (roll < 6 || mine.length === 0) {
          const url = `https://drill.example/${tag}/${c}/${i}`;
          const res = await fetch(`${opts.baseUrl}/api/v1/links`, {
            method: 'POST',
            headers: json,
            body: JSON.stringify({ url }),
          });
          if (res.status === 201) {
            const { code } = (await res.json()) as { code: string };
            opts.ledger.acknowledged(code, url);
            mine.push(code);
            counts.creates++;
          } else {
            await res.arrayBuffer();
            counts.failed++;
          }
        } else if (roll < 9) {
          const code = mine[(i * 7919) % mine.length]!;
          const url = `https://drill.example/${tag}/${c}/${i}/edited`;
          const done = await send(
            code,
            url,
            () =>
              fetch(`${opts.baseUrl}/api/v1/links/${code}`, {
                method: 'PATCH',
                headers: json,
                body: JSON.stringify({ url }),
              }),
            200,
          );
          if (done) counts.edits++;
        } else {
          const code = mine.splice((i * 104729) % mine.length, 1)[0]!;
          const done = await send(
            code,
            null,
            () => fetch(`${opts.baseUrl}/api/v1/links/${code}`, { method: 'DELETE', headers: bearer }),
            204,
          );
          if (done) counts.deletes++;
        }
      } catch {
        counts.failed++;
        await new Promise((r) => setTimeout(r, 50));
      }
      if (opts.pauseMs) await new Promise((r) => setTimeout(r, opts.pauseMs));
    }
  };
  const running = Promise.all(Array.from({ length: clients }, (_, c) => client(c)));
  return {
    counts,
    async stop() {
      stopping = true;
      await running;
      return counts;
    },
  };
}

/** Runs `fn` over `items` with `concurrency` at once. */
export async function eachLimit<T>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}
