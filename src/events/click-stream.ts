// The click stream on Redis Streams (DESIGN §7), as producers and workers both see it: K
// partition streams chosen by the code's bucket, one entry per producer batch (its id and its
// events, packed by column), one consumer group that turns entries into rollups, and one
// dead-letter stream for entries that failed too often.

import { type ClickEvent, decodeRawClicks, encodeRawClicks } from '../domain/clicks.ts';
import { bucketOfKey } from '../domain/domains.ts';
import { fieldMap } from '../redis/field-map.ts';

/** `{p}` is a hash tag: on a Redis Cluster each partition is one slot, spread over the masters. */
export const partitionKey = (partition: number): string => `hop:clicks:{${partition}}`;
export const DEAD_LETTER_KEY = 'hop:clicks:dead';
/** The consumer group of `hop worker`: every entry is written into rollups by one of its members. */
export const ROLLUP_GROUP = 'hop-rollups';

/** Placement by bucket, so a partition's clicks belong to a fixed set of buckets (and shards). */
export const partitionOf = (key: string, partitions: number): number => bucketOfKey(key) % partitions;

/** Events per entry at most: one entry is one exactly-once batch, written in one transaction. */
export const MAX_EVENTS_PER_ENTRY = 2_000;

/**
 * An entry's optional field: the W3C traceparent of the producer span that appended it (present
 * only with tracing on and a sampled redirect among its clicks). The worker's span links to it.
 */
export const TRACE_FIELD = 'tp';

/** Field names and values of an XADD: the batch id and its events. */
export function entryFields(batchId: string, events: readonly ClickEvent[]): string[] {
  return ['b', batchId, 'e', encodeRawClicks(events)];
}

export interface ClickEntry {
  /** The stream entry's id (its position in its partition). */
  readonly id: string;
  readonly batchId: string;
  readonly events: ClickEvent[];
  /** The producer span's traceparent, when the entry carries one. */
  readonly traceparent: string | null;
}

export class MalformedEntry extends Error {
  override name = 'MalformedEntry';
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const CODE = /^[A-Za-z0-9_-]{1,64}$/;
const VISITOR = /^[0-9a-f]{16}$/;
const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
const optionalText = (v: unknown) => v === null || (typeof v === 'string' && v.length <= 255);

/** The flat [field, value, …] list of a stream entry as a batch; MalformedEntry when it is not one. */
export function parseEntry(id: string, fields: readonly string[]): ClickEntry {
  const f = fieldMap(fields);
  const batchId = f.get('b');
  const packed = f.get('e');
  if (batchId === undefined || !UUID.test(batchId) || packed === undefined) {
    throw new MalformedEntry('not a click batch (fields b and e)');
  }
  let events: ClickEvent[];
  try {
    events = decodeRawClicks(packed);
  } catch {
    throw new MalformedEntry('events are not JSON');
  }
  for (const e of events) {
    const ok =
      typeof e.id === 'string' &&
      UUID.test(e.id) &&
      typeof e.code === 'string' &&
      CODE.test(e.code) &&
      Number.isSafeInteger(e.at) &&
      e.at > 0 &&
      typeof e.visitor === 'string' &&
      VISITOR.test(e.visitor) &&
      optionalText(e.referrerHost) &&
      optionalText(e.country) &&
      optionalText(e.browser) &&
      optionalText(e.os) &&
      optionalText(e.device);
    if (!ok) throw new MalformedEntry(`event ${JSON.stringify(e.id)} is not a valid click`);
  }
  const traceparent = f.get(TRACE_FIELD);
  return {
    id,
    batchId,
    events,
    traceparent: traceparent !== undefined && TRACEPARENT.test(traceparent) ? traceparent : null,
  };
}

const PARTITIONS_KEY = 'hop:clicks:partitions';

export class PartitionMismatch extends Error {
  override name = 'PartitionMismatch';
}

/**
 * The first process to use the stream records its partition count; every later one must agree,
 * or some partitions would be written that no worker reads.
 */
export async function agreeOnPartitions(
  client: { set(k: string, v: string, nx: 'NX'): Promise<unknown>; get(k: string): Promise<string | null> },
  partitions: number,
): Promise<void> {
  await client.set(PARTITIONS_KEY, String(partitions), 'NX');
  const held = await client.get(PARTITIONS_KEY);
  if (held !== null && Number(held) !== partitions) {
    throw new PartitionMismatch(
      `HOP_CLICK_STREAM_PARTITIONS is ${partitions}, but the click stream in Redis has ${held} partitions: every Hop and worker must use the same number`,
    );
  }
}

/** Stream ids compare as (milliseconds, sequence). */
export function compareStreamIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint];
  return am !== bm ? (am < bm ? -1 : 1) : as === bs ? 0 : as < bs ? -1 : 1;
}

/** The id right after this one. */
export function nextStreamId(id: string): string {
  const [ms, seq] = id.split('-') as [string, string];
  return `${ms}-${BigInt(seq) + 1n}`;
}
