// The dead-letter stream of the click pipeline: entries that failed every delivery, with where
// they came from and why. `hop dlq` lists, shows, replays (back onto their partition, batch id
// kept, so a batch that was half written still counts once) and purges them.
import { type ClickEvent, decodeRawClicks } from '../domain/clicks.ts';
import { DEAD_LETTER_KEY } from '../events/click-stream.ts';
import type { RedisClient } from '../redis/connect-redis.ts';

export interface DeadLetter {
  /** Its id in the dead-letter stream. */
  readonly id: string;
  /** The partition stream and entry id it failed in. */
  readonly stream: string;
  readonly entry: string;
  readonly deliveries: number;
  readonly error: string;
  readonly failedAt: string;
  readonly batchId: string | null;
  /** The original entry's fields, as they were. */
  readonly fields: string[];
}

const META = new Set(['stream', 'entry', 'deliveries', 'error', 'failedAt']);

function toDeadLetter(id: string, flat: string[]): DeadLetter {
  const meta = new Map<string, string>();
  const fields: string[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const k = flat[i]!;
    const v = flat[i + 1]!;
    if (META.has(k) && !meta.has(k)) meta.set(k, v);
    else fields.push(k, v);
  }
  const b = fields.indexOf('b');
  return {
    id,
    stream: meta.get('stream') ?? '',
    entry: meta.get('entry') ?? '',
    deliveries: Number(meta.get('deliveries') ?? 0),
    error: meta.get('error') ?? '',
    failedAt: meta.get('failedAt') ?? '',
    batchId: b !== -1 && b % 2 === 0 ? (fields[b + 1] ?? null) : null,
    fields,
  };
}

/** The events of a dead letter, or null when they do not decode (the reason it may be there). */
export function eventsOf(d: DeadLetter): ClickEvent[] | null {
  const e = d.fields.indexOf('e');
  if (e === -1 || e % 2 !== 0) return null;
  try {
    return decodeRawClicks(d.fields[e + 1]!);
  } catch {
    return null;
  }
}

export class DeadLetters {
  private readonly client: RedisClient;

  constructor(client: RedisClient) {
    this.client = client;
  }

  count(): Promise<number> {
    return this.client.xlen(DEAD_LETTER_KEY);
  }

  async list(limit: number): Promise<DeadLetter[]> {
    const rows = (await this.client.xrange(DEAD_LETTER_KEY, '-', '+', 'COUNT', limit)) as [
      string,
      string[],
    ][];
    return rows.map(([id, flat]) => toDeadLetter(id, flat));
  }

  async get(id: string): Promise<DeadLetter | null> {
    const rows = (await this.client.xrange(DEAD_LETTER_KEY, id, id)) as [string, string[]][];
    const row = rows[0];
    return row === undefined ? null : toDeadLetter(row[0], row[1]);
  }

  /** The given dead letters, or all of them (oldest first, in pages). */
  private async *select(ids: readonly string[] | 'all'): AsyncGenerator<DeadLetter> {
    if (ids !== 'all') {
      for (const id of ids) {
        const d = await this.get(id);
        if (d !== null) yield d;
      }
      return;
    }
    // Only those there now: an entry replayed and failing again is not taken round twice.
    const last = (await this.client.xrevrange(DEAD_LETTER_KEY, '+', '-', 'COUNT', 1)) as [string, string[]][];
    if (last[0] === undefined) return;
    for (let from = '-'; ; ) {
      const rows = (await this.client.xrange(DEAD_LETTER_KEY, from, last[0][0], 'COUNT', 500)) as [
        string,
        string[],
      ][];
      if (rows.length === 0) return;
      for (const [id, flat] of rows) yield toDeadLetter(id, flat);
      from = `(${rows[rows.length - 1]![0]}`;
    }
  }

  /**
   * Appends each entry again to the partition it failed in, then deletes its dead letter (a crash
   * in between leaves both: the batch id makes the second write count nothing).
   */
  async replay(ids: readonly string[] | 'all'): Promise<number> {
    let n = 0;
    for await (const d of this.select(ids)) {
      if (d.stream === '' || d.fields.length === 0) throw new Error(`dead letter ${d.id} names no stream`);
      await this.client.xadd(d.stream, '*', ...d.fields);
      await this.client.xdel(DEAD_LETTER_KEY, d.id);
      n++;
    }
    return n;
  }

  async purge(ids: readonly string[] | 'all'): Promise<number> {
    if (ids === 'all') {
      const n = await this.count();
      await this.client.del(DEAD_LETTER_KEY);
      return n;
    }
    return ids.length === 0 ? 0 : this.client.xdel(DEAD_LETTER_KEY, ...ids);
  }
}
