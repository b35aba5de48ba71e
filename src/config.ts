// One schema for every setting: flags > environment > defaults, validated at boot. A bad value
// stops the process with a message that names the setting. The README table mirrors this list.
import { availableParallelism } from 'node:os';
import { normalizeHostName } from './domain/url-policy.ts';
import { parseAllowList, type WebhookAllowList } from './domain/webhook-targets.ts';
import { type TracingSettings, tracingSettings } from './tracing/tracing-config.ts';

export interface Config {
  port: number;
  host: string;
  /** null keeps the embedded database in memory (tests, throwaway runs). */
  dataDir: string | null;
  /**
   * Embedded: the directory of the fsynced change log (null: none). Defaults to `changes` in the
   * data directory; a database in memory has none.
   */
  changeLog: string | null;
  /** The embedded database: its buffer pool (MB) and how V8 compiles its WASM. */
  dbBuffersMb: number;
  dbCompiler: 'baseline' | 'optimizing';
  publicUrl: string;
  initialApiKey: string | null;
  rateLimits: boolean;
  rateLimitApi: { perSecond: number; burst: number };
  rateLimitCreate: { perSecond: number; burst: number };
  rateLimitRedirect: { perSecond: number; burst: number } | null;
  codeLength: number;
  apiKeyCacheMs: number;
  cacheSize: number;
  cacheTtlMs: number;
  denyHosts: string[];
  clickFlushMs: number;
  clickBatchSize: number;
  clickBufferSize: number;
  clickFoldMs: number;
  clickFoldRows: number;
  clickRecording: boolean;
  clickRetentionDays: number;
  clickUpkeepMs: number;
  visitSplitMs: number;
  countryHeader: string | null;
  feedHeartbeatMs: number;
  shutdownTimeoutMs: number;
  drainDelayMs: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  trustProxy: string | boolean;
  /** null: generated once and kept in the data directory (random per process in memory). */
  sessionSecret: string | null;
  sessionTtlMs: number;
  /** null: / answers with the dashboard; otherwise / redirects here. */
  homeRedirect: string | null;
  strictHosts: boolean;
  domainRefreshMs: number;
  orphanFlushMs: number;
  /** null: the embedded database. Otherwise one entry per shard: its primary, then its replicas. */
  databaseUrls: { primary: string; replicas: string[] }[] | null;
  pgPoolSize: number;
  pgPoolQueue: number;
  pgAcquireTimeoutMs: number;
  pgStatementTimeoutMs: number;
  replicaMaxLagMs: number;
  replicaMaxLagBytes: number;
  replicaCheckMs: number;
  shardMapPollMs: number;
  primaryFallbackLimit: number;
  primaryReads: boolean;
  /** null: in-process cache and rate limiter only. */
  redis: RedisTarget | null;
  redisCommandTimeoutMs: number;
  redisCacheTtlMs: number;
  negativeCacheTtlMs: number;
  storeReadLimit: number;
  stampedeControl: boolean;
  /** local: this process writes its clicks; stream: they go to Redis Streams for `hop worker`. */
  clickPipeline: 'local' | 'stream';
  clickStreamPartitions: number;
  clickStreamMaxEntries: number;
  /** WAIT for a replica after each click stream append pass, up to this long; 0: off (`auto` resolved). */
  clickStreamReplicaWaitMs: number;
  workerPort: number;
  workerReadCount: number;
  workerClaimIdleMs: number;
  workerMaxDeliveries: number;
  webhooks: boolean;
  webhookTimeoutMs: number;
  webhookConcurrency: number;
  webhookRetryBaseMs: number;
  webhookRetryWindowMs: number;
  webhookAllowTargets: WebhookAllowList;
  /** Embedded: where scheduled backups go (null: none), how often, and how many are kept. */
  backupDir: string | null;
  backupIntervalMs: number;
  backupKeep: number;
  /** OpenTelemetry's standard OTEL_* variables (tracing/tracing-config.ts); off unless they ask. */
  tracing: TracingSettings;
}

/** One Redis server, the seed nodes of a Redis Cluster, or the Sentinels that name a primary. */
export type RedisTarget =
  | { readonly kind: 'single'; readonly url: string }
  | {
      readonly kind: 'cluster';
      readonly nodes: readonly { host: string; port: number }[];
      readonly password: string | null;
    }
  | {
      readonly kind: 'sentinel';
      readonly sentinels: readonly { host: string; port: number }[];
      /** The name the Sentinels monitor the primary by. */
      readonly name: string;
      /** For the primary and replicas (not the Sentinels). */
      readonly password: string | null;
    };

type Parser<T> = (raw: string) => T;

interface Setting<K extends keyof Config> {
  key: K;
  env: string;
  flag: string;
  default: string;
  help: string;
  parse: Parser<Config[K]>;
}

class ConfigError extends Error {
  override name = 'ConfigError';
}

const int =
  (min: number, max: number): Parser<number> =>
  (raw) => {
    const n = Number(raw);
    if (!/^-?\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new ConfigError(`must be a whole number from ${min} to ${max}`);
    }
    return n;
  };

/** A duration such as 90s, 15m, 6h or 1d (a bare number is milliseconds), within [min, max] ms. */
const duration =
  (min: number, max: number): Parser<number> =>
  (raw) => {
    const m = /^(\d+)(ms|s|m|h|d)?$/.exec(raw.trim());
    const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m?.[2] ?? 'ms'] ?? 1;
    const n = m === null ? Number.NaN : Number(m[1]) * unit;
    if (!Number.isSafeInteger(n) || n < min || n > max)
      throw new ConfigError(
        `must be a duration such as 90s, 15m, 6h or 1d, from ${min / 1000} s to ${max / 86_400_000} days`,
      );
    return n;
  };

const onOff: Parser<boolean> = (raw) => {
  const v = raw.trim().toLowerCase();
  if (['on', 'true', '1', 'yes'].includes(v)) return true;
  if (['off', 'false', '0', 'no'].includes(v)) return false;
  throw new ConfigError('must be on or off');
};

const rate: Parser<{ perSecond: number; burst: number }> = (raw) => {
  const m = /^(\d+(?:\.\d+)?)\/s(?:,(\d+))?$/.exec(raw.trim());
  if (!m) throw new ConfigError('must look like 20/s,100 (rate per second, burst)');
  const perSecond = Number(m[1]);
  const burst = m[2] === undefined ? Math.max(1, Math.ceil(perSecond)) : Number(m[2]);
  if (perSecond <= 0 || burst < 1) throw new ConfigError('rate and burst must be positive');
  return { perSecond, burst };
};

/** One of a fixed set of words. */
const oneOf =
  <const T extends string>(...values: readonly T[]): Parser<T> =>
  (raw) => {
    if ((values as readonly string[]).includes(raw)) return raw as T;
    const last = values[values.length - 1];
    throw new ConfigError(
      values.length === 2 ? `must be ${values[0]} or ${last}` : `must be one of ${values.join(', ')}`,
    );
  };

const optionalRate: Parser<{ perSecond: number; burst: number } | null> = (raw) =>
  raw.trim().toLowerCase() === 'off' ? null : rate(raw);

const publicUrl: Parser<string> = (raw) => {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ConfigError('must be an absolute http(s) URL such as https://hop.example');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ConfigError('must be an http(s) URL');
  if (u.search !== '' || u.hash !== '') throw new ConfigError('must not have a query or fragment');
  return u.href.replace(/\/+$/, '');
};

const apiKey: Parser<string | null> = (raw) => {
  if (raw === '') return null;
  if (!/^[A-Za-z0-9_-]{24,128}$/.test(raw)) {
    throw new ConfigError('must be 24 to 128 characters of A-Z, a-z, 0-9, "_" or "-"');
  }
  return raw;
};

const DEFAULT_POOL_SIZE = 2 * availableParallelism() + 1;

/** HOP_DATABASE_URLS: `primary[,replica…][;primary[,replica…]…]`, every URL postgres(ql)://. */
const databaseUrls: Parser<Config['databaseUrls']> = (raw) => {
  if (raw.trim() === '') return null;
  return raw.split(';').map((shard, i) => {
    const urls = shard
      .split(',')
      .map((u) => u.trim())
      .filter((u) => u !== '');
    for (const u of urls) {
      let url: URL | null = null;
      try {
        url = new URL(u);
      } catch {}
      if (url === null || (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:'))
        throw new ConfigError(`has "${u}" in shard ${i}: every URL must be postgres://…`);
    }
    const [primary, ...replicas] = urls;
    if (primary === undefined) throw new ConfigError(`has no primary URL for shard ${i}`);
    return { primary, replicas };
  });
};

/**
 * HOP_REDIS_URL: `redis://[:password@]host:port[/db]` (or rediss://) for one server;
 * `redis-cluster://[:password@]host:port,host:port,…` for the seed nodes of a Redis Cluster;
 * `redis-sentinel://[[:]password@]host:port,host:port,…/name` for the Sentinels that watch the
 * primary called `name` (the password is the primary's and replicas', not the Sentinels').
 */
const redisTarget: Parser<RedisTarget | null> = (raw) => {
  const r = raw.trim();
  if (r === '') return null;
  const m = /^redis-cluster:\/\/(?::([^@]*)@)?(.+)$/.exec(r);
  if (m !== null) {
    const nodes = hostPorts(m[2]!, 'seed node');
    return { kind: 'cluster', nodes, password: m[1] === undefined ? null : decodeURIComponent(m[1]) };
  }
  if (r.startsWith('redis-sentinel:')) {
    const s = /^redis-sentinel:\/\/(?::?([^@]*)@)?([^/]+)\/([^/?#]+)$/.exec(r);
    if (s === null) {
      throw new ConfigError(
        'must be redis-sentinel://host:port,host:port,…/name (the Sentinels, then the name they monitor the primary by)',
      );
    }
    const sentinels = hostPorts(s[2]!, 'Sentinel');
    const name = decodeURIComponent(s[3]!);
    return {
      kind: 'sentinel',
      sentinels,
      name,
      password: s[1] === undefined ? null : decodeURIComponent(s[1]),
    };
  }
  let url: URL | null = null;
  try {
    url = new URL(r);
  } catch {}
  if (url === null || (url.protocol !== 'redis:' && url.protocol !== 'rediss:'))
    throw new ConfigError(
      'must be redis://host:port, rediss://…, redis-cluster://host:port,host:port,…, or redis-sentinel://host:port,host:port,…/name',
    );
  return { kind: 'single', url: r };
};

/** `host:port,host:port,…`, each a `what`. */
function hostPorts(list: string, what: string): { host: string; port: number }[] {
  return list.split(',').map((hp) => {
    const n = /^([^:,/]+):(\d{1,5})$/.exec(hp.trim());
    if (n === null || Number(n[2]) < 1 || Number(n[2]) > 65_535) {
      throw new ConfigError(`has "${hp}": each ${what} must be host:port`);
    }
    return { host: n[1]!, port: Number(n[2]) };
  });
}

/** A setting's `auto` before loadConfig resolves it. */
const AUTO = -1;
/** Normally a replica confirms within a millisecond; this long only when it lags or hangs. */
const DEFAULT_SENTINEL_REPLICA_WAIT_MS = 500;

/** Milliseconds, or `auto` (AUTO until loadConfig knows HOP_REDIS_URL). */
const replicaWait: Parser<number> = (raw) => {
  const r = raw.trim();
  if (r === 'auto') return AUTO;
  if (!/^\d+$/.test(r) || Number(r) > 10_000) {
    throw new ConfigError('must be auto or a whole number of milliseconds from 0 to 10000');
  }
  return Number(r);
};

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

// Each setting listed once; `help` feeds --help and the README table.
const settings = [
  {
    key: 'port',
    env: 'PORT',
    flag: 'port',
    default: '8080',
    help: 'TCP port to listen on (0: any free port)',
    parse: int(0, 65535),
  },
  {
    key: 'host',
    env: 'HOST',
    flag: 'host',
    default: '127.0.0.1',
    help: 'Address to listen on (0.0.0.0 for all)',
    parse: (r: string) => r,
  },
  {
    key: 'dataDir',
    env: 'HOP_DATA_DIR',
    flag: 'data-dir',
    default: './data',
    help: 'Where the embedded database lives; ":memory:" keeps it in memory',
    parse: (r: string) => (r === ':memory:' ? null : r),
  },
  {
    key: 'changeLog',
    env: 'HOP_CHANGE_LOG',
    flag: 'change-log',
    default: '',
    help: "Embedded: the directory of the change log that is fsynced before a link change is answered and replayed at start (default: HOP_DATA_DIR/changes; off: no log, a crash of the machine may lose recent changes). Put it on another disk to survive losing the data directory's",
    parse: (r: string) => r,
  },
  {
    key: 'dbBuffersMb',
    env: 'HOP_DB_BUFFERS_MB',
    flag: 'db-buffers-mb',
    default: '16',
    help: "Embedded: the database's buffer pool in MB (PostgreSQL's shared_buffers); pages beyond it are read back from its files. More holds a large link table in memory, at that cost in RSS",
    parse: int(1, 65_536),
  },
  {
    key: 'dbCompiler',
    env: 'HOP_DB_COMPILER',
    flag: 'db-compiler',
    default: 'baseline',
    help: "Embedded: how V8 compiles the database's WASM. baseline (Liftoff only) holds about 40 MB less; optimizing also tiers hot functions up with TurboFan",
    parse: oneOf('baseline', 'optimizing'),
  },
  {
    key: 'publicUrl',
    env: 'HOP_PUBLIC_URL',
    flag: 'public-url',
    default: '',
    help: 'Base of every shortUrl (default http://HOST:PORT)',
    parse: (r: string) => (r === '' ? '' : publicUrl(r)),
  },
  {
    key: 'initialApiKey',
    env: 'HOP_INITIAL_API_KEY',
    flag: 'initial-api-key',
    default: '',
    help: 'Admin API key created on first start when no key exists (unattended setups)',
    parse: apiKey,
  },
  {
    key: 'rateLimits',
    env: 'HOP_RATE_LIMITS',
    flag: 'rate-limits',
    default: 'on',
    help: 'on, or off to disable every rate limit',
    parse: onOff,
  },
  {
    key: 'rateLimitApi',
    env: 'HOP_RATE_LIMIT_API',
    flag: 'rate-limit-api',
    default: '200/s,400',
    help: 'API requests per API key: rate/s,burst',
    parse: rate,
  },
  {
    key: 'rateLimitCreate',
    env: 'HOP_RATE_LIMIT_CREATE',
    flag: 'rate-limit-create',
    default: '50/s,100',
    help: 'Link creations per client IP: rate/s,burst',
    parse: rate,
  },
  {
    key: 'rateLimitRedirect',
    env: 'HOP_RATE_LIMIT_REDIRECT',
    flag: 'rate-limit-redirect',
    default: 'off',
    help: 'Redirects per client IP: rate/s,burst, or off',
    parse: optionalRate,
  },
  {
    key: 'codeLength',
    env: 'HOP_CODE_LENGTH',
    flag: 'code-length',
    default: '7',
    help: 'Length of generated codes (base62)',
    parse: int(5, 32),
  },
  {
    key: 'apiKeyCacheMs',
    env: 'HOP_API_KEY_CACHE_MS',
    flag: 'api-key-cache-ms',
    default: '1000',
    help: 'How long a verified API key is remembered (a revoke through this process forgets at once; 0: never)',
    parse: int(0, 60_000),
  },
  {
    key: 'cacheSize',
    env: 'HOP_CACHE_SIZE',
    flag: 'cache-size',
    default: '100000',
    help: 'Entries in the in-process redirect cache (0 turns it off); memory is capped by it',
    parse: int(0, 10_000_000),
  },
  {
    key: 'cacheTtlMs',
    env: 'HOP_CACHE_TTL_MS',
    flag: 'cache-ttl-ms',
    default: '3600000',
    help: 'Lifetime of an in-process cache entry (every change made through this process drops its entry at once)',
    parse: int(1, 86_400_000),
  },
  {
    key: 'denyHosts',
    env: 'HOP_DENY_HOSTS',
    flag: 'deny-hosts',
    default: '',
    help: 'Comma-separated host names (with their subdomains) links may not point at',
    parse: (r: string) =>
      r
        .split(',')
        .map((h) => h.trim())
        .filter((h) => h !== '')
        .map(normalizeHostName),
  },
  {
    key: 'clickFlushMs',
    env: 'HOP_CLICK_FLUSH_MS',
    flag: 'click-flush-ms',
    default: '1000',
    help: 'Longest a recorded click waits before its batch is written',
    parse: int(10, 60_000),
  },
  {
    key: 'clickBatchSize',
    env: 'HOP_CLICK_BATCH_SIZE',
    flag: 'click-batch-size',
    default: '20000',
    help: 'Pending clicks that start a write before the flush interval is up',
    parse: int(1, 100_000),
  },
  {
    key: 'clickBufferSize',
    env: 'HOP_CLICK_BUFFER_SIZE',
    flag: 'click-buffer-size',
    default: '200000',
    help: 'Clicks held in memory at most; beyond it new clicks are dropped and counted',
    parse: int(1, 10_000_000),
  },
  {
    key: 'clickFoldMs',
    env: 'HOP_CLICK_FOLD_MS',
    flag: 'click-fold-ms',
    default: '300000',
    help: 'Embedded: longest stored clicks wait to be folded into the rollups (stats count them at once); 0 writes rollups every flush',
    parse: int(0, 3_600_000),
  },
  {
    key: 'clickFoldRows',
    env: 'HOP_CLICK_FOLD_ROWS',
    flag: 'click-fold-rows',
    default: '100000',
    help: 'Embedded: increments (clicks per link, hour and value) and visitor registers held in memory that start a fold early',
    parse: int(1, 10_000_000),
  },
  {
    key: 'clickRecording',
    env: 'HOP_CLICK_RECORDING',
    flag: 'click-recording',
    default: 'on',
    help: 'on, or off to record no clicks',
    parse: onOff,
  },
  {
    key: 'clickRetentionDays',
    env: 'HOP_CLICK_RETENTION_DAYS',
    flag: 'click-retention-days',
    default: '30',
    help: 'Days raw click events are kept (rollups are kept for good)',
    parse: int(1, 3650),
  },
  {
    key: 'clickUpkeepMs',
    env: 'HOP_CLICK_UPKEEP_MS',
    flag: 'click-upkeep-ms',
    default: '600000',
    help: 'How often whole past days are summed into daily rollups and expired raw events dropped',
    parse: int(1000, 86_400_000),
  },
  {
    key: 'visitSplitMs',
    env: 'HOP_VISIT_SPLIT_MS',
    flag: 'visit-split-ms',
    default: '10000',
    help: 'On PostgreSQL: how often raw click batches are split into visit rows (visit lists read the rest raw); the embedded database splits after each fold',
    parse: int(100, 3_600_000),
  },
  {
    key: 'countryHeader',
    env: 'HOP_COUNTRY_HEADER',
    flag: 'country-header',
    default: '',
    help: "A CDN's country header to trust (e.g. cf-ipcountry); empty: the bundled GeoIP database",
    parse: (r: string) => {
      const v = r.trim().toLowerCase();
      if (v !== '' && !/^[a-z0-9-]+$/.test(v)) throw new ConfigError('must be a header name');
      return v === '' ? null : v;
    },
  },
  {
    key: 'feedHeartbeatMs',
    env: 'HOP_FEED_HEARTBEAT_MS',
    flag: 'feed-heartbeat-ms',
    default: '15000',
    help: 'Interval of heartbeats on the live click feed (Server-Sent Events)',
    parse: int(100, 600_000),
  },
  {
    key: 'shutdownTimeoutMs',
    env: 'HOP_SHUTDOWN_TIMEOUT_MS',
    flag: 'shutdown-timeout-ms',
    default: '10000',
    help: 'How long SIGTERM waits for in-flight requests before closing anyway',
    parse: int(0, 600_000),
  },
  {
    key: 'drainDelayMs',
    env: 'HOP_DRAIN_DELAY_MS',
    flag: 'drain-delay-ms',
    default: '0',
    help: "Behind a balancer: after SIGTERM, /readyz answers 503 for this long while requests are still served (set it above the balancer's check interval × fall count), then Hop stops listening",
    parse: int(0, 600_000),
  },
  {
    key: 'logLevel',
    env: 'HOP_LOG_LEVEL',
    flag: 'log-level',
    default: 'info',
    help: `JSON log level: ${logLevels.join(', ')}`,
    parse: oneOf(...logLevels),
  },
  {
    key: 'trustProxy',
    env: 'HOP_TRUST_PROXY',
    flag: 'trust-proxy',
    default: 'off',
    help: 'Proxies whose X-Forwarded-For is believed: off, on, or comma-separated addresses/CIDRs',
    parse: (r: string) => {
      const v = r.trim().toLowerCase();
      if (v === 'off' || v === '') return false;
      if (v === 'on') return true;
      return r;
    },
  },
  {
    key: 'sessionSecret',
    env: 'HOP_SESSION_SECRET',
    flag: 'session-secret',
    default: '',
    help: 'Secret that signs dashboard session cookies, 32+ characters (default: generated once and kept in HOP_DATA_DIR; random per process in memory)',
    parse: (r: string) => {
      if (r === '') return null;
      if (r.length < 32) throw new ConfigError('must be at least 32 characters');
      return r;
    },
  },
  {
    key: 'sessionTtlMs',
    env: 'HOP_SESSION_TTL_MS',
    flag: 'session-ttl-ms',
    default: '43200000',
    help: 'How long a dashboard sign-in lasts (revoking its API key ends it sooner)',
    parse: int(60_000, 30 * 86_400_000),
  },
  {
    key: 'homeRedirect',
    env: 'HOP_HOME_REDIRECT',
    flag: 'home-redirect',
    default: '',
    help: 'What / answers: empty for the dashboard, or an absolute http(s) URL to redirect to',
    parse: (r: string) => {
      if (r === '') return null;
      let u: URL | null = null;
      try {
        u = new URL(r);
      } catch {}
      if (u === null || (u.protocol !== 'http:' && u.protocol !== 'https:'))
        throw new ConfigError('must be empty or an absolute http(s) URL');
      return u.href;
    },
  },
  {
    key: 'strictHosts',
    env: 'HOP_STRICT_HOSTS',
    flag: 'strict-hosts',
    default: 'off',
    help: 'on: short links answer only on the default and registered domains (other Host headers get 404)',
    parse: onOff,
  },
  {
    key: 'domainRefreshMs',
    env: 'HOP_DOMAIN_REFRESH_MS',
    flag: 'domain-refresh-ms',
    default: '30000',
    help: 'How often each process rereads the domains (a change made through any process reaches the others at once when Redis is configured)',
    parse: int(100, 3_600_000),
  },
  {
    key: 'orphanFlushMs',
    env: 'HOP_ORPHAN_FLUSH_MS',
    flag: 'orphan-flush-ms',
    default: '10000',
    help: 'How often each process writes its count of orphan visits (requests that found no link)',
    parse: int(10, 3_600_000),
  },
  {
    key: 'databaseUrls',
    env: 'HOP_DATABASE_URLS',
    flag: 'database-urls',
    default: '',
    help: 'PostgreSQL instead of the embedded database: shards separated by ";", each "primaryURL[,replicaURL…]"',
    parse: databaseUrls,
  },
  {
    key: 'pgPoolSize',
    env: 'HOP_PG_POOL_SIZE',
    flag: 'pg-pool-size',
    default: '',
    help: 'Connections per PostgreSQL server; empty: 2 × cores + 1 (the pool-sizing rule, for a server like this machine)',
    parse: (r: string) => (r.trim() === '' ? DEFAULT_POOL_SIZE : int(1, 1000)(r)),
  },
  {
    key: 'pgPoolQueue',
    env: 'HOP_PG_POOL_QUEUE',
    flag: 'pg-pool-queue',
    default: '64',
    help: 'Requests that may wait for a connection per server; beyond it: 503 with Retry-After at once',
    parse: int(0, 100_000),
  },
  {
    key: 'pgAcquireTimeoutMs',
    env: 'HOP_PG_ACQUIRE_TIMEOUT_MS',
    flag: 'pg-acquire-timeout-ms',
    default: '1000',
    help: 'Longest a request waits for a connection before 503 with Retry-After',
    parse: int(1, 60_000),
  },
  {
    key: 'pgStatementTimeoutMs',
    env: 'HOP_PG_STATEMENT_TIMEOUT_MS',
    flag: 'pg-statement-timeout-ms',
    default: '5000',
    help: 'statement_timeout of every query on PostgreSQL; a transaction idle half as long (at least 1 s) between two statements is ended by the server (a paused process holds no lock others wait on) and run again',
    parse: int(1, 3_600_000),
  },
  {
    key: 'replicaMaxLagMs',
    env: 'HOP_REPLICA_MAX_LAG_MS',
    flag: 'replica-max-lag-ms',
    default: '5000',
    help: 'A replica further behind its primary than this leaves the read rotation until it catches up',
    parse: int(0, 86_400_000),
  },
  {
    key: 'replicaMaxLagBytes',
    env: 'HOP_REPLICA_MAX_LAG_BYTES',
    flag: 'replica-max-lag-bytes',
    default: '67108864',
    help: 'The same limit in bytes of WAL not yet replayed',
    parse: int(0, Number.MAX_SAFE_INTEGER),
  },
  {
    key: 'replicaCheckMs',
    env: 'HOP_REPLICA_CHECK_MS',
    flag: 'replica-check-ms',
    default: '500',
    help: 'How often replica health and lag are checked',
    parse: int(50, 600_000),
  },
  {
    key: 'shardMapPollMs',
    env: 'HOP_SHARD_MAP_POLL_MS',
    flag: 'shard-map-poll-ms',
    default: '2000',
    help: 'How often a scaled-out Hop asks for a newer shard map (a move also notifies at once)',
    parse: int(50, 600_000),
  },
  {
    key: 'primaryFallbackLimit',
    env: 'HOP_PRIMARY_FALLBACK_LIMIT',
    flag: 'primary-fallback-limit',
    default: '16',
    help: 'Reads a replica missed that may be asked again of the primary at once (a link created a moment ago); beyond it: 503',
    parse: int(0, 10_000),
  },
  {
    key: 'primaryReads',
    env: 'HOP_PRIMARY_READS',
    flag: 'primary-reads',
    default: 'off',
    help: 'on: each primary also takes its turn serving reads beside its replicas; off: it reads only when no replica can',
    parse: onOff,
  },
  {
    key: 'redis',
    env: 'HOP_REDIS_URL',
    flag: 'redis-url',
    default: '',
    help: "Redis for the shared cache and rate limits: redis://host:port, redis-cluster://host:port,host:port,… (a Redis Cluster's seed nodes), or redis-sentinel://host:port,host:port,…/name (Sentinels and the name of the primary they watch; Hop follows a failover); empty: in-process only",
    parse: redisTarget,
  },
  {
    key: 'redisCommandTimeoutMs',
    env: 'HOP_REDIS_TIMEOUT_MS',
    flag: 'redis-timeout-ms',
    default: '250',
    help: 'A Redis command slower than this counts as a failure (the breaker opens after repeated failures)',
    parse: int(1, 60_000),
  },
  {
    key: 'redisCacheTtlMs',
    env: 'HOP_REDIS_CACHE_TTL_MS',
    flag: 'redis-cache-ttl-ms',
    default: '3600000',
    help: 'Lifetime of a link in the Redis cache, ±10% jitter (changes invalidate it at once)',
    parse: int(1_000, 30 * 86_400_000),
  },
  {
    key: 'negativeCacheTtlMs',
    env: 'HOP_NEGATIVE_CACHE_TTL_MS',
    flag: 'negative-cache-ttl-ms',
    default: '5000',
    help: 'How long an unknown code is remembered in both cache tiers (0: not at all); a create makes its code known at once',
    parse: int(0, 3_600_000),
  },
  {
    key: 'storeReadLimit',
    env: 'HOP_STORE_READ_LIMIT',
    flag: 'store-read-limit',
    default: '256',
    help: 'Redirect lookups that may read the store at once per process (a bulkhead); beyond it: 503 with Retry-After',
    parse: int(1, 100_000),
  },
  {
    key: 'stampedeControl',
    env: 'HOP_STAMPEDE_CONTROL',
    flag: 'stampede-control',
    default: 'on',
    help: 'off: no shared in-flight loads and no early refresh of hot entries (only to measure what they save)',
    parse: onOff,
  },
  {
    key: 'clickPipeline',
    env: 'HOP_CLICK_PIPELINE',
    flag: 'click-pipeline',
    default: 'local',
    help: 'local: each process writes its clicks into rollups; stream: clicks go to Redis Streams (needs HOP_REDIS_URL) and `hop worker` processes write them',
    parse: oneOf('local', 'stream'),
  },
  {
    key: 'clickStreamPartitions',
    env: 'HOP_CLICK_STREAM_PARTITIONS',
    flag: 'click-stream-partitions',
    default: '4',
    help: "Partition streams of the click stream (by the code's bucket); the same for every Hop and worker, which check it in Redis",
    parse: int(1, 256),
  },
  {
    key: 'clickStreamMaxEntries',
    env: 'HOP_CLICK_STREAM_MAX_ENTRIES',
    flag: 'click-stream-max-entries',
    default: '100000',
    help: 'Backlog (entries, each up to 2,000 clicks) a partition may hold; beyond it Hop keeps clicks in its buffer, then drops and counts them',
    parse: int(1, 100_000_000),
  },
  {
    key: 'clickStreamReplicaWaitMs',
    env: 'HOP_CLICK_STREAM_REPLICA_WAIT_MS',
    flag: 'click-stream-replica-wait-ms',
    default: 'auto',
    help: 'After each click stream append, wait up to this long for a Redis replica to confirm it (WAIT 1); unconfirmed clicks stay in memory (at most half of HOP_CLICK_BUFFER_SIZE) and are appended again if a failover comes first (counted once); auto: 500 with redis-sentinel://, 0 (off) otherwise; not on a Redis Cluster',
    parse: replicaWait,
  },
  {
    key: 'workerPort',
    env: 'HOP_WORKER_PORT',
    flag: 'worker-port',
    default: '9465',
    help: '`hop worker` serves /metrics and /healthz here (0: any free port)',
    parse: int(0, 65_535),
  },
  {
    key: 'workerReadCount',
    env: 'HOP_WORKER_READ_COUNT',
    flag: 'worker-read-count',
    default: '8',
    help: 'Stream entries a worker reads per partition at a time',
    parse: int(1, 1_000),
  },
  {
    key: 'workerClaimIdleMs',
    env: 'HOP_WORKER_CLAIM_IDLE_MS',
    flag: 'worker-claim-idle-ms',
    default: '30000',
    help: "An entry delivered this long ago and not acknowledged is taken over by another worker (keep it above the slowest batch's write time)",
    parse: int(100, 86_400_000),
  },
  {
    key: 'workerMaxDeliveries',
    env: 'HOP_WORKER_MAX_DELIVERIES',
    flag: 'worker-max-deliveries',
    default: '5',
    help: 'Deliveries an entry may fail before it is moved to the dead-letter stream',
    parse: int(1, 1_000),
  },
  {
    key: 'webhooks',
    env: 'HOP_WEBHOOKS',
    flag: 'webhooks',
    default: 'on',
    help: 'off: this process sends no webhook deliveries (subscriptions are still kept)',
    parse: onOff,
  },
  {
    key: 'webhookTimeoutMs',
    env: 'HOP_WEBHOOK_TIMEOUT_MS',
    flag: 'webhook-timeout-ms',
    default: '5000',
    help: 'A webhook delivery not answered 2xx within this is a failed attempt',
    parse: int(100, 60_000),
  },
  {
    key: 'webhookConcurrency',
    env: 'HOP_WEBHOOK_CONCURRENCY',
    flag: 'webhook-concurrency',
    default: '4',
    help: 'Deliveries in flight per endpoint at most (a bulkhead: a slow endpoint cannot hold up others)',
    parse: int(1, 100),
  },
  {
    key: 'webhookRetryBaseMs',
    env: 'HOP_WEBHOOK_RETRY_BASE_MS',
    flag: 'webhook-retry-base-ms',
    default: '1000',
    help: 'First retry backoff of a failed delivery; it doubles per attempt (full jitter, capped at 1 h)',
    parse: int(1, 3_600_000),
  },
  {
    key: 'webhookRetryWindowMs',
    env: 'HOP_WEBHOOK_RETRY_WINDOW_MS',
    flag: 'webhook-retry-window-ms',
    default: '86400000',
    help: 'How long after its event a failing delivery is retried before it is dead-lettered',
    parse: int(1_000, 30 * 86_400_000),
  },
  {
    key: 'webhookAllowTargets',
    env: 'HOP_WEBHOOK_ALLOW_TARGETS',
    flag: 'webhook-allow-targets',
    default: '',
    help: 'Webhook targets allowed although not public: comma-separated host names, IP addresses and CIDR ranges (by default loopback, private, link-local, CGNAT and other non-global addresses are refused)',
    parse: (raw: string): WebhookAllowList => {
      try {
        return parseAllowList(raw);
      } catch (err) {
        throw new ConfigError((err as Error).message);
      }
    },
  },
  {
    key: 'backupDir',
    env: 'HOP_BACKUP_DIR',
    flag: 'backup-dir',
    default: '',
    help: 'Embedded: a directory for scheduled backups (hop-backup-<UTC time>.gz, one directory per data directory); empty: no scheduled backups',
    parse: (r: string) => (r.trim() === '' ? null : r),
  },
  {
    key: 'backupIntervalMs',
    env: 'HOP_BACKUP_INTERVAL',
    flag: 'backup-interval',
    default: '6h',
    help: 'Embedded: time between scheduled backups (e.g. 30m, 6h, 1d); the first is due one interval after the newest good one in HOP_BACKUP_DIR',
    parse: duration(1_000, 30 * 86_400_000),
  },
  {
    key: 'backupKeep',
    env: 'HOP_BACKUP_KEEP',
    flag: 'backup-keep',
    default: '7',
    help: 'Embedded: scheduled backups kept; older ones are deleted only after a new one succeeded',
    parse: int(1, 10_000),
  },
] as const satisfies readonly Setting<keyof Config>[];

export const SETTINGS: readonly { env: string; flag: string; default: string; help: string }[] = settings;

/**
 * Builds the Config from flags (`--name=value` or `--name value`), then environment, then
 * defaults. Unknown flags are left for the command to reject.
 */
export function loadConfig(flags: Record<string, string | undefined>, env: NodeJS.ProcessEnv): Config {
  const out: Record<string, unknown> = {};
  for (const s of settings) {
    const fromFlag = flags[s.flag];
    const fromEnv = env[s.env];
    const raw = fromFlag ?? fromEnv ?? s.default;
    const source =
      fromFlag !== undefined ? `--${s.flag}` : fromEnv !== undefined ? s.env : `default of ${s.env}`;
    try {
      out[s.key] = s.parse(raw);
    } catch (err) {
      const why = err instanceof ConfigError ? err.message : String(err);
      throw new Error(`Invalid configuration: ${source}=${JSON.stringify(raw)} ${why}.`);
    }
  }
  const cfg = out as unknown as Config;
  cfg.tracing = tracingSettings(env);
  const changeLog = cfg.changeLog as unknown as string;
  cfg.changeLog =
    changeLog === 'off' || cfg.dataDir === null
      ? null
      : changeLog === ''
        ? `${cfg.dataDir.replace(/\/+$/, '')}/changes`
        : changeLog;
  if (cfg.clickStreamReplicaWaitMs === AUTO) {
    cfg.clickStreamReplicaWaitMs = cfg.redis?.kind === 'sentinel' ? DEFAULT_SENTINEL_REPLICA_WAIT_MS : 0;
  }
  if (cfg.clickPipeline === 'stream' && cfg.redis === null) {
    throw new Error(
      'Invalid configuration: HOP_CLICK_PIPELINE=stream needs HOP_REDIS_URL (the stream lives in Redis).',
    );
  }
  if (cfg.publicUrl === '') {
    const host = cfg.host === '0.0.0.0' || cfg.host === '::' ? 'localhost' : cfg.host;
    cfg.publicUrl = `http://${host.includes(':') ? `[${host}]` : host}:${cfg.port}`;
  }
  return cfg;
}
