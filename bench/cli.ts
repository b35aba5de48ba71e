// `npm run bench -- <scenario> [options]`: Hop's load generator. Parses the command line, runs one
// scenario, and prints its report as text, JSON (--json) and/or a self-contained HTML file (--html).
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { cfsQuotaUs } from '../scripts/lib/cpu-cgroup.ts';
import { stopAllChildren } from './lib/child.ts';
import { renderHtml } from './lib/html-report.ts';
import type { Distribution } from './lib/links.ts';
import { renderText, type ScenarioReport } from './lib/report.ts';
import { parseStageList } from './playbook.ts';
import { runChangeLog } from './scenarios/change-log.ts';
import { runClickStream } from './scenarios/click-stream.ts';
import { runClicks } from './scenarios/clicks.ts';
import type { BenchContext } from './scenarios/common.ts';
import { runCreate } from './scenarios/create.ts';
import { runFleet } from './scenarios/fleet.ts';
import { runIngest } from './scenarios/ingest.ts';
import { MEMORY_PARTS, runMemory } from './scenarios/memory.ts';
import { runMix } from './scenarios/mix.ts';
import { runMoveStoreBench } from './scenarios/move-store.ts';
import { runPlaybook } from './scenarios/playbook.ts';
import { runRecording } from './scenarios/recording.ts';
import { runRedirect } from './scenarios/redirect.ts';
import { runRedisFailover } from './scenarios/redis-failover.ts';
import { REDIS_TIER_PARTS, runRedisTier } from './scenarios/redis-tier.ts';
import { runReplayBench } from './scenarios/replay.ts';
import { runReshard } from './scenarios/reshard.ts';
import { runRules } from './scenarios/rules.ts';
import { runScale } from './scenarios/scale.ts';
import { runStats } from './scenarios/stats.ts';
import { runTracing } from './scenarios/tracing.ts';
import { runVisits } from './scenarios/visits.ts';

const USAGE = `Usage: npm run bench -- <scenario> [options]

Scenarios:
  redirect   GET /<code> capacity (closed-loop) and latency at a fixed rate (open-loop)
             --links N (100000)  --dist uniform|zipf (zipf)  --cache on|off (on)  --baseline
             --rounds N (2)  --probe S (5)  --duration S (10)  --rate R (half the baseline's max)
  create     POST /api/v1/links: closed-loop links/s, then p99 at half that rate
             --concurrency N (32)  --duration S (10)
  rules      hot redirects of links with 5 redirect rules (the last matching) vs without, two Hops
             alternating in one run (target 0.9x), and one password check's cost
             --links N (100000)  --rounds N (3)  --probe S (5)
  mix        reads and writes together   --ratio R (100 reads per write)  --links N  --duration S
  clicks     redirect capacity and p99 with click recording on vs off, two Hops alternating in one run
             --links N (100000)  --dist uniform|zipf (zipf)  --rounds N (3)  --probe S (5)  --duration S (10)
  stats      stats API latency (open-loop) for a link with 10 million clicks and for all links
             --rate R (5/s per query)  --duration S (20)
  visits     Shlink's visit list of a link with a million visits (pages of 5,000, open-loop), and what
             writing and splitting the visits cost   --visits N (1000000)  --rate R (10/s)  --duration S (20)
  recording  the embedded click writer's CPU per click (store raw, fold, split into visit rows), this build
             vs this build without the split vs another checkout, alternating rounds in one process
             --clicks N (200000)  --links N (100000)  --dist uniform|zipf (zipf)  --rounds N (3)  --before DIR
  ingest     clicks/s the embedded click writer sums and writes into rollups, in process
             --links N (100000)  --dist uniform|zipf (zipf)  --duration S (10)
  memory     Hop's resident memory by phase beside bare node:http: start (until /readyz) and idle on an
             empty data directory; the redirect bench's load on N links and, after hop import of M
             links, on those, each server in a memory cgroup; then redirect and create capacity of Hop's
             defaults vs its database settings as before vs Hop as before (sources through tsx).
             Prints each target and whether it was met
             --links N (100000)  --import M (1000000; 0 skips the import)  --idle S (30)  --probe S (5)
             --rounds N (2)  --duration S (10)  --limit-mib M  memory limit per server (256)
             --parts start,load,import,speed (all)
  playbook   the scaling playbook's stages, each a Hop of its own under the same redirect load:
             closed-loop capacity, then open-loop latency at one fixed rate for all stages
             (1, 2, 4 on the embedded store; 3, 5, 6 on PostgreSQL clusters of their own, cache off)
             --stages 1,2,4 (all)  --links N (100000)  --dist uniform|zipf (zipf)  --probe S (5)
             --duration S (10)  --rate R (half stage 2's max)
             --cpu-quota CORES  CPU budget per Hop process via a cgroup v1 CFS quota, e.g. 0.5 (none)
             --db-cpu-quota CORES|none  CPU budget per PostgreSQL server (0.25)
  fleet      Hop processes behind the real HAProxy, each on a CPU budget: redirect capacity of 1, 2 and 3
             processes alternating in one run (target 3 ≥ 2.6× 1) with HAProxy's CPU shown; then, at a fifth of
             the 3-process max open-loop (1 create in 100): failed requests across a rolling restart, and how long a killed
             and a hung process take to leave rotation
             --links N (100000)  --cpu-quota C (0.1 per Hop)  --rounds N (2)  --probe S (5)  --duration S (12)
  scale      does adding database servers add capacity? cache off, every server on a CPU budget,
             one run, alternating: reads on a primary vs primary + replica, creates on 1 vs 2 shards;
             max of each, the ratio (target 1.8x), p99 at half each max, pool wait at saturation
             --links N (100000)  --dist uniform|zipf (zipf)  --rounds N (3)  --probe S (5)  --duration S (10)
             --cpu-quota CORES|none  per Hop (1)   --db-cpu-quota CORES|none  per PostgreSQL server (0.1)
             --read-connections 32,64  --create-connections 32,64,128,256  closed-loop concurrencies; max: the best
  reshard    online resharding 2 → 3 shards under open-loop redirects and creates (two Hops, cache off, every
             PostgreSQL server on a CPU budget, one run): p50/p99/max before, while shard 2 is added, during
             hop shards rebalance and after; errors; links moved/s and the write fence per bucket; closed-loop
             creates/s on 2 shards (before) vs 3 (after), the ratio and the target (≥ 1.4×)
             --links N (100000)  --dist uniform|zipf (uniform)  --rate R redirects/s (400)
             --create-rate R creates/s (40)  --duration S (10, before and after)  --probe S (5)  --rounds N (2)
             --create-connections 256,512,1024  closed-loop, split over the Hops   --move-timeout S (900)
             --cpu-quota CORES|none  per Hop (none)   --db-cpu-quota CORES|none  per PostgreSQL server (0.1)
  redis-tier the Redis tier (playbook stage 4 on PostgreSQL + Redis): redirect max and p99 with the cache
             off / L2 only / L1+L2 vs the embedded hot path and bare node:http + Redis; store reads while a
             popular entry expires (stampede control on vs off); a scan of unknown codes (negative cache
             on vs off); invalidation delay between two Hops. Prints each target and whether it was met
             --links N (100000)  --probe S (5)  --rounds N (3)  --duration S (10)
             --cpu-quota CORES|none  per Hop and baseline (1)   --db-cpu-quota CORES|none  the primary (0.5)
             --parts throughput,stampede,scan,invalidation (all)  --stampede-rate R (2000)
             --stampede-duration S (20)  --scan-rate R (5000)  --scan-codes N,N (2000,20000)  --invalidations N (200)
  click-stream  the click stream on Redis Streams: worker throughput draining a backlog with 1 vs 2
             workers; redirects with the stream on vs recording off (one run, alternating), p99 at half
             the stream-on max and the click-to-rollup delay over that run
             --links N (100000)  --dist uniform|zipf (zipf)  --backlog N clicks (300000)  --rounds N (3)
             --probe S (5)  --duration S (10)  --cpu-quota CORES|none  per Hop (1)
             --worker-cpu-quota CORES|none  per worker (0.2: the workers, not the database, are the bottleneck)
  redis-failover  clicks answered vs counted (lost) across a SIGKILL of the Redis primary under Sentinel,
             with Hop's replica wait (HOP_CLICK_STREAM_REPLICA_WAIT_MS) off and on alternating in one run; each
             trial a fresh primary + replica + 3 Sentinels, one Hop, one worker; variants: the kill alone, and
             the kill while the replica lags (stopped --lag-ms first)
             --rounds N (2)  --links N (20)  --duration S (4: load before the kill, and after the failover)
             --lag-ms N (1000)
  tracing    redirects with OpenTelemetry tracing off, the SDK loaded but not sampling, and 1% sampled
             (exporting to a local OTLP receiver): three Hops alternating in one run, max and p50/p99 at
             one fixed rate   --links N (100000)  --dist uniform|zipf (zipf)  --rounds N (3)  --probe S (5)
             --duration S (10)  --rate R (half the untraced Hop's max)
  replay     changes/s through the change stream: the outbox relayed by hop worker, hop replay into an
             empty Redis cache, and into a shard database holding only its schema and identity
             --links N (100000)
  move-store the cut-over from the embedded database to a 2-shard PostgreSQL cluster, timed: stop the embedded
             Hop, hop move-store (copy by bucket, verify), start Hop on the cluster until /readyz; downtime in all
             and per phase, links moved per second   --links N (1000000)
  change-log embedded creates with the fsynced change log on vs off (HOP_CHANGE_LOG=off), two Hops alternating
             in one run: max links/s and the ratio, then p50/p99/p99.9 at one open-loop rate for both, and
             the log's fsyncs, changes per fsync and group-commit time from /metrics; notes the log's file system
             --concurrency N (32)  --rounds N (3)  --probe S (5)  --duration S (10)  --rate R (half the lower max)

Common options:
  --json            machine-readable report on stdout (text goes to stderr)
  --html FILE       self-contained HTML report with charts
  --quick           short runs and small data, for smoke tests
  --connections N   connections per run (32)
  --warmup S        discarded warm-up before each run (1; 0.5 with --quick)
  --server-warmup S discarded load on each freshly started server (6; 3 with --quick)
  --max-requests N  cap on measured requests per run (2000000)
  --hop-env K=V     extra environment for Hop, e.g. HOP_CLICK_RECORDING=off (repeatable)
  --quiet           no per-second progress lines
  --verbose         echo the servers' stderr
Every run is bounded by its duration and the request cap, and targets 127.0.0.1 only.`;

const options = {
  links: { type: 'string' },
  dist: { type: 'string' },
  cache: { type: 'string' },
  baseline: { type: 'boolean' },
  rounds: { type: 'string' },
  probe: { type: 'string' },
  duration: { type: 'string' },
  rate: { type: 'string' },
  concurrency: { type: 'string' },
  ratio: { type: 'string' },
  import: { type: 'string' },
  idle: { type: 'string' },
  'limit-mib': { type: 'string' },
  stages: { type: 'string' },
  'cpu-quota': { type: 'string' },
  'db-cpu-quota': { type: 'string' },
  'read-connections': { type: 'string' },
  'create-connections': { type: 'string' },
  parts: { type: 'string' },
  'stampede-rate': { type: 'string' },
  'stampede-duration': { type: 'string' },
  'scan-rate': { type: 'string' },
  'scan-codes': { type: 'string' },
  invalidations: { type: 'string' },
  backlog: { type: 'string' },
  visits: { type: 'string' },
  clicks: { type: 'string' },
  before: { type: 'string' },
  'worker-cpu-quota': { type: 'string' },
  'lag-ms': { type: 'string' },
  'create-rate': { type: 'string' },
  'move-timeout': { type: 'string' },
  json: { type: 'boolean' },
  html: { type: 'string' },
  quick: { type: 'boolean' },
  connections: { type: 'string' },
  warmup: { type: 'string' },
  'server-warmup': { type: 'string' },
  'max-requests': { type: 'string' },
  'hop-env': { type: 'string', multiple: true },
  quiet: { type: 'boolean' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: true }>>['values'];

class UsageError extends Error {}

function num(values: Values, name: keyof Values, fallback: number, min = 0): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (typeof raw !== 'string' || !Number.isFinite(n) || n < min) {
    throw new UsageError(`--${name} needs a number >= ${min}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

function choice<T extends string>(values: Values, name: keyof Values, allowed: readonly T[], fallback: T): T {
  const raw = values[name];
  if (raw === undefined) return fallback;
  if (typeof raw !== 'string' || !(allowed as readonly string[]).includes(raw)) {
    throw new UsageError(`--${name} must be one of ${allowed.join(', ')}`);
  }
  return raw as T;
}

async function run(argv: string[]): Promise<number> {
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  const scenario = positionals[0];
  if (values.help === true || scenario === undefined) {
    process.stdout.write(`${USAGE}\n`);
    return scenario === undefined && values.help !== true ? 2 : 0;
  }
  const quick = values.quick === true;
  const json = values.json === true;
  const ctx: BenchContext = {
    quick,
    progress: values.quiet !== true,
    verbose: values.verbose === true,
    connections: num(values, 'connections', 32, 1),
    warmupS: num(values, 'warmup', quick ? 0.5 : 1),
    serverWarmupS: num(values, 'server-warmup', quick ? 3 : 6),
    maxRequests: num(values, 'max-requests', 2_000_000, 1),
    hopEnv: parseHopEnv(values['hop-env'] ?? []),
    log: (line) => process.stderr.write(`# ${line}\n`),
  };
  if (Object.keys(ctx.hopEnv).length > 0) ctx.log(`extra Hop environment: ${JSON.stringify(ctx.hopEnv)}`);

  let report: ScenarioReport;
  switch (scenario) {
    case 'redirect':
      report = await runRedirect(ctx, {
        links: num(values, 'links', quick ? 10_000 : 100_000, 1),
        dist: choice<Distribution>(values, 'dist', ['uniform', 'zipf'], 'zipf'),
        cache: choice(values, 'cache', ['on', 'off'], 'on') === 'on',
        baseline: values.baseline === true,
        durationS: num(values, 'duration', quick ? 3 : 10, 0.1),
        probeS: num(values, 'probe', quick ? 2 : 5, 0.1),
        rounds: num(values, 'rounds', quick ? 1 : 2, 1),
        rate: values.rate === undefined ? null : num(values, 'rate', 0, 1),
      });
      break;
    case 'create':
      report = await runCreate(ctx, {
        concurrency: num(values, 'concurrency', 32, 1),
        durationS: num(values, 'duration', quick ? 3 : 10, 0.1),
      });
      break;
    case 'rules':
      report = await runRules(ctx, {
        links: num(values, 'links', quick ? 10_000 : 100_000, 1),
        probeS: num(values, 'probe', quick ? 2 : 5, 0.1),
        rounds: num(values, 'rounds', quick ? 2 : 3, 1),
      });
      break;
    case 'mix':
      report = await runMix(ctx, {
        ratio: num(values, 'ratio', 100, 0),
        links: num(values, 'links', quick ? 10_000 : 100_000, 1),
        dist: choice<Distribution>(values, 'dist', ['uniform', 'zipf'], 'zipf'),
        durationS: num(values, 'duration', quick ? 3 : 10, 0.1),
        probeS: num(values, 'probe', quick ? 2 : 5, 0.1),
      });
      break;
    case 'memory':
      report = await runMemory(ctx, {
        links: num(values, 'links', quick ? 10_000 : 100_000, 1),
        importLinks: Math.floor(num(values, 'import', quick ? 50_000 : 1_000_000, 0)),
        idleS: num(values, 'idle', quick ? 3 : 30, 0),
        probeS: num(values, 'probe', quick ? 2 : 5, 0.1),
        rounds: num(values, 'rounds', quick ? 1 : 2, 1),
        durationS: num(values, 'duration', quick ? 3 : 10, 0.1),
        limitMib: num(values, 'limit-mib', 256, 16),
        parts: usage(() => parseList('--parts', values.parts, MEMORY_PARTS)),
      });
      break;
    case 'playbook':
      report = await runPlaybook(ctx, {
        links: num(values, 'links', quick ? 10_000 : 100_000, 1),
        dist: choice<Distribution>(values, 'dist', ['uniform', 'zipf'], 'zipf'),
        durationS: num(values, 'duration', quick ? 3 : 10, 0.1),
        probeS: num(values, 'probe', quick ? 2 : 5, 0.1),
        rate: values.rate === undefined ? null : num(values, 'rate', 0, 1),
        stages: values.stages === undefined ? null : usage(() => parseStageList(values.stages ?? '')),
        cpuQuota: values['cpu-quota'] === undefined ? null : parseCpuQuota(values['cpu-quota']),
        dbCpuQuota: parseCpuQuota(values['db-cpu-quota'] ?? String(DEFAULT_DB_CPU_QUOTA)),
      });
      break;
    case 'scale':
      report = await runScale(ctx, {
        links: num(values, 'links', quick ? 10_000 : 100_000, 1),
        dist: choice<Distribution>(values, 'dist', ['uniform', 'zipf'], 'zipf'),
        durationS: num(values, 'duration', quick ? 3 : 10, 0.1),
        probeS: num(values, 'probe', quick ? 2 : 5, 0.1),
        rounds: num(values, 'rounds', quick ? 1 : 3, 1),
        cpuQuota: parseCpuQuota(values['cpu-quota'] ?? '1'),
        dbCpuQuota: parseCpuQuota(values['db-cpu-quota'] ?? String(SCALE_DB_CPU_QUOTA)),
        readConnections: parseCounts(values, 'read-connections', quick ? '32' : '32,64'),
        createConnections: parseCounts(values, 'create-connections', quick ? '32,256' : '32,64,128,256'),
      });
      break;
    case 'reshard':
      report = await runReshard(ctx, {
        links: num(values, 'links', quick ? 10_000 : 100_000, 1),
        dist: choice<Distribution>(values, 'dist', ['uniform', 'zipf'], 'uniform'),
        rate: num(values, 'rate', quick ? 200 : 400, 2),
        createRate: num(values, 'create-rate', quick ? 20 : 40, 2),
        durationS: num(values, 'duration', quick ? 3 : 10, 1),
        probeS: num(values, 'probe', quick ? 2 : 5, 0.1),
        rounds: num(values, 'rounds', quick ? 1 : 2, 1),
        createConnections: parseCounts(values, 'create-connections', quick ? '256' : '256,512,1024'),
        cpuQuota: values['cpu-quota'] === undefined ? null : parseCpuQuota(values['cpu-quota']),
        dbCpuQuota: parseCpuQuota(values['db-cpu-quota'] ?? String(SCALE_DB_CPU_QUOTA)),
        moveTimeoutS: num(values, 'move-timeout', 900, 1),
      });
      break;
    case 'fleet':
      report = await runFleet(ctx, {
        links: num(values, 'links', quick ? 10_000 : 100_000, 1),
        dist: choice<Distribution>(values, 'dist', ['uniform', 'zipf'], 'zipf'),
        probeS: num(values, 'probe', quick ? 2 : 5, 0.1),
        rounds: num(values, 'rounds', quick ? 1 : 2, 1),
        hopQuota: parseCpuQuota(values['cpu-quota'] ?? '0.1'),
        faultLoad: 0.2,
        faultS: num(values, 'duration', quick ? 8 : 12, 1),
      });
      break;
    case 'tracing':
      report = await runTracing(ctx, {
        links: num(values, 'links', quick ? 10_000 : 100_000, 1),
        dist: choice<Distribution>(values, 'dist', ['uniform', 'zipf'], 'zipf'),
        probeS: num(values, 'probe', quick ? 2 : 5, 0.1),
        rounds: num(values, 'rounds', quick ? 1 : 3, 1),
        durationS: num(values, 'duration', quick ? 3 : 10, 0.1),
        rate: values.rate === undefined ? null : num(values, 'rate', 0, 1),
      });
      break;
    case 'replay':
      report = await runReplayBench(ctx, { links: num(values, 'links', quick ? 10_000 : 100_000, 1) });
      break;
    case 'move-store':
      report = await runMoveStoreBench(ctx, { links: num(values, 'links', quick ? 20_000 : 1_000_000, 1) });
      break;
    case 'click-stream':
      report = await runClickStream(ctx, {
        links: num(values, 'links', quick ? 10_000 : 100_000, 1),
        dist: choice<Distribution>(values, 'dist', ['uniform', 'zipf'], 'zipf'),
        probeS: num(values, 'probe', quick ? 2 : 5, 0.1),
        rounds: num(values, 'rounds', quick ? 1 : 3, 1),
        durationS: num(values, 'duration', quick ? 3 : 10, 0.1),
        backlog: Math.floor(num(values, 'backlog', quick ? 50_000 : 300_000, 1)),
        cpuQuota: parseCpuQuota(values['cpu-quota'] ?? '1'),
        workerCpuQuota: parseCpuQuota(values['worker-cpu-quota'] ?? '0.2'),
      });
      break;
    case 'redis-failover':
      report = await runRedisFailover(ctx, {
        rounds: num(values, 'rounds', quick ? 1 : 2, 1),
        links: num(values, 'links', 20, 1),
        durationS: num(values, 'duration', quick ? 2 : 4, 0.5),
        lagMs: num(values, 'lag-ms', 1000, 0),
      });
      break;
    case 'redis-tier':
      report = await runRedisTier(ctx, {
        links: num(values, 'links', quick ? 10_000 : 100_000, 1),
        probeS: num(values, 'probe', quick ? 2 : 5, 0.1),
        rounds: num(values, 'rounds', quick ? 1 : 3, 1),
        durationS: num(values, 'duration', quick ? 3 : 10, 0.1),
        cpuQuota: parseCpuQuota(values['cpu-quota'] ?? '1'),
        dbCpuQuota: parseCpuQuota(values['db-cpu-quota'] ?? String(REDIS_TIER_DB_CPU_QUOTA)),
        parts: usage(() => parseList('--parts', values.parts, REDIS_TIER_PARTS)),
        stampedeRate: num(values, 'stampede-rate', 2000, 2),
        stampedeS: num(values, 'stampede-duration', quick ? 6 : 20, 1),
        scanRate: num(values, 'scan-rate', 5000, 1),
        scanCodes: usage(() =>
          parsePositiveList('--scan-codes', values['scan-codes'] ?? (quick ? '1000,5000' : '2000,20000')),
        ),
        invalidations: Math.floor(num(values, 'invalidations', quick ? 30 : 200, 1)),
      });
      break;
    case 'clicks':
      report = await runClicks(ctx, {
        links: num(values, 'links', quick ? 10_000 : 100_000, 1),
        dist: choice<Distribution>(values, 'dist', ['uniform', 'zipf'], 'zipf'),
        durationS: num(values, 'duration', quick ? 3 : 10, 0.1),
        probeS: num(values, 'probe', quick ? 2 : 5, 0.1),
        rounds: num(values, 'rounds', quick ? 1 : 3, 1),
        rate: values.rate === undefined ? null : num(values, 'rate', 0, 1),
      });
      break;
    case 'stats':
      report = await runStats(ctx, {
        durationS: num(values, 'duration', quick ? 3 : 20, 0.1),
        rate: num(values, 'rate', 5, 0.1),
      });
      break;
    case 'visits':
      report = await runVisits(ctx, {
        visits: num(values, 'visits', quick ? 100_000 : 1_000_000, 1),
        durationS: num(values, 'duration', quick ? 3 : 20, 0.1),
        rate: num(values, 'rate', 10, 0.1),
      });
      break;
    case 'recording':
      report = await runRecording(ctx, {
        clicks: num(values, 'clicks', quick ? 20_000 : 200_000, 1),
        links: num(values, 'links', quick ? 10_000 : 100_000, 1),
        dist: choice<Distribution>(values, 'dist', ['uniform', 'zipf'], 'zipf'),
        rounds: num(values, 'rounds', quick ? 1 : 3, 1),
        before: typeof values.before === 'string' ? values.before : null,
      });
      break;
    case 'change-log':
      report = await runChangeLog(ctx, {
        concurrency: num(values, 'concurrency', 32, 1),
        probeS: num(values, 'probe', quick ? 2 : 5, 0.1),
        rounds: num(values, 'rounds', quick ? 1 : 3, 1),
        durationS: num(values, 'duration', quick ? 3 : 10, 0.1),
        rate: values.rate === undefined ? null : num(values, 'rate', 0, 1),
      });
      break;
    case 'ingest':
      report = await runIngest(ctx, {
        links: num(values, 'links', quick ? 10_000 : 100_000, 1),
        dist: choice<Distribution>(values, 'dist', ['uniform', 'zipf'], 'zipf'),
        durationS: num(values, 'duration', quick ? 3 : 10, 0.1),
      });
      break;
    default:
      process.stderr.write(`Unknown scenario "${scenario}".\n\n${USAGE}\n`);
      return 2;
  }

  if (Object.keys(ctx.hopEnv).length > 0) report.settings.hopEnv = JSON.stringify(ctx.hopEnv);
  const text = renderText(report);
  if (json) {
    process.stderr.write(text);
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else process.stdout.write(text);
  if (values.html !== undefined) {
    await writeFile(values.html, renderHtml([report]));
    process.stderr.write(`# HTML report written to ${values.html}\n`);
  }
  return 0;
}

/** Turns a validation error of a parser into a usage error. */
function usage<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

/**
 * A PostgreSQL server's CPU budget by default: a quarter core, so that on two cores the database
 * servers, not Hop or the load generator, run out first.
 */
const DEFAULT_DB_CPU_QUOTA = 0.25;

/**
 * The scale scenario's: a tenth of a core, because one Hop (one event loop, 0.25 to 0.6 ms of CPU per
 * create) nearly runs out of its core in front of two quarter-core servers, and the point of the
 * measurement is that the database servers run out first.
 */
const SCALE_DB_CPU_QUOTA = 0.1;

/**
 * The redis-tier scenario's PostgreSQL budget: half a core, so that with the cache off the store is
 * what runs out, while Hop, Redis and the generator share the rest of the two cores.
 */
const REDIS_TIER_DB_CPU_QUOTA = 0.5;

function parsePositiveList(flag: string, raw: string): number[] {
  const list = raw.split(',').map((x) => Number(x.trim()));
  if (list.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new Error(`${flag} needs a comma-separated list of positive integers, got ${JSON.stringify(raw)}`);
  }
  return [...new Set(list)];
}

/** A subset of `all` named on the command line (comma-separated); all of them by default. */
function parseList<T extends string>(flag: string, raw: string | undefined, all: readonly T[]): T[] {
  if (raw === undefined) return [...all];
  const items = raw.split(',').map((x) => x.trim());
  for (const p of items) {
    if (!(all as readonly string[]).includes(p)) {
      throw new Error(`${flag} takes ${all.join(', ')}; got ${JSON.stringify(p)}`);
    }
  }
  return [...new Set(items)] as T[];
}

/** Cores for a CFS quota, or null for `none`. */
function parseCpuQuota(raw: string): number | null {
  if (raw === 'none') return null;
  const cores = Number(raw);
  usage(() => cfsQuotaUs(cores));
  return cores;
}

function parseHopEnv(pairs: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const p of pairs) {
    const eq = p.indexOf('=');
    if (eq < 1) throw new UsageError(`--hop-env needs KEY=VALUE, got ${JSON.stringify(p)}`);
    env[p.slice(0, eq)] = p.slice(eq + 1);
  }
  return env;
}

function parseCounts(
  values: Values,
  name: 'read-connections' | 'create-connections',
  fallback: string,
): number[] {
  const raw = values[name] ?? fallback;
  const counts = raw.split(',').map((x) => Number(x.trim()));
  if (counts.length === 0 || counts.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new UsageError(
      `--${name} needs a comma-separated list of positive integers, got ${JSON.stringify(raw)}`,
    );
  }
  return [...new Set(counts)];
}

let interrupted = false;
process.on('SIGINT', () => {
  if (interrupted) process.exit(130);
  interrupted = true;
  process.stderr.write('\n# interrupted: stopping servers\n');
  void stopAllChildren().then(() => process.exit(130));
});

run(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(err instanceof UsageError ? `${err.message}\n` : `bench failed: ${String(err)}\n`);
    if (!(err instanceof UsageError) && err instanceof Error && err.stack)
      process.stderr.write(`${err.stack}\n`);
    process.exitCode = err instanceof UsageError ? 2 : 1;
  },
);
