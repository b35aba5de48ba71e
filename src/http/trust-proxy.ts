// HOP_TRUST_PROXY as a test of a peer address: null (believe no proxy), every peer, or the
// addresses and ranges listed. Shared by click enrichment and redirect rules, which both need the
// client's own address behind a balancer.
import type { IncomingMessage } from 'node:http';
import proxyAddr from '@fastify/proxy-addr';

export type TrustProxy = ((addr: string, i: number) => boolean) | null;

export function compileTrust(trustProxy: string | boolean): TrustProxy {
  if (trustProxy === false) return null;
  if (trustProxy === true) return () => true;
  return proxyAddr.compile(trustProxy.split(',').map((s) => s.trim()));
}

/** The client's address: the peer's, or what the trusted proxies in front say it is. */
export function clientAddress(req: IncomingMessage, trust: TrustProxy): string {
  return trust === null ? (req.socket.remoteAddress ?? '') : proxyAddr(req, trust);
}
