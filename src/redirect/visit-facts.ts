// What redirect rules may ask of a request (domain/redirect-rules.ts Visit), answered from the
// request's headers and address. Only a link with rules asks, and each answer only when a rule
// needs it: user agents are parsed once per distinct agent, GeoIP is loaded on the first
// country rule evaluated (about 17 MB, which a Hop without country rules never holds).
import type { IncomingMessage } from 'node:http';
import Bowser from 'bowser';
import { geoip, headerCountry } from '../analytics/country.ts';
import { parseIp } from '../domain/ip-address.ts';
import type { Visit } from '../domain/redirect-rules.ts';
import { clientAddress, compileTrust, type TrustProxy } from '../http/trust-proxy.ts';

type Agent = ReturnType<Visit['agent']>;

const AGENT_CACHE_SIZE = 4096;

// Bowser's names, as the rules name them.
const OS_NAMES: Record<string, string> = {
  iOS: 'ios',
  Android: 'android',
  Windows: 'windows',
  macOS: 'macos',
  Linux: 'linux',
  'Chrome OS': 'chromeos',
};
const BROWSER_NAMES: Record<string, string> = {
  Chrome: 'chrome',
  Firefox: 'firefox',
  Safari: 'safari',
  'Microsoft Edge': 'edge',
  Opera: 'opera',
  'Samsung Internet for Android': 'samsung',
  Chromium: 'chromium',
  Vivaldi: 'vivaldi',
  'Yandex Browser': 'yandex',
  'Internet Explorer': 'ie',
};

function parseAgent(ua: string): Agent {
  if (ua === '') return { os: null, platform: null, browser: null };
  const p = Bowser.parse(ua);
  return {
    os: OS_NAMES[p.os.name ?? ''] ?? null,
    platform: p.platform.type ?? null,
    browser: BROWSER_NAMES[p.browser.name ?? ''] ?? null,
  };
}

/** Accept-Language as tags, most preferred first; `*` and q=0 left out. */
export function acceptedLanguages(header: string | undefined): string[] {
  if (header === undefined || header === '') return [];
  const out: { tag: string; q: number; i: number }[] = [];
  for (const [i, part] of header.split(',').entries()) {
    const [tagPart, ...params] = part.split(';');
    const tag = tagPart!.trim().toLowerCase().replaceAll('_', '-');
    if (tag === '' || tag === '*') continue;
    let q = 1;
    for (const p of params) {
      const m = /^\s*q\s*=\s*([01](\.\d{0,3})?)\s*$/i.exec(p);
      if (m !== null) q = Number(m[1]);
    }
    if (q > 0) out.push({ tag, q, i });
  }
  return out.sort((a, b) => b.q - a.q || a.i - b.i).map((x) => x.tag);
}

export interface VisitFactsOptions {
  /** Proxies whose X-Forwarded-For is believed: false, true (all) or addresses/CIDRs. */
  readonly trustProxy: string | boolean;
  /** A CDN's country header (e.g. cf-ipcountry), or null for the bundled GeoIP database. */
  readonly countryHeader: string | null;
}

/** A visitor described in words (the rules editor's preview), as the Visit the rules read. */
export interface DescribedVisitor {
  readonly userAgent?: string;
  readonly acceptLanguage?: string;
  readonly country?: string;
  readonly query?: string;
  readonly ip?: string;
  /** 0-99: where the visitor falls in a sample's split. */
  readonly bucket?: number;
}

export function describedVisit(v: DescribedVisitor, now: number): Visit {
  const agent = parseAgent(v.userAgent ?? '');
  return {
    now,
    query: (v.query ?? '').replace(/^\?/, ''),
    agent: () => agent,
    languages: () => acceptedLanguages(v.acceptLanguage),
    country: () => (v.country === undefined || v.country === '' ? null : v.country.toUpperCase()),
    ip: () => (v.ip === undefined || v.ip === '' ? null : parseIp(v.ip)),
    bucket: () => v.bucket ?? 0,
  };
}

/** Makes the Visit of one request for one link. */
export class VisitFacts {
  private readonly agents = new Map<string, Agent>();
  // Browsers send a handful of distinct Accept-Language headers and come from a bounded set of
  // addresses at a time: each is parsed once, not on every redirect of a link with rules.
  private readonly languageLists = new Map<string, readonly string[]>();
  private readonly addresses = new Map<string, ReturnType<typeof parseIp>>();
  private readonly trust: TrustProxy;
  private readonly countryHeader: string | null;

  constructor(opts: VisitFactsOptions) {
    this.trust = compileTrust(opts.trustProxy);
    this.countryHeader = opts.countryHeader?.toLowerCase() ?? null;
  }

  visit(code: string, url: string, req: IncomingMessage, now: number): Visit {
    const q = url.indexOf('?');
    const ua = req.headers['user-agent'] ?? '';
    let address: string | undefined;
    const clientIp = () => {
      address ??= clientAddress(req, this.trust);
      return address;
    };
    return {
      now,
      query: q === -1 ? '' : url.slice(q + 1),
      agent: () => this.agent(ua),
      languages: () => this.languages(req.headers['accept-language'] ?? ''),
      country: () => this.country(req, clientIp()),
      ip: () => this.address(clientIp()),
      bucket: () => stickyBucket(clientIp(), ua, code),
    };
  }

  private languages(header: string): readonly string[] {
    let l = this.languageLists.get(header);
    if (l === undefined) {
      l = acceptedLanguages(header);
      if (this.languageLists.size >= AGENT_CACHE_SIZE) this.languageLists.clear();
      this.languageLists.set(header, l);
    }
    return l;
  }

  private address(ip: string): ReturnType<typeof parseIp> {
    let a = this.addresses.get(ip);
    if (a === undefined) {
      a = parseIp(ip.replace(/^::ffff:(?=\d+\.)/i, ''));
      if (this.addresses.size >= AGENT_CACHE_SIZE) this.addresses.clear();
      this.addresses.set(ip, a);
    }
    return a;
  }

  private agent(ua: string): Agent {
    let a = this.agents.get(ua);
    if (a === undefined) {
      a = parseAgent(ua);
      // A full cache starts over: cheaper than LRU bookkeeping, and real traffic refills it fast.
      if (this.agents.size >= AGENT_CACHE_SIZE) this.agents.clear();
      this.agents.set(ua, a);
    }
    return a;
  }

  /** The click's own country source (analytics/country.ts), so a rule and the stats agree. */
  private country(req: IncomingMessage, ip: string): string | null {
    const fromHeader = headerCountry(req.headers, this.countryHeader);
    return fromHeader !== undefined ? fromHeader : (geoip().lookup(ip)?.country ?? null);
  }
}

/** 0-99 from the visitor (address and agent) and the link: the same visitor lands in the same share. */
export function stickyBucket(ip: string, ua: string, code: string): number {
  let h = 0x811c9dc5;
  const text = `${ip}\u0000${ua}\u0000${code}`;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // FNV's low bits mix poorly: fold the high half in first.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return (h >>> 0) % 100;
}
