// The change-log scenario: what the embedded default's fsynced change log costs creates. Two Hops on
// fresh data directories, one with the log on (its default: HOP_DATA_DIR/changes) and one with
// HOP_CHANGE_LOG=off, are probed closed-loop in alternating rounds (POST /api/v1/links, every URL
// distinct), so that noise on this machine hits both; then each runs open-loop at one common rate.
// Hop's own /metrics tell how many group commits (fsyncs) the log made and how many changes each
// carried, and the notes say which file system the log was on: fsync's cost is that file system's.
import { readdirSync, readFileSync, realpathSync, statfsSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { type BucketQuantile, bucketQuantile } from '../lib/hop-metrics.ts';
import { ensureHopBundle, makeTempDir, removeDir } from '../lib/hop-process.ts';
import { requestOnce, type Target } from '../lib/http-client.ts';
import { randomApiKey } from '../lib/links.ts';
import type { RequestFactory } from '../lib/load.ts';
import type { RunResult } from '../lib/recorder.ts';
import { fmtInt, fmtMs, fmtPct, newReport, runsTable, type ScenarioReport } from '../lib/report.ts';
import {
  alternateProbes,
  type BenchContext,
  best,
  Cleanup,
  openLoop,
  type Sut,
  startHopSut,
  warmServer,
} from './common.ts';
import { createRequests } from './create.ts';
import { noteTrouble } from './redirect.ts';

export interface ChangeLogOptions {
  /** Closed-loop connections of the capacity probes. */
  concurrency: number;
  probeS: number;
  rounds: number;
  durationS: number;
  /** Fixed open-loop rate for both; by default half the lower of the two maxima. */
  rate: number | null;
}

/** The change log's figures on a Hop's /metrics: group commits (one fsync each) and changes. */
export interface ChangeLogCounts {
  /** hop_change_log_sync_seconds_count: group commits, each one fsync. */
  syncs: number;
  /** hop_change_log_sync_seconds_sum, seconds. */
  syncSeconds: number;
  /** Cumulative per upper bound (seconds, ascending, the last +Inf). */
  buckets: { le: number; count: number }[];
  /** hop_change_log_changes_total. */
  changes: number;
}

export function emptyChangeLogCounts(): ChangeLogCounts {
  return { syncs: 0, syncSeconds: 0, buckets: [], changes: 0 };
}

/** The change log's figures out of a Prometheus text exposition; absent series count 0. */
export function parseChangeLogCounts(text: string): ChangeLogCounts {
  const out = emptyChangeLogCounts();
  for (const line of text.split('\n')) {
    if (!line.startsWith('hop_change_log_')) continue;
    const m = /^(hop_change_log_\w+)(?:\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (m === null) continue;
    const value = Number(m[3]);
    if (!Number.isFinite(value)) continue;
    if (m[1] === 'hop_change_log_sync_seconds_bucket') {
      const le = /le="([^"]*)"/.exec(m[2] ?? '')?.[1];
      if (le === undefined) continue;
      out.buckets.push({ le: le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le), count: value });
    } else if (m[1] === 'hop_change_log_sync_seconds_count') out.syncs += value;
    else if (m[1] === 'hop_change_log_sync_seconds_sum') out.syncSeconds += value;
    else if (m[1] === 'hop_change_log_changes_total') out.changes += value;
  }
  out.buckets.sort((a, b) => a.le - b.le);
  return out;
}

/** `after` − `before`, bucket by bucket; a bucket missing from `before` counts from zero. */
export function changeLogDelta(before: ChangeLogCounts, after: ChangeLogCounts): ChangeLogCounts {
  const earlier = new Map(before.buckets.map((b) => [b.le, b.count]));
  return {
    syncs: after.syncs - before.syncs,
    syncSeconds: after.syncSeconds - before.syncSeconds,
    buckets: after.buckets.map((b) => ({ le: b.le, count: b.count - (earlier.get(b.le) ?? 0) })),
    changes: after.changes - before.changes,
  };
}

/** The sum of two windows' figures (e.g. every probe of one Hop). */
export function addChangeLogCounts(a: ChangeLogCounts, b: ChangeLogCounts): ChangeLogCounts {
  const les = [...new Set([...a.buckets, ...b.buckets].map((x) => x.le))].sort((x, y) => x - y);
  const at = (c: ChangeLogCounts, le: number) => c.buckets.find((x) => x.le === le)?.count ?? 0;
  return {
    syncs: a.syncs + b.syncs,
    syncSeconds: a.syncSeconds + b.syncSeconds,
    buckets: les.map((le) => ({ le, count: at(a, le) + at(b, le) })),
    changes: a.changes + b.changes,
  };
}

export interface ChangeLogSummary {
  syncs: number;
  changes: number;
  /** Changes per fsync: the group-commit factor; null without a sync. */
  perSync: number | null;
  /** Mean group commit in ms (exact, from the sum); null without a sync. */
  meanMs: number | null;
  /** Interpolated within the histogram's buckets, so only as fine as they are. */
  p50: BucketQuantile | null;
  p99: BucketQuantile | null;
}

export function summarizeChangeLog(c: ChangeLogCounts): ChangeLogSummary {
  return {
    syncs: c.syncs,
    changes: c.changes,
    perSync: c.syncs > 0 ? c.changes / c.syncs : null,
    meanMs: c.syncs > 0 ? (c.syncSeconds * 1000) / c.syncs : null,
    p50: bucketQuantile(c.buckets, 0.5),
    p99: bucketQuantile(c.buckets, 0.99),
  };
}

/** A bucket estimate in ms, ">" when it fell in the +Inf bucket. */
export function fmtBucketMs(q: BucketQuantile | null): string {
  if (q === null) return '-';
  return `${q.overflow ? '> ' : ''}${fmtMs(q.seconds * 1000)}`;
}

async function readChangeLogCounts(target: Target): Promise<ChangeLogCounts | null> {
  try {
    const res = await requestOnce(target, { method: 'GET', path: '/metrics' });
    if (res.status !== 200 || res.body === null) return null;
    return parseChangeLogCounts(res.body.toString('utf8'));
  } catch {
    return null;
  }
}

export interface Mount {
  device: string;
  mountPoint: string;
  fsType: string;
  options: string;
}

/** /proc/mounts escapes a space as \040 (and tab, newline, backslash alike). */
const unescapeMount = (s: string) =>
  s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));

/**
 * The mount holding `path` (an absolute path with symlinks resolved), from /proc/mounts' text: the
 * longest mount point that is `path` or one of its ancestors; the last such line wins (it is on top).
 */
export function mountOf(path: string, mountsText: string): Mount | null {
  let found: Mount | null = null;
  for (const line of mountsText.split('\n')) {
    const [device, mp, fsType, options] = line.split(' ');
    if (device === undefined || mp === undefined || fsType === undefined) continue;
    const mountPoint = unescapeMount(mp);
    const inside =
      mountPoint === '/' || path === mountPoint || path.startsWith(`${mountPoint.replace(/\/+$/, '')}/`);
    if (inside && (found === null || mountPoint.length >= found.mountPoint.length)) {
      found = { device: unescapeMount(device), mountPoint, fsType, options: options ?? '' };
    }
  }
  return found;
}

/** The block device's queue settings that bear on fsync (write cache, rotational), where readable. */
function deviceQueue(device: string): string | null {
  if (!device.startsWith('/dev/')) return null;
  try {
    let sys = realpathSync(join('/sys/class/block', basename(realpathSync(device))));
    // A partition's queue is its disk's.
    if (statSync(join(sys, 'partition'), { throwIfNoEntry: false }) !== undefined) sys = dirname(sys);
    const read = (f: string) => readFileSync(join(sys, 'queue', f), 'utf8').trim();
    return `${basename(sys)}: write cache "${read('write_cache')}", rotational ${read('rotational')}`;
  } catch {
    return null;
  }
}

/** Where a directory lives, like `df -T`: device, file system type and options, size and free space. */
export function describeFileSystem(dir: string): string {
  let real: string;
  try {
    real = realpathSync(dir);
  } catch {
    return `${dir}: not found`;
  }
  let mount: Mount | null = null;
  try {
    mount = mountOf(real, readFileSync('/proc/mounts', 'utf8'));
  } catch {}
  let space = '';
  try {
    const s = statfsSync(real);
    const gib = (blocks: number) => ((blocks * s.bsize) / 2 ** 30).toFixed(0);
    space = `, ${gib(s.blocks)} GiB, ${gib(s.bavail)} GiB available`;
  } catch {}
  const where =
    mount === null
      ? 'mount unknown (no /proc/mounts)'
      : `${mount.device} (${mount.fsType}, ${mount.options}) mounted on ${mount.mountPoint}`;
  const queue = mount === null ? null : deviceQueue(mount.device);
  return `${real}: ${where}${space}${queue === null ? '' : `; ${queue}`}`;
}

/** Bytes in the files of a directory (the log's segments); null when it cannot be read. */
function dirBytes(dir: string): number | null {
  try {
    return readdirSync(dir).reduce((sum, f) => sum + statSync(join(dir, f)).size, 0);
  } catch {
    return null;
  }
}

/** The create scenario's requests, numbered across every call: no URL is sent twice in the run. */
function distinctCreates(apiKey: string): RequestFactory {
  const create = createRequests(apiKey, 0);
  let n = 0;
  return () => create(n++);
}

export async function runChangeLog(ctx: BenchContext, o: ChangeLogOptions): Promise<ScenarioReport> {
  const report = newReport('change-log', {
    concurrency: o.concurrency,
    probeS: o.probeS,
    rounds: o.rounds,
    durationS: o.durationS,
    connections: ctx.connections,
  });
  if (ctx.hopEnv.HOP_CHANGE_LOG === 'off') {
    report.notes.push(
      '--hop-env HOP_CHANGE_LOG=off would turn the log off in both Hops: nothing to compare.',
    );
    return report;
  }
  // The probes run at --concurrency; the open-loop runs keep --connections.
  const probeCtx: BenchContext = { ...ctx, connections: o.concurrency };
  const cleanup = new Cleanup();
  try {
    const bundle = ensureHopBundle();
    if (bundle !== null) report.notes.push(bundle);
    const dir = await makeTempDir('hop-bench');
    cleanup.add(() => removeDir(dir));
    const apiKey = randomApiKey();
    const request = distinctCreates(apiKey);
    const onData = join(dir, 'log-on');
    const offData = join(dir, 'log-off');
    // --hop-env HOP_CHANGE_LOG=DIR (a fresh directory) puts the log elsewhere, e.g. on another disk.
    const logDir = ctx.hopEnv.HOP_CHANGE_LOG || join(onData, 'changes');
    const shapes: [name: string, dataDir: string, env: Record<string, string>][] = [
      ['log on', onData, { ...ctx.hopEnv }],
      ['log off', offData, { ...ctx.hopEnv, HOP_CHANGE_LOG: 'off' }],
    ];
    const suts: Sut[] = [];
    for (const [name, dataDir, env] of shapes) {
      const hop = await startHopSut({ dataDir, apiKey, env, verbose: ctx.verbose });
      cleanup.add(() => hop.stop());
      const sut: Sut = { ...hop, name };
      const first = await requestOnce(sut.target, request(0));
      if (first.status !== 201) {
        throw new Error(
          `${name}: POST /api/v1/links answered ${first.status} (expected 201): ${first.body?.toString().slice(0, 300) ?? ''}`,
        );
      }
      await warmServer(probeCtx, sut, request);
      suts.push(sut);
    }
    const [on, off] = suts as [Sut, Sut];

    // The log's figures per Hop over its probes (warm-ups included) and over its open-loop run.
    const probed = new Map<string, ChangeLogCounts>();
    const pending = new Map<string, ChangeLogCounts | null>();
    const beforeProbe = async (sut: Sut) => {
      pending.set(sut.name, await readChangeLogCounts(sut.target));
    };
    const afterProbe = async (sut: Sut) => {
      const b = pending.get(sut.name) ?? null;
      const a = await readChangeLogCounts(sut.target);
      if (b === null || a === null) return;
      probed.set(
        sut.name,
        addChangeLogCounts(probed.get(sut.name) ?? emptyChangeLogCounts(), changeLogDelta(b, a)),
      );
    };
    const probes = await alternateProbes(probeCtx, suts, request, o, report, afterProbe, beforeProbe);
    const onMax = best(probes.get(on.name) ?? [])!;
    const offMax = best(probes.get(off.name) ?? [])!;
    const rate = o.rate ?? Math.max(1, Math.floor(Math.min(onMax.achievedRate, offMax.achievedRate) / 2));
    report.settings.openLoopRate = rate;

    const fixed: RunResult[] = [];
    const opened = new Map<string, ChangeLogCounts>();
    for (const sut of [on, off]) {
      const b = await readChangeLogCounts(sut.target);
      const r = await openLoop(ctx, sut, request, rate, o.durationS);
      const a = await readChangeLogCounts(sut.target);
      if (b !== null && a !== null) opened.set(sut.name, changeLogDelta(b, a));
      report.runs.push(r);
      fixed.push(r);
    }
    const [fixedOn, fixedOff] = fixed as [RunResult, RunResult];
    const totalOn = await readChangeLogCounts(on.target);
    const totalOff = await readChangeLogCounts(off.target);
    const logBytes = dirBytes(logDir);

    const ratio = (a: number, b: number) => (b > 0 ? (a / b).toFixed(3) : '-');
    const errors = (r: RunResult) => fmtInt(r.errorCount + r.unexpected);
    report.tables.push({
      title: 'Creates with the fsynced change log on vs off (one run, alternating)',
      head: ['', 'log on', 'log off', 'on/off'],
      rows: [
        [
          `max links/s, closed-loop, ${o.concurrency} connections (best of ${o.rounds})`,
          fmtInt(onMax.achievedRate),
          fmtInt(offMax.achievedRate),
          ratio(onMax.achievedRate, offMax.achievedRate),
        ],
        [
          '  every probe (links/s)',
          (probes.get(on.name) ?? []).map((r) => fmtInt(r.achievedRate)).join(', '),
          (probes.get(off.name) ?? []).map((r) => fmtInt(r.achievedRate)).join(', '),
          '',
        ],
        [
          '  best probe: Hop CPU, machine idle',
          `${fmtPct(onMax.server?.cpuPercent ?? null)}, ${fmtPct(onMax.server?.machineIdlePercent ?? null)}`,
          `${fmtPct(offMax.server?.cpuPercent ?? null)}, ${fmtPct(offMax.server?.machineIdlePercent ?? null)}`,
          '',
        ],
        [
          `open-loop @ ${fmtInt(rate)}/s: achieved/s`,
          fmtInt(fixedOn.achievedRate),
          fmtInt(fixedOff.achievedRate),
          '',
        ],
        [
          '  p50 (ms)',
          fmtMs(fixedOn.latency.p50),
          fmtMs(fixedOff.latency.p50),
          ratio(fixedOn.latency.p50, fixedOff.latency.p50),
        ],
        [
          '  p99 (ms)',
          fmtMs(fixedOn.latency.p99),
          fmtMs(fixedOff.latency.p99),
          ratio(fixedOn.latency.p99, fixedOff.latency.p99),
        ],
        [
          '  p99.9 (ms)',
          fmtMs(fixedOn.latency.p999),
          fmtMs(fixedOff.latency.p999),
          ratio(fixedOn.latency.p999, fixedOff.latency.p999),
        ],
        ['  max (ms)', fmtMs(fixedOn.latency.max), fmtMs(fixedOff.latency.max), ''],
        ['  errors + answers other than 201', errors(fixedOn), errors(fixedOff), ''],
        [
          '  Hop CPU',
          fmtPct(fixedOn.server?.cpuPercent ?? null),
          fmtPct(fixedOff.server?.cpuPercent ?? null),
          '',
        ],
        [
          'errors + answers other than 201, closed-loop probes',
          fmtInt(sumErrors(probes.get(on.name) ?? [])),
          fmtInt(sumErrors(probes.get(off.name) ?? [])),
          '',
        ],
      ],
      note:
        "Open-loop latency counts from each create's intended send time (HdrHistogram), so queueing behind " +
        'a slow fsync is in it. A create with the log on is answered only after its change is appended to ' +
        'the log and fsynced; creates in flight together share one fsync.',
    });

    const probedOn = summarizeChangeLog(probed.get(on.name) ?? emptyChangeLogCounts());
    const openOn = summarizeChangeLog(opened.get(on.name) ?? emptyChangeLogCounts());
    const allOn = summarizeChangeLog(totalOn ?? emptyChangeLogCounts());
    const logRow = (label: string, f: (s: ChangeLogSummary) => string) => [
      label,
      f(probedOn),
      f(openOn),
      f(allOn),
    ];
    report.tables.push({
      title: 'The "log on" Hop\'s change log, from its /metrics',
      head: ['', 'closed-loop probes', `open-loop @ ${fmtInt(rate)}/s`, 'whole run'],
      rows: [
        logRow('group commits (fsyncs)', (s) => fmtInt(s.syncs)),
        logRow('changes logged', (s) => fmtInt(s.changes)),
        logRow('changes per fsync (group-commit factor)', (s) =>
          s.perSync === null ? '-' : s.perSync.toFixed(1),
        ),
        logRow('group commit mean (ms)', (s) => (s.meanMs === null ? '-' : fmtMs(s.meanMs))),
        logRow('group commit p50 (ms, from buckets)', (s) => fmtBucketMs(s.p50)),
        logRow('group commit p99 (ms, from buckets)', (s) => fmtBucketMs(s.p99)),
        [
          'log size at the end (bytes per change)',
          '',
          '',
          logBytes === null
            ? '-'
            : `${(logBytes / 2 ** 20).toFixed(1)} MiB (${allOn.changes > 0 ? fmtInt(logBytes / allOn.changes) : '-'})`,
        ],
      ],
      note:
        'From hop_change_log_sync_seconds (one observation per group commit: reading the new changes from ' +
        "the outbox, appending them and the fsync) and hop_change_log_changes_total. The probes' column " +
        'includes their 1 s warm-ups; the whole run includes the server warm-up. p50/p99 are interpolated ' +
        'within the buckets (0.5, 1, 2.5, 5, 10, 25, 50, 100, 250 ms, 1 s), the mean is exact.',
    });
    report.tables.push(runsTable(report.runs));

    const fileSystem = describeFileSystem(logDir);
    report.notes.push(`The change log of the "log on" Hop lived in ${fileSystem}.`);
    report.notes.push(
      "fsync's cost is that file system's and its device's (tmpfs makes it free; a disk with a volatile write " +
        'cache pays a cache flush per fsync). TMPDIR chooses where the data directories go; --hop-env ' +
        'HOP_CHANGE_LOG=DIR (a fresh directory) puts the log elsewhere.',
    );
    if (allOn.changes === 0) report.notes.push('The "log on" Hop logged no change: the log was not on.');
    if (totalOff !== null && totalOff.changes + totalOff.syncs > 0)
      report.notes.push(`The "log off" Hop logged ${fmtInt(totalOff.changes)} changes: the log was not off.`);
    if (statSync(join(offData, 'changes'), { throwIfNoEntry: false }) !== undefined)
      report.notes.push('The "log off" Hop has a changes directory.');
    report.data.summary = {
      onMaxRate: onMax.achievedRate,
      offMaxRate: offMax.achievedRate,
      ratio: offMax.achievedRate > 0 ? onMax.achievedRate / offMax.achievedRate : null,
      fixedRate: rate,
      on: {
        p50: fixedOn.latency.p50,
        p99: fixedOn.latency.p99,
        p999: fixedOn.latency.p999,
        max: fixedOn.latency.max,
      },
      off: {
        p50: fixedOff.latency.p50,
        p99: fixedOff.latency.p99,
        p999: fixedOff.latency.p999,
        max: fixedOff.latency.max,
      },
      changeLog: { probes: probedOn, openLoop: openOn, whole: allOn, bytes: logBytes },
      fileSystem,
    };
    for (const r of report.runs) noteTrouble(report, r);
    return report;
  } finally {
    await cleanup.run();
  }
}

const sumErrors = (runs: readonly RunResult[]) => runs.reduce((n, r) => n + r.errorCount + r.unexpected, 0);
