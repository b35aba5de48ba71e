// Time-ordered UUIDs (RFC 9562 version 7) made in application code, for click events and
// batch ids: sortable by creation time, unique without coordination.
import { randomFillSync } from 'node:crypto';

const pool = new Uint8Array(16 * 256);
let poolAt = pool.length;
const hex: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function uuid7(now: number = Date.now()): string {
  if (poolAt + 16 > pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const b = pool.subarray(poolAt, poolAt + 16);
  poolAt += 16;
  return uuid7From(b, now);
}

/** 16 bytes (overwritten) as a version-7 UUID of time `ms`: the rest of its bits are the bytes'. */
export function uuid7From(b: Uint8Array, ms: number): string {
  // 48-bit big-endian millisecond timestamp.
  let t = Math.max(0, Math.floor(ms));
  for (let i = 5; i >= 0; i--) {
    b[i] = t % 256;
    t = Math.floor(t / 256);
  }
  b[6] = (b[6]! & 0x0f) | 0x70;
  b[8] = (b[8]! & 0x3f) | 0x80;
  let s = '';
  for (let i = 0; i < 16; i++) {
    s += hex[b[i]!];
    if (i === 3 || i === 5 || i === 7 || i === 9) s += '-';
  }
  return s;
}
