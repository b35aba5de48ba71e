// The redis-failover scenario (issue #19): clicks lost when the Redis primary dies and Sentinel
// promotes its replica. Redis replicates asynchronously, so an append the primary acknowledged but
// had not yet sent to the replica dies with it; Hop's mitigation waits for a replica after each append
// pass (WAIT 1, HOP_CLICK_STREAM_REPLICA_WAIT_MS) and appends again what none confirmed.
// Each trial: a fresh Redis primary + replica + three Sentinels and one Hop (click stream on) on one
// PostgreSQL primary; closed-loop redirects of new links; the primary SIGKILLed mid-load (in the
// `lagging` variant with its replica cut off --lag-ms before, as when a primary's host dies while its
// replica lags or its link is down); load until some seconds after the failover. The
// `hop worker` starts only then: every click appended before waits in the stream, as a backlog does
// while workers restart or fall behind (an entry a worker has already written is safe whatever Redis
// loses). Once the worker has written all it will: clicks answered (302) vs clicks counted. Mitigation
// off and on alternate in one run, every variant in every round.
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import {
  killRedisServer,
  type RedisServers,
  redisPrimary,
  redisUnavailable,
  startRedis,
  stopRedis,
  waitRedisFailover,
} from '../../scripts/cluster/redis-servers.ts';
import { signal } from '../../scripts/lib/processes.ts';
import { makeTempDir, removeDir, startHop } from '../lib/hop-process.ts';
import {
  encodeRequest,
  type HttpConnection,
  openConnections,
  requestOnce,
  type Target,
} from '../lib/http-client.ts';
import { randomApiKey } from '../lib/links.ts';
import { fmtInt, newReport, type ScenarioReport } from '../lib/report.ts';
import { type BenchContext, Cleanup, oneShardCluster } from './common.ts';

export interface RedisFailoverOptions {
  rounds: number;
  /** Load before the kill, and again after the failover. */
  durationS: number;
  /** The `lagging` variant: how long the replica is cut off before the primary dies. */
  lagMs: number;
  links: number;
}

type Variant = 'kill' | 'lagging';
const VARIANTS: readonly Variant[] = ['kill', 'lagging'];
/** Hop's default under Sentinel. */
const WAIT_ON_MS = 500;
/** Counts that have not moved for this long are final (the worker reclaims after 1.5 s). */
const SETTLED_MS = 5_000;

interface Trial {
  round: number;
  variant: Variant;
  mitigation: boolean;
  sent: number;
  counted: number;
  lost: number;
  /** Counted beyond what was answered: would mean a click counted twice. */
  extra: number;
  /** Clicks Hop itself dropped (buffer full), not Redis's doing. */
  dropped: number;
  failoverS: number;
  errors: number;
}

export async function runRedisFailover(ctx: BenchContext, o: RedisFailoverOptions): Promise<ScenarioReport> {
  const report = newReport('redis-failover', {
    rounds: o.rounds,
    durationS: o.durationS,
    lagMs: o.lagMs,
    links: o.links,
    connections: ctx.connections,
    waitOnMs: WAIT_ON_MS,
  });
  const why = redisUnavailable('sentinel');
  if (why !== null) {
    report.notes.push(`not run: ${why}`);
    return report;
  }
  const cleanup = new Cleanup();
  const trials: Trial[] = [];
  try {
    const bc = await oneShardCluster(ctx, cleanup);
    const dataDir = await makeTempDir('hop-bench-redis-failover');
    cleanup.add(() => removeDir(dataDir));
    const apiKey = randomApiKey();
    for (let round = 1; round <= o.rounds; round++) {
      for (const variant of VARIANTS) {
        // Alternate which goes first, so neither always runs on a warmer machine.
        const order = (round + VARIANTS.indexOf(variant)) % 2 === 0 ? [false, true] : [true, false];
        for (const mitigation of order) {
          const t = await trial(ctx, o, { urls: bc.urls, dataDir, apiKey }, round, variant, mitigation);
          ctx.log(
            `round ${round} ${variant} mitigation ${mitigation ? 'on' : 'off'}: ${t.sent} answered, ` +
              `${t.counted} counted, ${t.lost} lost (failover ${t.failoverS.toFixed(1)} s)`,
          );
          trials.push(t);
        }
      }
    }
  } finally {
    await cleanup.run();
  }
  report.data.trials = trials;
  report.tables.push({
    title: 'Clicks across a Redis primary SIGKILL (Sentinel failover), per trial',
    head: [
      'round',
      'variant',
      'mitigation',
      'answered',
      'counted',
      'lost',
      'counted twice',
      'Hop dropped',
      'failover s',
      'non-302',
    ],
    rows: trials.map((t) => [
      String(t.round),
      t.variant,
      t.mitigation ? `on (WAIT 1 ${WAIT_ON_MS})` : 'off',
      fmtInt(t.sent),
      fmtInt(t.counted),
      fmtInt(t.lost),
      fmtInt(t.extra),
      fmtInt(t.dropped),
      t.failoverS.toFixed(1),
      fmtInt(t.errors),
    ]),
    align: 'rllrrrrrrr',
    note:
      `kill: the primary SIGKILLed under load. lagging: its replica stopped and cut off (CLIENT KILL TYPE ` +
      `replica) ${o.lagMs} ms before the kill, resumed after it. The worker starts after the failover. ` +
      'lost = answered − counted.',
  });
  const sum = (f: (t: Trial) => boolean, k: 'sent' | 'lost' | 'extra') =>
    trials.filter(f).reduce((n, t) => n + t[k], 0);
  report.tables.push({
    title: 'Clicks lost, all rounds',
    head: ['variant', 'mitigation', 'trials', 'answered', 'lost', 'lost per trial', 'counted twice'],
    rows: VARIANTS.flatMap((v) =>
      [false, true].map((m) => {
        const f = (t: Trial) => t.variant === v && t.mitigation === m;
        const n = trials.filter(f).length;
        return [
          v,
          m ? 'on' : 'off',
          String(n),
          fmtInt(sum(f, 'sent')),
          fmtInt(sum(f, 'lost')),
          n === 0 ? '-' : (sum(f, 'lost') / n).toFixed(1),
          fmtInt(sum(f, 'extra')),
        ];
      }),
    ),
    align: 'llrrrrr',
  });
  return report;
}

interface Setup {
  urls: string;
  dataDir: string;
  apiKey: string;
}

async function trial(
  ctx: BenchContext,
  o: RedisFailoverOptions,
  setup: Setup,
  round: number,
  variant: Variant,
  mitigation: boolean,
): Promise<Trial> {
  const cleanup = new Cleanup();
  try {
    const redis = await startRedis({ mode: 'sentinel' });
    cleanup.add(() => stopRedis(redis));
    const env = {
      HOP_DATABASE_URLS: setup.urls,
      HOP_REDIS_URL: redis.url,
      HOP_CLICK_PIPELINE: 'stream',
      HOP_CLICK_STREAM_REPLICA_WAIT_MS: mitigation ? String(WAIT_ON_MS) : '0',
      HOP_WORKER_CLAIM_IDLE_MS: '1500',
      ...ctx.hopEnv,
    };
    const hopSetup = { dataDir: setup.dataDir, apiKey: setup.apiKey, env, verbose: ctx.verbose };
    const hop = await startHop(hopSetup);
    cleanup.add(() => hop.stop());
    const codes: string[] = [];
    for (let i = 0; i < o.links; i++)
      codes.push(await createLink(hop.target, setup.apiKey, `${round}-${variant}-${i}`));

    const load = closedLoop(hop.target, codes, ctx.connections);
    await sleep(o.durationS * 1000);
    const failoverS = await failOver(redis, variant, o.lagMs);
    await sleep(o.durationS * 1000);
    const { sent, errors } = await load.stop();
    const worker = await startHop(hopSetup, 60_000, 'worker');
    cleanup.add(() => worker.stop());

    const answered = [...sent.values()].reduce((a, b) => a + b, 0);
    const counted = await settledCount(hop.target, setup.apiKey, codes);
    const dropped = await metric(hop.target, 'hop_clicks_dropped_total');
    return {
      round,
      variant,
      mitigation,
      sent: answered,
      counted,
      lost: Math.max(0, answered - counted),
      extra: Math.max(0, counted - answered),
      dropped,
      failoverS,
      errors,
    };
  } finally {
    await cleanup.run();
  }
}

/**
 * Kills the primary; seconds until the replica is promoted. A SIGKILLed process leaves what it wrote
 * to its sockets for the kernel to deliver, so on one machine its replica still gets all of it. In the
 * lagging variant the replica is stopped and cut off first (CLIENT KILL TYPE replica on the primary),
 * so it is `lagMs` behind when the primary dies, as when a primary's host fails while its replica is
 * behind or its link is down.
 */
async function failOver(redis: RedisServers, variant: Variant, lagMs: number): Promise<number> {
  const primary = await redisPrimary(redis);
  const replica = redis.servers.find((s) => s.role === 'redis-replica' && s.pid !== null)!;
  if (variant === 'lagging') {
    const admin = new Redis({ host: '127.0.0.1', port: primary.port, lazyConnect: true });
    try {
      await admin.connect();
      signal(replica.pid!, 'SIGSTOP');
      await admin.call('CLIENT', 'KILL', 'TYPE', 'replica');
    } finally {
      admin.disconnect();
    }
    await sleep(lagMs);
  }
  const killed = performance.now();
  try {
    await killRedisServer(redis, primary.name);
  } finally {
    if (variant === 'lagging') signal(replica.pid!, 'SIGCONT');
  }
  await waitRedisFailover(redis, primary.name, 30_000);
  return (performance.now() - killed) / 1000;
}

/** Redirects of `codes` round-robin on `connections` keep-alive connections until stopped; 302s per code. */
function closedLoop(target: Target, codes: readonly string[], connections: number) {
  const sent = new Map<string, number>();
  let errors = 0;
  let running = true;
  let next = 0;
  const lane = (conn: HttpConnection) =>
    new Promise<void>((resolve) => {
      const go = () => {
        if (!running) return resolve();
        const code = codes[next++ % codes.length]!;
        conn.send(
          encodeRequest({ method: 'GET', path: `/${code}` }, conn.hostHeader),
          (err, res) => {
            if (err === null && res?.status === 302) sent.set(code, (sent.get(code) ?? 0) + 1);
            else errors++;
            if (err !== null) setTimeout(go, 50);
            else go();
          },
          performance.now(),
        );
      };
      go();
    });
  const lanes = openConnections(target, connections).then((conns) =>
    Promise.all(conns.map(lane)).then(() => conns),
  );
  return {
    async stop() {
      running = false;
      for (const c of await lanes) c.close();
      return { sent, errors };
    },
  };
}

async function createLink(target: Target, apiKey: string, name: string): Promise<string> {
  const res = await requestOnce(target, {
    method: 'POST',
    path: '/api/v1/links',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      url: `https://failover.example/${createHash('sha1').update(name).digest('hex')}`,
    }),
  });
  if (res.status !== 201) throw new Error(`create answered ${res.status}: ${res.body?.toString()}`);
  return (JSON.parse(res.body!.toString()) as { code: string }).code;
}

/** The links' clicks once the count has stopped moving (the worker is done with what it will write). */
async function settledCount(target: Target, apiKey: string, codes: readonly string[]): Promise<number> {
  let last = -1;
  let since = performance.now();
  const deadline = performance.now() + 120_000;
  for (;;) {
    let total = 0;
    for (const code of codes) {
      const res = await requestOnce(target, {
        method: 'GET',
        path: `/api/v1/links/${code}`,
        headers: { authorization: `Bearer ${apiKey}` },
      });
      total += (JSON.parse(res.body!.toString()) as { clicks: number }).clicks;
    }
    if (total !== last) {
      last = total;
      since = performance.now();
    } else if (performance.now() - since >= SETTLED_MS || performance.now() > deadline) return total;
    await sleep(500);
  }
}

async function metric(target: Target, name: string): Promise<number> {
  const res = await requestOnce(target, { method: 'GET', path: '/metrics' });
  const line = res
    .body!.toString()
    .split('\n')
    .find((l) => l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.slice(name.length + 1));
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
