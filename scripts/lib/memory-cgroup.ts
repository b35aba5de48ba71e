// A memory limit for a process, the way a container gets one: a cgroup v1 memory controller group
// (root only) with `memory.limit_in_bytes` set, and what the kernel did there (the peak it
// charged, how often the limit was hit, OOM kills). The test that Hop fits 320 MiB and the
// memory bench's 256 MiB run both use it.
import { existsSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const CGROUP_V1_MEMORY = '/sys/fs/cgroup/memory';

/** Why a memory-limited group cannot be made here, or null when it can. */
export function memoryCgroupUnavailable(root = CGROUP_V1_MEMORY): string | null {
  if (process.getuid?.() !== 0) return 'not root';
  if (!existsSync(join(root, 'memory.limit_in_bytes'))) return `no cgroup v1 memory controller at ${root}`;
  return null;
}

export interface MemoryCgroupReport {
  /** The most the kernel charged to the group (anonymous memory and page cache), bytes. */
  readonly maxUsageBytes: number;
  /** Times the limit was reached (the kernel then reclaims, and kills only if it cannot). */
  readonly limitHits: number;
  /** Processes the OOM killer ended in the group. */
  readonly oomKills: number;
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
  static async create(name: string, limitBytes: number, root = CGROUP_V1_MEMORY): Promise<MemoryCgroup> {
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
   * in, then execs), so nothing it allocates before a later move escapes the limit.
   */
  wrap(argv: readonly string[]): string[] {
    const quoted = argv.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
    return ['/bin/sh', '-c', `echo $$ > '${join(this.path, 'cgroup.procs')}' && exec ${quoted}`];
  }

  async report(): Promise<MemoryCgroupReport> {
    const read = async (file: string) => (await readFile(join(this.path, file), 'utf8')).trim();
    const oom = await read('memory.oom_control').catch(() => '');
    return {
      maxUsageBytes: Number(await read('memory.max_usage_in_bytes')),
      limitHits: Number(await read('memory.failcnt')),
      oomKills: Number(/^oom_kill (\d+)$/m.exec(oom)?.[1] ?? 0),
    };
  }

  /** Moves anything still inside back to the parent (a non-empty group cannot go), then removes it. */
  async remove(): Promise<void> {
    try {
      const procs = (await readFile(join(this.path, 'cgroup.procs'), 'utf8')).split('\n').filter(Boolean);
      for (const pid of procs) await writeFile(join(this.#root, 'cgroup.procs'), pid).catch(() => {});
    } catch {}
    await rmdir(this.path).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    live.delete(this);
  }

  removeSync(): void {
    live.delete(this);
    try {
      for (const pid of readFileSync(join(this.path, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
        writeFileSync(join(this.#root, 'cgroup.procs'), pid);
      }
      rmdirSync(this.path);
    } catch {}
  }
}
