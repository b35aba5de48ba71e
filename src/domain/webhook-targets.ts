// Where a webhook may send its deliveries: only to globally routable addresses, unless the
// operator allows a host or an address range (HOP_WEBHOOK_ALLOW_TARGETS). Otherwise any API key
// could make Hop POST into its own network: the cloud metadata service, Redis, PostgreSQL.
// Pure: the subscription route and the sender do the DNS and the dialling, and ask this.

import { type Bytes, inRange, parseIp, type Range } from './ip-address.ts';

/** HOP_WEBHOOK_ALLOW_TARGETS, parsed: host names taken as they are, and address ranges. */
export interface WebhookAllowList {
  /** Lower-case host names (no trailing dot) allowed whatever they resolve to. */
  readonly hosts: ReadonlySet<string>;
  readonly ranges: readonly Range[];
}

export const EMPTY_ALLOW_LIST: WebhookAllowList = { hosts: new Set(), ranges: [] };

/** The verdict on a URL's host before any DNS: send, refuse, or resolve and ask again per address. */
export type HostVerdict =
  | { readonly kind: 'allowed' }
  | { readonly kind: 'forbidden'; readonly reason: string }
  | { readonly kind: 'resolve'; readonly host: string };

const range = (cidr: string): Range => {
  const [addr, prefix] = cidr.split('/');
  return { bytes: parseIp(addr!)!, prefix: Number(prefix) };
};

// IANA's special-purpose registries: every IPv4 block that is not globally reachable.
const IPV4_NOT_GLOBAL: readonly [Range, string][] = (
  [
    ['0.0.0.0/8', 'an unspecified ("this network") address'],
    ['10.0.0.0/8', 'a private address'],
    ['100.64.0.0/10', 'a shared (carrier-grade NAT) address'],
    ['127.0.0.0/8', 'a loopback address'],
    ['169.254.0.0/16', 'a link-local address (where cloud metadata services answer)'],
    ['172.16.0.0/12', 'a private address'],
    ['192.0.0.0/24', 'an IETF protocol address'],
    ['192.0.2.0/24', 'a documentation address'],
    ['192.88.99.0/24', 'a 6to4 relay address'],
    ['192.168.0.0/16', 'a private address'],
    ['198.18.0.0/15', 'a benchmarking address'],
    ['198.51.100.0/24', 'a documentation address'],
    ['203.0.113.0/24', 'a documentation address'],
    ['224.0.0.0/4', 'a multicast address'],
    ['240.0.0.0/4', 'a reserved or broadcast address'],
  ] as const
).map(([cidr, why]) => [range(cidr), why]);

// IPv6 blocks that carry an IPv4 address: judged by the address they carry.
const IPV6_CARRYING_IPV4: readonly [Range, number][] = [
  [range('::ffff:0:0/96'), 12], // IPv4-mapped
  [range('::/96'), 12], // IPv4-compatible (deprecated)
  [range('64:ff9b::/96'), 12], // NAT64
  [range('2002::/16'), 2], // 6to4
];

const IPV6_NOT_GLOBAL: readonly [Range, string][] = (
  [
    ['::/128', 'an unspecified address'],
    ['::1/128', 'a loopback address'],
    ['64:ff9b:1::/48', 'a local-use NAT64 address'],
    ['100::/64', 'a discard-only address'],
    ['2001:db8::/32', 'a documentation address'],
    ['2001::/23', 'an IETF protocol address (Teredo, benchmarking, ORCHID)'],
    ['3fff::/20', 'a documentation address'],
    ['fc00::/7', 'a unique-local (private) address'],
    ['fe80::/10', 'a link-local address'],
    ['fec0::/10', 'a site-local address'],
    ['ff00::/8', 'a multicast address'],
  ] as const
).map(([cidr, why]) => [range(cidr), why]);

const GLOBAL_UNICAST_V6 = range('2000::/3');

/** Why an address is not globally reachable, or null when it is. */
export function notGlobalReason(addr: Bytes): string | null {
  if (addr.length === 4) {
    for (const [r, why] of IPV4_NOT_GLOBAL) if (inRange(addr, r)) return why;
    return null;
  }
  for (const [r, why] of IPV6_NOT_GLOBAL.slice(0, 2)) if (inRange(addr, r)) return why;
  for (const [r, at] of IPV6_CARRYING_IPV4) {
    if (inRange(addr, r)) return notGlobalReason(addr.subarray(at, at + 4));
  }
  for (const [r, why] of IPV6_NOT_GLOBAL) if (inRange(addr, r)) return why;
  return inRange(addr, GLOBAL_UNICAST_V6) ? null : 'a reserved address';
}

/** An IPv4-mapped IPv6 address is the IPv4 address (for allow ranges written either way). */
function canonical(addr: Bytes): Bytes {
  return addr.length === 16 && inRange(addr, IPV6_CARRYING_IPV4[0]![0]) ? addr.subarray(12) : addr;
}

/**
 * Whether a webhook may dial this address (as DNS or the URL gave it): a reason to refuse, or
 * null. This is the check made at connect time, against the address actually dialled.
 */
export function refuseAddress(address: string, allow: WebhookAllowList): string | null {
  const bytes = parseIp(address);
  if (bytes === null) return `"${address}" is not an IP address`;
  const addr = canonical(bytes);
  if (allow.ranges.some((r) => inRange(addr, r) || inRange(bytes, r))) return null;
  const why = notGlobalReason(addr);
  return why === null ? null : `${address} is ${why}`;
}

// Names that only ever mean something inside a network: RFC 6761 (localhost), RFC 6762 (.local),
// RFC 8375 (home.arpa), ICANN's reserved .internal, and the common localdomain.
const LOCAL_SUFFIXES = ['localhost', 'local', 'internal', 'home.arpa', 'localdomain'];

/**
 * The verdict on a URL's host (`URL.hostname`: IPv4 already in dotted form whatever its spelling,
 * IPv6 in brackets) before any DNS.
 */
export function webhookHostVerdict(hostname: string, allow: WebhookAllowList): HostVerdict {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  if (allow.hosts.has(host)) return { kind: 'allowed' };
  if (parseIp(host) !== null) {
    const why = refuseAddress(host.replace(/^\[|\]$/g, ''), allow);
    return why === null ? { kind: 'allowed' } : { kind: 'forbidden', reason: why };
  }
  if (host === '' || host.startsWith('[')) return { kind: 'forbidden', reason: 'the host is not valid' };
  for (const suffix of LOCAL_SUFFIXES) {
    if (host === suffix || host.endsWith(`.${suffix}`)) {
      return { kind: 'forbidden', reason: `"${host}" is a local-only name (.${suffix})` };
    }
  }
  if (!host.includes('.')) {
    return {
      kind: 'forbidden',
      reason: `"${host}" is a single-label name, resolvable only inside a network`,
    };
  }
  return { kind: 'resolve', host };
}

/**
 * HOP_WEBHOOK_ALLOW_TARGETS: comma-separated host names, IP addresses and CIDR ranges
 * (e.g. `127.0.0.1,hooks.internal.example,10.20.0.0/16,fd00::/8`). Throws on a bad entry.
 */
export function parseAllowList(raw: string): WebhookAllowList {
  const hosts = new Set<string>();
  const ranges: Range[] = [];
  for (const entry of raw.split(',').map((e) => e.trim().toLowerCase())) {
    if (entry === '') continue;
    const [addr, prefix, extra] = entry.split('/');
    const bytes = parseIp(addr!);
    if (bytes !== null) {
      const max = bytes.length * 8;
      const bits = prefix === undefined ? max : Number(prefix);
      if (extra !== undefined || !/^\d{1,3}$/.test(prefix ?? String(max)) || bits > max) {
        throw new Error(`has "${entry}": a range is address/prefix with a prefix of at most ${max}`);
      }
      ranges.push({ bytes, prefix: bits });
    } else if (
      prefix === undefined &&
      /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?$/.test(entry)
    ) {
      hosts.add(entry.replace(/\.$/, ''));
    } else {
      throw new Error(`has "${entry}": each entry must be a host name, an IP address or a CIDR range`);
    }
  }
  return { hosts, ranges };
}
