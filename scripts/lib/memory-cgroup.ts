// A memory limit for a process, the way a container gets one: a cgroup v1 memory controller group
// (root only) with `memory.limit_in_bytes` set, and what the kernel did there (the peak it
// charged, how often the limit was hit, OOM kills). The test that Hop fits 320 MiB and the
// memory bench's 256 MiB run both use it.
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { removeCgroupDir, removeCgroupDirSync } from './cgroup-dir.ts';

export const CGROUP_V1_MEMORY = '/sys/fs/cgroup/memory';

/**
 * Where new groups go by default: inside the memory group this process already runs in, so that a
 * limit (or a supervisor's accounting) over whoever started us still covers what we start; the
 * controller's root when that group is not visible here (e.g. behind a cgroup namespace).
 */
export function defaultMemoryParent(mount = CGROUP_V1_MEMORY): string {
  try {
    for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
      const [, controllers, path] = line.split(':');
      if (path === undefined || !(controllers ?? '').split(',').includes('memory')) continue;
      const own = join(mount, path);
      if (existsSync(join(own, 'memory.limit_in_bytes'))) return own;
    }
  } catch {
    // No /proc/self/cgroup: the root it is.
  }
  return mount;
}

/** Why a memory-limited group cannot be made here, or null when it can. */
export function memoryCgroupUnavailable(root = defaultMemoryParent()): string | null {
  if (process.getuid?.() !== 0) return 'not root';
  if (!existsSync(join(root, 'memory.limit_in_bytes'))) return `no cgroup v1 memory controller at ${root}`;
  return null;
}

export interface MemoryCgroupReport {
  /** The most the kernel charged to the group (anonymous memory and page cache), bytes. */
  readonly maxUsageBytes: number;
  /** What it charges now, bytes. */
  readonly usageBytes: number;
  /** Of that, anonymous memory (what a process holds) and page cache (files; reclaimable), bytes. */
  readonly rssBytes: number;
  readonly cacheBytes: number;
  /** The most charged came to the limit: the kernel had to reclaim (or, failing that, kill). */
  readonly reachedLimit: boolean;
  /**
   * Times a charge met the limit, as the kernel counts them (memory.failcnt, or memsw.failcnt where
   * swap is accounted). Some kernels leave these at 0 even then (6.18 here does): `reachedLimit` is
   * the reliable sign.
   */
  readonly limitHits: number;
  /** Processes the OOM killer ended in the group. */
  readonly oomKills: number;
}

/** Parses memory.stat (`key value` lines) into numbers. */
export function parseMemoryStat(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [key, value] = line.trim().split(/\s+/);
    if (key !== undefined && value !== undefined && key !== '') out.set(key, Number(value));
  }
  return out;
}

const live = new Set<MemoryCgroup>();
let hooked = false;

export class MemoryCgroup {
  readonly path: string;
  readonly limitBytes: number;
  readonly #root: string;

  private constructor(root: string, path: string, limitBytes: number) {
    this.#root = root;
    this.path = path;
    this.limitBytes = limitBytes;
  }

  /** Creates `<root>/<name>` limited to `limitBytes` (swap is not used here). */
  static async create(name: string, limitBytes: number, root = defaultMemoryParent()): Promise<MemoryCgroup> {
    const path = join(root, name);
    await mkdir(path);
    const group = new MemoryCgroup(root, path, limitBytes);
    live.add(group);
    if (!hooked) {
      hooked = true;
      // An interrupted run must not leave groups behind: they outlive the process otherwise.
      process.on('exit', () => {
        for (const g of live) g.removeSync();
      });
    }
    try {
      await writeFile(join(path, 'memory.limit_in_bytes'), String(limitBytes));
      // Without swap a container's limit is its whole memory: the same here where swap exists.
      if (existsSync(join(path, 'memory.memsw.limit_in_bytes'))) {
        await writeFile(join(path, 'memory.memsw.limit_in_bytes'), String(limitBytes));
      }
    } catch (err) {
      await group.remove();
      throw err;
    }
    return group;
  }

  /**
   * The argv that runs `argv` inside the group from its first instruction (the shell moves itself
   * in, then execs), so nothing it allocates before a later move escapes the limit. The process
   * keeps the shell's pid.
   */
  wrap(argv: readonly string[]): string[] {
    const quoted = argv.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
    return ['/bin/sh', '-c', `echo $$ > '${join(this.path, 'cgroup.procs')}' && exec ${quoted}`];
  }

  async report(): Promise<MemoryCgroupReport> {
    const read = async (file: string) => (await readFile(join(this.path, file), 'utf8')).trim();
    const oom = await read('memory.oom_control').catch(() => '');
    const stat = parseMemoryStat(await read('memory.stat').catch(() => ''));
    const maxUsageBytes = Number(await read('memory.max_usage_in_bytes'));
    const limitHits = Math.max(
      Number(await read('memory.failcnt')),
      Number(await read('memory.memsw.failcnt').catch(() => '0')),
    );
    return {
      maxUsageBytes,
      usageBytes: Number(await read('memory.usage_in_bytes')),
      rssBytes: stat.get('total_rss') ?? stat.get('rss') ?? 0,
      cacheBytes: stat.get('total_cache') ?? stat.get('cache') ?? 0,
      // The kernel keeps the limit in whole pages: compare with what it kept.
      reachedLimit: limitHits > 0 || maxUsageBytes >= Number(await read('memory.limit_in_bytes')),
      limitHits,
      oomKills: Number(/^oom_kill (\d+)$/m.exec(oom)?.[1] ?? 0),
    };
  }

  /** Moves anything still inside back to the parent (a non-empty group cannot go), then removes it. */
  async remove(): Promise<void> {
    await removeCgroupDir(this.path, this.#root);
    live.delete(this);
  }

  removeSync(): void {
    live.delete(this);
    removeCgroupDirSync(this.path, this.#root);
  }
}

let serial = 0;

/**
 * A group of its own limited to `limitBytes`, named for this process and `label`, or why none can
 * be made here (then the caller runs unconfined and says so). Remove it once its processes are gone.
 */
export async function limitMemory(
  label: string,
  limitBytes: number,
  root = defaultMemoryParent(),
): Promise<{ group: MemoryCgroup } | { notApplied: string }> {
  const unavailable = memoryCgroupUnavailable(root);
  if (unavailable !== null) return { notApplied: unavailable };
  const name = `hop-${process.pid}-${++serial}-${label.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  try {
    return { group: await MemoryCgroup.create(name, limitBytes, root) };
  } catch (err) {
    return { notApplied: `could not create memory cgroup ${join(root, name)}: ${String(err)}` };
  }
}
