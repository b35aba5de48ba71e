// A fixed CPU budget per server process through the cgroup v1 cpu controller (CFS bandwidth): on a
// two-core machine "Hop alone" and "Hop plus two database servers" are only comparable when each
// process gets the same share of a core, whatever the others do. Usable by any stage that starts
// processes; nothing here is applied unless a caller asks for it.
import { access, constants, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { removeCgroupDir, removeCgroupDirSync } from './cgroup-dir.ts';

export const CGROUP_V1_CPU = '/sys/fs/cgroup/cpu';
/** The kernel's default CFS period; the quota is CORES times this per period. */
export const CFS_PERIOD_US = 100_000;
/** The kernel refuses quotas under 1 ms per period. */
const MIN_QUOTA_US = 1000;

/** cpu.cfs_quota_us for a budget of `cores` (0.5 = half a core), or an error for a budget the kernel refuses. */
export function cfsQuotaUs(cores: number, periodUs = CFS_PERIOD_US): number {
  if (!Number.isFinite(cores) || cores <= 0) throw new Error(`a CPU quota needs cores > 0, got ${cores}`);
  const quota = Math.round(cores * periodUs);
  if (quota < MIN_QUOTA_US) {
    throw new Error(
      `a CPU quota of ${cores} cores is below the kernel's minimum of ${MIN_QUOTA_US / periodUs}`,
    );
  }
  return quota;
}

/** Why a quota cannot be applied under `root`, or null when it can (as far as can be told without trying). */
export async function cpuQuotaUnavailable(root = CGROUP_V1_CPU): Promise<string | null> {
  try {
    await access(join(root, 'cpu.cfs_quota_us'), constants.R_OK);
  } catch {
    return `${root} is not a cgroup v1 cpu controller (no cpu.cfs_quota_us)`;
  }
  try {
    await access(root, constants.W_OK);
  } catch {
    return `${root} is not writable (needs root and a writable cgroup mount)`;
  }
  return null;
}

export interface Throttling {
  /** CFS periods in which the group ran at all. */
  periods: number;
  /** Periods in which it used up its quota and was held back. */
  throttledPeriods: number;
  throttledMs: number;
}

/** Parses cpu.stat of the v1 cpu controller. */
export function parseCpuStat(text: string): Throttling | null {
  const fields = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [key, value] = line.trim().split(/\s+/);
    if (key !== undefined && value !== undefined) fields.set(key, Number(value));
  }
  const periods = fields.get('nr_periods');
  const throttled = fields.get('nr_throttled');
  const ns = fields.get('throttled_time');
  if (periods === undefined || throttled === undefined || ns === undefined) return null;
  return { periods, throttledPeriods: throttled, throttledMs: ns / 1e6 };
}

const live = new Set<CpuCgroup>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // An interrupted bench must not leave its cgroups behind: they outlive the process otherwise.
  process.on('exit', () => {
    for (const g of live) g.removeSync();
  });
}

export class CpuCgroup {
  readonly path: string;
  readonly cores: number;
  readonly #root: string;

  private constructor(root: string, path: string, cores: number) {
    this.#root = root;
    this.path = path;
    this.cores = cores;
  }

  /** Creates `<root>/<name>` with a quota of `cores` per CFS period; throws when the kernel refuses. */
  static async create(name: string, cores: number, root = CGROUP_V1_CPU): Promise<CpuCgroup> {
    const quota = cfsQuotaUs(cores);
    const path = join(root, name);
    await mkdir(path);
    const group = new CpuCgroup(root, path, cores);
    installExitHook();
    live.add(group);
    try {
      await writeFile(join(path, 'cpu.cfs_period_us'), String(CFS_PERIOD_US));
      await writeFile(join(path, 'cpu.cfs_quota_us'), String(quota));
    } catch (err) {
      await group.remove();
      throw err;
    }
    return group;
  }

  /**
   * Moves a running process, all its threads included, into the group. cgroup.procs moves the whole
   * thread group (Hop's database runs on a worker thread); where only `tasks` exists, each thread is
   * moved by its id.
   */
  async addProcess(pid: number): Promise<void> {
    try {
      await writeFile(join(this.path, 'cgroup.procs'), String(pid));
      return;
    } catch (err) {
      const tids = await readdir(`/proc/${pid}/task`).catch(() => null);
      if (tids === null) throw err;
      for (const tid of tids) await writeFile(join(this.path, 'tasks'), tid);
    }
  }

  async throttling(): Promise<Throttling | null> {
    try {
      return parseCpuStat(await readFile(join(this.path, 'cpu.stat'), 'utf8'));
    } catch {
      return null;
    }
  }

  /** Moves anything still inside back to the parent (a non-empty group cannot go), then removes it. */
  async remove(): Promise<void> {
    await removeCgroupDir(this.path, this.#root);
    live.delete(this);
  }

  /**
   * Keeps the group past this process's exit: the exit hook forgets it without removing it. For
   * groups holding processes that outlive their creator (a cluster started by a CLI); whoever
   * removes them later goes by `path`.
   */
  persist(): void {
    live.delete(this);
  }

  /** Best effort for the exit hook, where nothing asynchronous runs. */
  removeSync(): void {
    live.delete(this);
    removeCgroupDirSync(this.path, this.#root);
  }
}

let groupSerial = 0;

/**
 * Confines process `pid` to `cores` in a cgroup of its own. Returns the group (to read throttling
 * from and to remove once the process has gone), or why the quota was not applied.
 */
export async function confineToCpuQuota(
  pid: number,
  cores: number,
  label: string,
  root = CGROUP_V1_CPU,
): Promise<{ group: CpuCgroup } | { notApplied: string }> {
  const unavailable = await cpuQuotaUnavailable(root);
  if (unavailable !== null) return { notApplied: unavailable };
  const name = `hop-bench-${process.pid}-${++groupSerial}-${label.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  let group: CpuCgroup;
  try {
    group = await CpuCgroup.create(name, cores, root);
  } catch (err) {
    return { notApplied: `could not create cgroup ${join(root, name)}: ${String(err)}` };
  }
  try {
    await group.addProcess(pid);
  } catch (err) {
    await group.remove().catch(() => {});
    return { notApplied: `could not move pid ${pid} into ${group.path}: ${String(err)}` };
  }
  return { group };
}
