// IP addresses as bytes, and address ranges (CIDR): parsed strictly, without DNS. Pure.

/** An address as its bytes: 4 for IPv4, 16 for IPv6. */
export type Bytes = Uint8Array;

export interface Range {
  readonly bytes: Bytes;
  readonly prefix: number;
}

/** Strict dotted quad (what URL parsing and DNS give back), no leading zeros. */
function parseIPv4(s: string): Bytes | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (m === null) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = m[i + 1]!;
    const n = Number(part);
    if (n > 255 || (part.length > 1 && part.startsWith('0'))) return null;
    out[i] = n;
  }
  return out;
}

function parseIPv6(text: string): Bytes | null {
  // A zone (fe80::1%eth0) names an interface of one host: not an address anyone else can use.
  if (text.includes('%')) return null;
  let s = text;
  let tail: Bytes | null = null;
  const lastColon = s.lastIndexOf(':');
  if (lastColon === -1) return null;
  if (s.includes('.', lastColon)) {
    tail = parseIPv4(s.slice(lastColon + 1));
    if (tail === null) return null;
    s = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const groups = (h: string) => (h === '' ? [] : h.split(':'));
  const head = groups(halves[0]!);
  const rest = halves.length === 2 ? groups(halves[1]!) : [];
  const given = head.length + rest.length;
  if (halves.length === 1 ? given !== 8 : given > 7) return null;
  const all = [...head, ...new Array<string>(8 - given).fill('0'), ...rest];
  const out = new Uint8Array(16);
  for (const [i, g] of all.entries()) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
    const n = Number.parseInt(g, 16);
    out[2 * i] = n >> 8;
    out[2 * i + 1] = n & 0xff;
  }
  if (tail !== null) out.set(tail, 12);
  return out;
}

/** An IP literal (IPv6 with or without brackets) as bytes, or null for a host name. */
export function parseIp(text: string): Bytes | null {
  const s = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  return s.includes(':') ? parseIPv6(s) : parseIPv4(s);
}

export function inRange(addr: Bytes, r: Range): boolean {
  if (addr.length !== r.bytes.length) return false;
  const whole = r.prefix >> 3;
  for (let i = 0; i < whole; i++) if (addr[i] !== r.bytes[i]) return false;
  const bits = r.prefix & 7;
  if (bits === 0) return true;
  const mask = (0xff << (8 - bits)) & 0xff;
  return (addr[whole]! & mask) === (r.bytes[whole]! & mask);
}

/**
 * `address` or `address/prefix` (IPv4 or IPv6) as a range; null when it is neither. An address
 * alone is the range of that one address.
 */
export function parseRange(text: string): Range | null {
  const [addr, prefix, extra] = text.trim().split('/');
  if (extra !== undefined) return null;
  const bytes = parseIp(addr!);
  if (bytes === null) return null;
  const max = bytes.length * 8;
  if (prefix === undefined) return { bytes, prefix: max };
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > max) return null;
  return { bytes, prefix: Number(prefix) };
}
