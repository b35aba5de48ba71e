// Moves connections off a primary that Sentinel has replaced while it still runs (a switchover:
// SENTINEL FAILOVER, or a failover while the old primary was only cut off). Such a primary goes on
// taking writes until Sentinel turns it into a replica, seconds later, and what it took then is lost.
// One watch per process and set of Sentinels hears `+switch-master` and makes every ready connection
// reconnect, which asks the Sentinels again. (ioredis's own failoverDetector does the same, but when
// the message arrives while a client is between connections it ends that client for good.) A client
// that asked just before the switch and connects just after it still lands on the old primary, until
// Sentinel demotes that one and closes its clients.
import { Redis } from 'ioredis';
import type { RedisTarget } from '../config.ts';

type SentinelTarget = Extract<RedisTarget, { kind: 'sentinel' }>;

interface Watch {
  readonly subscribers: Redis[];
  readonly clients: Set<Redis>;
  /** host:port of the primary, as the last +switch-master named it (each Sentinel announces it). */
  primary: string | null;
}

const watches = new Map<string, Watch>();

/** Until `client` ends: reconnects it when the Sentinels switch `target.name` to another server. */
export function followSwitches(target: SentinelTarget, client: Redis): void {
  const key = `${target.name}@${target.sentinels.map((s) => `${s.host}:${s.port}`).join(',')}`;
  let watch = watches.get(key);
  if (watch === undefined) {
    watch = open(target);
    watches.set(key, watch);
  }
  const w = watch;
  w.clients.add(client);
  client.once('end', () => {
    w.clients.delete(client);
    if (w.clients.size > 0) return;
    for (const s of w.subscribers) s.disconnect();
    watches.delete(key);
  });
}

function open(target: SentinelTarget): Watch {
  const watch: Watch = { subscribers: [], clients: new Set(), primary: null };
  for (const s of target.sentinels) {
    const sub = new Redis({
      host: s.host,
      port: s.port,
      connectionName: 'hop-sentinel-watch',
      retryStrategy: (times) => Math.min(100 * times, 2_000),
      maxRetriesPerRequest: null,
    });
    sub.on('error', () => {});
    sub.on('message', (_channel: string, message: string) => {
      // <name> <old ip> <old port> <new ip> <new port>
      const [name, , , ip, port] = message.split(' ');
      if (name !== target.name || ip === undefined || port === undefined) return;
      const next = `${ip}:${port}`;
      if (next === watch.primary) return; // the other Sentinels announcing the same switch
      watch.primary = next;
      // Only ready ones: a client between connections asks the Sentinels anyway.
      for (const c of watch.clients) if (c.status === 'ready') c.disconnect(true);
    });
    sub.subscribe('+switch-master').catch(() => {});
    watch.subscribers.push(sub);
  }
  return watch;
}
