// The replayable change stream in Redis (DESIGN §6): one stream per shard, `hop:changes:{shard}`,
// each entry one outbox row (its per-shard seq and the change as JSON), in seq order. The relay
// appends through a script that skips any seq at or below the stream's last one, so a relay that
// restarts, or two relays racing after a lost lease, never append a change twice or out of order.
// Consumers keep their own offsets (a seq per shard) and may replay from any point.
import { linkKey } from '../domain/domains.ts';
import type { Link } from '../domain/link.ts';
import type { RedisClient } from '../redis/connect-redis.ts';
import { fieldMap } from '../redis/field-map.ts';
import { linkFromJson, linkToJson } from '../storage/link-json.ts';
import type { ChangeEvent } from '../storage/ports.ts';

export const changeStreamKey = (shard: number): string => `hop:changes:{${shard}}`;

/** KEYS[1] the stream; ARGV pairs of (seq, change JSON) in seq order. Returns {appended, last seq}. */
export const APPEND_CHANGES_SCRIPT = `
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local lastSeq = 0
if #last > 0 then
  local f = last[1][2]
  for i = 1, #f, 2 do
    if f[i] == 'seq' then lastSeq = tonumber(f[i + 1]) end
  end
end
local appended = 0
for i = 1, #ARGV, 2 do
  local seq = tonumber(ARGV[i])
  if seq > lastSeq then
    redis.call('XADD', KEYS[1], '*', 'seq', ARGV[i], 'change', ARGV[i + 1])
    lastSeq = seq
    appended = appended + 1
  end
end
return {appended, lastSeq}
`;

export function encodeChange(c: ChangeEvent): string {
  return JSON.stringify({ kind: c.kind, at: c.at.toISOString(), link: linkToJson(c.link) });
}

export function decodeChange(seq: number, text: string): ChangeEvent {
  const o = JSON.parse(text) as {
    kind: ChangeEvent['kind'];
    at: string;
    link: Parameters<typeof linkFromJson>[0];
  };
  const link: Link = linkFromJson(o.link);
  return {
    seq,
    kind: o.kind,
    code: linkKey(link.domain, link.code),
    bucket: link.bucket,
    at: new Date(o.at),
    link,
  };
}

type StreamReader = Pick<RedisClient, 'xrange' | 'xrevrange'>;

/** The highest seq in a shard's change stream (0 when empty). */
export async function lastPublishedSeq(client: StreamReader, shard: number): Promise<number> {
  const last = await client.xrevrange(changeStreamKey(shard), '+', '-', 'COUNT', 1);
  const seq = last[0] === undefined ? undefined : fieldMap(last[0][1]).get('seq');
  return seq === undefined ? 0 : Number(seq);
}

/** A shard's changes after `afterSeq` (and at or after `since`, when given), in order, in pages. */
export async function* readChangeStream(
  client: StreamReader,
  shard: number,
  from: { afterSeq: number; since?: Date },
): AsyncGenerator<ChangeEvent> {
  const key = changeStreamKey(shard);
  for (let start = '-'; ; ) {
    const page = await client.xrange(key, start, '+', 'COUNT', 1_000);
    for (const [, flat] of page) {
      const f = fieldMap(flat);
      const seq = Number(f.get('seq'));
      if (!(seq > from.afterSeq)) continue;
      const change = decodeChange(seq, f.get('change') ?? '{}');
      if (from.since !== undefined && change.at < from.since) continue;
      yield change;
    }
    if (page.length < 1_000) return;
    start = `(${page[page.length - 1]![0]}`;
  }
}
