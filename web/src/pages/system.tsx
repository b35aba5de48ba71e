// How Hop is doing, at a glance: request rate and API p99 (from successive snapshots of its own
// counters), cache hit ratio, click-queue backlog, and the scaled-out parts ("not in use" on the
// embedded default).
import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.ts';
import { TrendChart } from '../components/charts.tsx';
import { formatNumber } from '../format.ts';

interface Part {
  inUse: boolean;
}

interface SystemSnapshot {
  at: string;
  uptimeSeconds: number;
  store: { kind: string };
  redirects: number;
  apiRequests: number;
  apiLatency: { le: number | null; count: number }[];
  apiP99SecondsSinceStart: number | null;
  cache: Part & { hits: number; misses: number; negative: number };
  clickQueue: Part & {
    recorded: number;
    written: number;
    dropped: number;
    batchFailures: number;
    queued: number;
    flushMs: number;
  };
  pool: Part & { servers?: { name: string; inUse: number; idle: number; waiting: number; max: number }[] };
  replicas: Part & {
    servers?: {
      name: string;
      up: boolean;
      inRotation: boolean;
      lagMs: number | null;
      lagBytes: number | null;
    }[];
  };
  shards: Part & { mapVersion?: number; shards?: { shard: number; buckets: number; primaryUp: boolean }[] };
}

/** What happened between two successive snapshots, per second or as a fraction. */
interface Sample {
  /** When the later snapshot was taken (server clock, ms). */
  t: number;
  redirectRate: number;
  apiRate: number;
  p99: number | null;
  /** Null when the cache was not asked in the interval. */
  hitRatio: number | null;
  queued: number;
  writtenRate: number;
  droppedRate: number;
}

const POLL_MS = 2000;
const KEEP = 60;
const SPAN_MS = KEEP * POLL_MS;

/** p99 of the requests between two snapshots, interpolated within its latency bucket. */
function p99Between(a: SystemSnapshot, b: SystemSnapshot): number | null {
  const delta = b.apiLatency.map((x, i) => ({ le: x.le, count: x.count - (a.apiLatency[i]?.count ?? 0) }));
  const all = delta.at(-1)?.count ?? 0;
  if (all <= 0) return null;
  const rank = 0.99 * all;
  let prevLe = 0;
  let prevCount = 0;
  for (const d of delta) {
    if (d.count >= rank) {
      if (d.le === null) return prevLe;
      const n = d.count - prevCount;
      return n <= 0 ? d.le : prevLe + ((d.le - prevLe) * (rank - prevCount)) / n;
    }
    prevLe = d.le ?? prevLe;
    prevCount = d.count;
  }
  return prevLe;
}

function sampleBetween(a: SystemSnapshot, b: SystemSnapshot): Sample {
  const t = Date.parse(b.at);
  const secs = Math.max(0.001, (t - Date.parse(a.at)) / 1000);
  const hits = b.cache.hits + b.cache.negative - a.cache.hits - a.cache.negative;
  const lookups = hits + b.cache.misses - a.cache.misses;
  return {
    t,
    redirectRate: (b.redirects - a.redirects) / secs,
    apiRate: (b.apiRequests - a.apiRequests) / secs,
    p99: p99Between(a, b),
    hitRatio: lookups > 0 ? hits / lookups : null,
    queued: b.clickQueue.queued,
    writtenRate: (b.clickQueue.written - a.clickQueue.written) / secs,
    droppedRate: (b.clickQueue.dropped - a.clickQueue.dropped) / secs,
  };
}

const ms = (s: number | null) => (s === null ? '—' : `${formatNumber(s * 1000, s < 0.01 ? 1 : 0)} ms`);
const perSecond = (n: number) => formatNumber(n, n < 10 ? 1 : 0);
const percent = (r: number | null) => (r === null ? '—' : `${formatNumber(r * 100, r < 1 ? 1 : 0)} %`);

export function SystemPage() {
  const [last, setLast] = useState<SystemSnapshot | null>(null);
  const [samples, setSamples] = useState<Sample[]>([]);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let prev: SystemSnapshot | null = null;
    let stopped = false;
    const poll = async () => {
      try {
        const s = await api<SystemSnapshot>('GET', '/system');
        if (stopped) return;
        // A restarted server starts its counters again: begin a fresh picture rather than draw negatives.
        if (prev !== null && s.uptimeSeconds + 1 < prev.uptimeSeconds) setSamples([]);
        else if (prev !== null) {
          const sample = sampleBetween(prev, s);
          setSamples((old) => [...old.filter((o) => sample.t - o.t <= SPAN_MS), sample].slice(-KEEP - 1));
        }
        prev = s;
        setLast(s);
        setError(null);
      } catch (err) {
        if (!stopped) setError(err instanceof Error ? err.message : String(err));
      }
    };
    void poll();
    // A second look soon after the first, so rates show without waiting a whole period.
    const soon = setTimeout(poll, 500);
    const timer = setInterval(poll, POLL_MS);
    return () => {
      stopped = true;
      clearTimeout(soon);
      clearInterval(timer);
    };
  }, []);

  const latest = samples.at(-1);
  const times = samples.map((s) => s.t);
  const cacheTotal = last === null ? 0 : last.cache.hits + last.cache.misses + last.cache.negative;
  const hitRatioSinceStart =
    last === null || cacheTotal === 0 ? null : (last.cache.hits + last.cache.negative) / cacheTotal;
  const trend = (name: string, pick: (s: Sample) => number | null) => ({ name, values: samples.map(pick) });
  return (
    <main id="main">
      <h1 tabIndex={-1}>System</h1>
      {error !== null && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {last === null ? (
        <p class="muted">Loading…</p>
      ) : (
        <>
          <div class="tiles wide">
            <Tile
              title="Requests per second"
              value={latest === undefined ? '…' : perSecond(latest.redirectRate + latest.apiRate)}
            >
              <TrendChart
                times={times}
                spanMs={SPAN_MS}
                trends={[trend('requests per second', (s) => s.redirectRate + s.apiRate)]}
                label="Requests per second, redirects and API"
                format={perSecond}
              />
              <p class="muted">
                {latest === undefined
                  ? `Redirects and API requests, measured every ${POLL_MS / 1000} s.`
                  : `${perSecond(latest.redirectRate)} redirects/s and ${perSecond(latest.apiRate)} API requests/s, measured every ${POLL_MS / 1000} s.`}
              </p>
            </Tile>
            <Tile title="API latency p99" value={ms(latest?.p99 ?? last.apiP99SecondsSinceStart)}>
              <TrendChart
                times={times}
                spanMs={SPAN_MS}
                trends={[trend('p99', (s) => s.p99)]}
                label="API latency p99 per interval"
                format={ms}
              />
              <p class="muted">Since start: {ms(last.apiP99SecondsSinceStart)}</p>
            </Tile>
            {last.cache.inUse ? (
              <Tile title="Cache hit ratio" value={percent(latest?.hitRatio ?? hitRatioSinceStart)}>
                <TrendChart
                  times={times}
                  spanMs={SPAN_MS}
                  trends={[trend('hit ratio', (s) => s.hitRatio)]}
                  label="Cache hit ratio per interval"
                  format={percent}
                  ceiling={1}
                />
                <p class="muted">
                  Since start: {percent(hitRatioSinceStart)} of {formatNumber(cacheTotal)} lookups (
                  {formatNumber(last.cache.misses)} misses). Gaps: no lookups.
                </p>
              </Tile>
            ) : (
              <NotInUse title="Cache hit ratio" />
            )}
            {last.clickQueue.inUse ? (
              <Tile title="Click queue" value={`${formatNumber(last.clickQueue.queued)} waiting`}>
                <TrendChart
                  times={times}
                  spanMs={SPAN_MS}
                  trends={[trend('waiting', (s) => s.queued)]}
                  label="Clicks waiting to be written"
                  format={(n) => formatNumber(n)}
                />
                <TrendChart
                  times={times}
                  spanMs={SPAN_MS}
                  trends={[
                    trend('written per second', (s) => s.writtenRate),
                    trend('dropped per second', (s) => s.droppedRate),
                  ]}
                  label="Clicks written and dropped per second"
                  format={perSecond}
                />
                <p class="muted">
                  Written every {formatNumber(last.clickQueue.flushMs)} ms · since start{' '}
                  {formatNumber(last.clickQueue.written)} written, {formatNumber(last.clickQueue.dropped)}{' '}
                  dropped
                  {last.clickQueue.batchFailures > 0 &&
                    `, ${formatNumber(last.clickQueue.batchFailures)} failed batches`}
                </p>
              </Tile>
            ) : (
              <NotInUse title="Click queue" />
            )}
          </div>
          <div class="tiles">
            <Tile title="Store" value={last.store.kind}>
              <p class="muted">Up {formatUptime(last.uptimeSeconds)}</p>
            </Tile>
            {last.pool.inUse ? <PoolTile pool={last.pool} /> : <NotInUse title="Store pool" />}
            {last.replicas.inUse ? (
              <ReplicaTile replicas={last.replicas} />
            ) : (
              <NotInUse title="Replica lag" />
            )}
            {last.shards.inUse ? <ShardTile shards={last.shards} /> : <NotInUse title="Shards" />}
          </div>
        </>
      )}
    </main>
  );
}

function PoolTile({ pool }: { pool: SystemSnapshot['pool'] }) {
  const servers = pool.servers ?? [];
  const busy = servers.reduce((n, s) => n + s.inUse, 0);
  const max = servers.reduce((n, s) => n + s.max, 0);
  const waiting = servers.reduce((n, s) => n + s.waiting, 0);
  return (
    <Tile title="Store pool" value={`${formatNumber(busy)} of ${formatNumber(max)} busy`}>
      <ul class="muted plain">
        {servers.map((s) => (
          <li key={s.name}>
            {s.name}: {formatNumber(s.inUse)} busy, {formatNumber(s.idle)} idle, {formatNumber(s.waiting)}{' '}
            waiting
          </li>
        ))}
      </ul>
      {waiting > 0 && <p class="muted">{formatNumber(waiting)} queries waiting for a connection</p>}
    </Tile>
  );
}

function ReplicaTile({ replicas }: { replicas: SystemSnapshot['replicas'] }) {
  const servers = replicas.servers ?? [];
  const lags = servers.flatMap((s) => (s.lagMs === null ? [] : [s.lagMs]));
  const worst = lags.length === 0 ? null : Math.max(...lags);
  return (
    <Tile title="Replica lag" value={worst === null ? '—' : `${formatNumber(worst)} ms`}>
      <ul class="muted plain">
        {servers.map((s) => (
          <li key={s.name}>
            {s.name}: {!s.up ? 'down' : s.inRotation ? 'serving reads' : 'out of rotation'}
            {s.lagMs !== null && `, ${formatNumber(s.lagMs)} ms behind`}
          </li>
        ))}
      </ul>
    </Tile>
  );
}

function ShardTile({ shards }: { shards: SystemSnapshot['shards'] }) {
  const list = shards.shards ?? [];
  return (
    <Tile title="Shards" value={`${formatNumber(list.length)}`}>
      <ul class="muted plain">
        {list.map((s) => (
          <li key={s.shard}>
            shard {s.shard}: {formatNumber(s.buckets)} buckets, primary {s.primaryUp ? 'up' : 'down'}
          </li>
        ))}
      </ul>
      <p class="muted">Shard map version {shards.mapVersion ?? '—'}</p>
    </Tile>
  );
}

function formatUptime(s: number): string {
  if (s < 120) return `${formatNumber(s)} s`;
  if (s < 7200) return `${formatNumber(s / 60)} min`;
  return `${formatNumber(s / 3600, 1)} h`;
}

function Tile({ title, value, children }: { title: string; value: string; children?: ComponentChildren }) {
  return (
    <section class="card tile" aria-label={title}>
      <h2>{title}</h2>
      <p class="big">{value}</p>
      {children}
    </section>
  );
}

function NotInUse({ title }: { title: string }) {
  return (
    <section class="card tile off" aria-label={title}>
      <h2>{title}</h2>
      <p class="big">Not in use</p>
      <p class="muted">The embedded default has no such part.</p>
    </section>
  );
}
