// Turns a redirect's request into a click event: referrer host, country, browser, OS, device,
// bot flag and a salted daily visitor hash. The raw IP is used for the hash and the country
// lookup and then forgotten (DESIGN §7). User-agent answers are cached: parsing one costs far
// more than a cached redirect, and real traffic repeats a small set of them.
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import proxyAddr from '@fastify/proxy-addr';
import Bowser from 'bowser';
import { isbot } from 'isbot';
import { type ClickEvent, splitClickCode } from '../domain/clicks.ts';
import { uuid7 } from '../events/uuid7.ts';
import { compileTrust, type TrustProxy } from '../http/trust-proxy.ts';
import { geoip, headerCountry } from './country.ts';
import type { VisitorSalts } from './visitor-salts.ts';

/** What enrichment reads of a request: an IncomingMessage, or its fields carried to another thread. */
export interface ClickRequest {
  readonly headers: IncomingHttpHeaders;
  readonly socket: { readonly remoteAddress?: string | undefined };
}

interface Agent {
  readonly browser: string | null;
  readonly os: string | null;
  readonly device: string | null;
  readonly bot: boolean;
  /** Recent clients with this user agent, by IP: a visitor clicking again costs no hash or lookup. */
  clients: Map<string, Client>;
  /** The salt those clients' hashes were made with. */
  salt: string;
}

export interface ClickEnricherOptions {
  /** Proxies whose X-Forwarded-For is believed: false, true (all) or addresses/CIDRs. */
  readonly trustProxy: string | boolean;
  /** A CDN's country header (e.g. cf-ipcountry), or null to use the bundled GeoIP database. */
  readonly countryHeader: string | null;
}

const AGENT_CACHE_SIZE = 4096;
const MAX_PEERS = 1024;
// Remembered clients across all agents, at most (a few MB).
const CLIENT_CACHE_SIZE = 50_000;

interface Client {
  readonly visitor: string;
  readonly geoCountry: string | null;
}
/** A referer header's host (what clicks keep of it), or null. */
export function parseReferrerHost(referer: string): string | null {
  try {
    return new URL(referer).hostname || null;
  } catch {
    return null;
  }
}

// Parsing a URL costs more than the rest of a click's enrichment; real traffic repeats a few
// thousand referrers. A full cache starts over (cheaper than LRU bookkeeping).
const REFERRER_CACHE_SIZE = 4096;
const referrerHosts = new Map<string, string | null>();

function referrerHost(referer: string | undefined): string | null {
  if (referer === undefined || referer === '') return null;
  let host = referrerHosts.get(referer);
  if (host === undefined) {
    host = parseReferrerHost(referer);
    if (referrerHosts.size >= REFERRER_CACHE_SIZE) referrerHosts.clear();
    referrerHosts.set(referer, host);
  }
  return host;
}

/** What clicks keep of a user agent: browser, OS and device (named as Bowser names them) and the bot flag. */
export function describeAgent(ua: string): Pick<ClickEvent, 'browser' | 'os' | 'device' | 'bot'> {
  if (ua === '') return { browser: null, os: null, device: null, bot: false };
  const bot = isbot(ua);
  const p = Bowser.parse(ua);
  return {
    browser: p.browser.name || null,
    os: p.os.name || null,
    device: bot ? 'bot' : p.platform.type || null,
    bot,
  };
}

function parseAgent(ua: string): Agent {
  return { ...describeAgent(ua), clients: new Map(), salt: '' };
}

export class ClickEnricher {
  private readonly agents = new Map<string, Agent>();
  private clientCount = 0;
  private readonly peers = new Map<string, boolean>();
  private readonly trust: TrustProxy;
  private readonly countryHeader: string | null;
  private readonly salts: VisitorSalts;
  private readonly geoip = geoip();

  constructor(opts: ClickEnricherOptions, salts: VisitorSalts) {
    this.trust = compileTrust(opts.trustProxy);
    this.countryHeader = opts.countryHeader?.toLowerCase() ?? null;
    this.salts = salts;
  }

  private agent(ua: string): Agent {
    let a = this.agents.get(ua);
    if (a === undefined) {
      a = parseAgent(ua);
      // A full cache starts over: cheaper than LRU bookkeeping, and real traffic refills it fast.
      if (this.agents.size >= AGENT_CACHE_SIZE) {
        this.agents.clear();
        this.clientCount = 0;
      }
      this.agents.set(ua, a);
    }
    return a;
  }

  private clientIp(req: ClickRequest): string {
    const peer = req.socket.remoteAddress ?? '';
    if (this.trust === null) return peer;
    // The usual case, one proxy in front: a trusted peer naming one address. proxy-addr answers
    // the same, but parsing and matching addresses on every click was half of enrichment's cost.
    const forwarded = req.headers['x-forwarded-for'];
    if (typeof forwarded === 'string' && !forwarded.includes(',') && this.trusted(peer)) {
      const ip = forwarded.trim();
      if (ip !== '') return ip;
    }
    return proxyAddr(req as Parameters<typeof proxyAddr>[0], this.trust);
  }

  /** Whether the proxy at this address is believed (peers are few: their answers are kept). */
  private trusted(peer: string): boolean {
    let t = this.peers.get(peer);
    if (t === undefined) {
      t = this.trust?.(peer, 0) ?? false;
      if (this.peers.size >= MAX_PEERS) this.peers.clear();
      this.peers.set(peer, t);
    }
    return t;
  }

  /** The visitor hash and GeoIP country of (IP, user agent) under the day's salt, remembered. */
  private client(agent: Agent, ip: string, ua: string, at: number): Client {
    const salt = this.salts.saltFor(at);
    if (this.clientCount >= CLIENT_CACHE_SIZE) {
      // Full: start over (cheaper than LRU bookkeeping; real traffic refills it fast).
      for (const a of this.agents.values()) a.clients = new Map();
      this.clientCount = 0;
    }
    if (salt !== agent.salt) {
      // A new day's salt makes every remembered hash stale.
      this.clientCount -= agent.clients.size;
      agent.clients = new Map();
      agent.salt = salt;
    }
    let c = agent.clients.get(ip);
    if (c === undefined) {
      c = {
        visitor: createHash('sha256').update(`${salt}\u0000${ip}\u0000${ua}`).digest('hex').slice(0, 16),
        geoCountry: this.geoip.lookup(ip)?.country ?? null,
      };
      agent.clients.set(ip, c);
      this.clientCount++;
    }
    return c;
  }

  /** `handed`: the link key, or the link key and matched rule (clickCode). */
  // Handed click codes split once each (a link with rules hands the same few strings again and again).
  private readonly handed = new Map<string, { key: string; rule: number | undefined }>();
  private split(handed: string): { key: string; rule: number | undefined } {
    if (handed.indexOf('#') === -1) return { key: handed, rule: undefined };
    let s = this.handed.get(handed);
    if (s === undefined) {
      if (this.handed.size >= 10_000) this.handed.clear();
      s = splitClickCode(handed);
      this.handed.set(handed, s);
    }
    return s;
  }

  eventFor(handed: string, req: ClickRequest, at: number = Date.now()): ClickEvent {
    const { key: code, rule } = this.split(handed);
    const ua = req.headers['user-agent'] ?? '';
    const agent = this.agent(ua);
    const client = this.client(agent, this.clientIp(req), ua, at);
    const fromHeader = headerCountry(req.headers, this.countryHeader);
    return {
      id: uuid7(at),
      code,
      at,
      referrerHost: referrerHost(req.headers.referer),
      country: fromHeader === undefined ? client.geoCountry : fromHeader,
      browser: agent.browser,
      os: agent.os,
      device: agent.device,
      bot: agent.bot,
      visitor: client.visitor,
      ...(rule === undefined ? {} : { rule }),
      ...(ua === '' ? {} : { userAgent: ua }),
      ...(req.headers.referer === undefined || req.headers.referer === ''
        ? {}
        : { referer: req.headers.referer }),
    };
  }
}
