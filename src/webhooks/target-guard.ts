// The I/O half of keeping webhooks out of Hop's own network (the rules are domain/webhook-targets):
// a subscription's host is resolved once so a name pointing inside is refused at once, and every
// delivery is dialled through a lookup that checks the address actually dialled, because a name
// may resolve elsewhere by then (DNS rebinding). Redirects from a target are never followed.
import { promises as dns, type LookupAddress } from 'node:dns';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import { HopError } from '../domain/errors.ts';
import { refuseAddress, type WebhookAllowList, webhookHostVerdict } from '../domain/webhook-targets.ts';
import type { SendDelivery } from './webhook-dispatcher.ts';

/** Every address of a host name. */
export type ResolveHost = (host: string) => Promise<LookupAddress[]>;

export const resolveWithDns: ResolveHost = (host) => dns.lookup(host, { all: true, verbatim: true });

/** How long a subscription waits for its host to resolve before taking it unchecked. */
const SUBSCRIBE_RESOLVE_MS = 2_000;

class TargetRefused extends Error {
  override name = 'TargetRefused';
  readonly code = 'EWEBHOOKTARGET';
}

export class WebhookTargetGuard {
  private readonly allow: WebhookAllowList;
  private readonly resolve: ResolveHost;
  private readonly agents: { http: HttpAgent; https: HttpsAgent };

  constructor(allow: WebhookAllowList, resolve: ResolveHost = resolveWithDns) {
    this.allow = allow;
    this.resolve = resolve;
    // Connections of their own, so every socket a delivery uses was dialled through the check.
    const opts = { keepAlive: true, lookup: this.lookup };
    this.agents = { http: new HttpAgent(opts), https: new HttpsAgent(opts) };
  }

  /**
   * Refuses (422 webhook_target_forbidden) a target that is, or now resolves to, an address
   * inside. A name that does not resolve in time is taken: DNS may be down for a moment, and the
   * check at connect time still stands between every delivery and the network.
   */
  async checkSubscription(url: string): Promise<void> {
    const verdict = webhookHostVerdict(new URL(url).hostname, this.allow);
    if (verdict.kind === 'forbidden') throw forbidden(verdict.reason);
    if (verdict.kind === 'allowed') return;
    let timer: NodeJS.Timeout | undefined;
    const addresses = await Promise.race([
      this.resolve(verdict.host).catch(() => []),
      new Promise<LookupAddress[]>((r) => {
        timer = setTimeout(() => r([]), SUBSCRIBE_RESOLVE_MS);
      }),
    ]).finally(() => clearTimeout(timer));
    for (const a of addresses) {
      const why = refuseAddress(a.address, this.allow);
      if (why !== null) throw forbidden(`${verdict.host} resolves to ${why.replace(/^\S+ is /, '')}`);
    }
  }

  /** POSTs a delivery: the status, or a throw for no answer or a refused target. */
  readonly send: SendDelivery = (url, headers, body, timeoutMs) =>
    new Promise((resolve, reject) => {
      const target = new URL(url);
      // IP literals are dialled without a lookup, so they are judged here.
      const verdict = webhookHostVerdict(target.hostname, this.allow);
      if (verdict.kind === 'forbidden') {
        reject(new TargetRefused(`webhook target refused: ${verdict.reason}`));
        return;
      }
      const https = target.protocol === 'https:';
      const req = (https ? httpsRequest : httpRequest)(
        target,
        {
          method: 'POST',
          headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
          agent: https ? this.agents.https : this.agents.http,
          signal: AbortSignal.timeout(timeoutMs),
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end(body);
    });

  /** Drops idle connections (at shutdown). */
  close(): void {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  /** net's lookup, refusing the whole name if any address it gives is not allowed. */
  private readonly lookup: LookupFunction = (hostname, options, callback) => {
    const host = hostname.toLowerCase().replace(/\.$/, '');
    this.resolve(host).then(
      (found) => {
        const wanted = options.family === 4 || options.family === 6 ? options.family : 0;
        const addresses = found.filter((a) => wanted === 0 || a.family === wanted);
        if (!this.allow.hosts.has(host)) {
          for (const a of found) {
            const why = refuseAddress(a.address, this.allow);
            if (why !== null) {
              callback(new TargetRefused(`webhook target refused: ${host} resolves to ${why}`), '', 0);
              return;
            }
          }
        }
        const first = addresses[0];
        if (first === undefined) {
          const err = Object.assign(new Error(`${host} has no address`), { code: 'ENOTFOUND' });
          callback(err, '', 0);
        } else if (options.all === true) {
          (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
        } else {
          callback(null, first.address, first.family);
        }
      },
      (err: NodeJS.ErrnoException) => callback(err, '', 0),
    );
  };
}

function forbidden(reason: string): HopError {
  return new HopError(
    'webhook_target_forbidden',
    `Webhooks may only send to public addresses: ${reason}. An operator can allow it with HOP_WEBHOOK_ALLOW_TARGETS.`,
    { extra: { field: 'url' } },
  );
}
