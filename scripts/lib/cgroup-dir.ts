// Removing a cgroup (v1, any controller): a group holding processes cannot go, so they are moved
// back to the parent first; then the directory is removed with rmdir alone (its control files
// cannot be unlinked). Shared by the CPU groups (scripts/lib/cpu-cgroup.ts) and memory groups.
import { readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export async function removeCgroupDir(path: string, parent: string): Promise<void> {
  try {
    const procs = (await readFile(join(path, 'cgroup.procs'), 'utf8')).split('\n').filter(Boolean);
    for (const pid of procs) await writeFile(join(parent, 'cgroup.procs'), pid).catch(() => {});
  } catch {
    // Already gone, or unreadable: rmdir below says which.
  }
  await rmdir(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}

/** Best effort for exit hooks, where nothing asynchronous runs. */
export function removeCgroupDirSync(path: string, parent: string): void {
  try {
    for (const pid of readFileSync(join(path, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
      writeFileSync(join(parent, 'cgroup.procs'), pid);
    }
    rmdirSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    process.stderr.write(`# could not remove cgroup ${path} (${String(err)}); remove it with rmdir\n`);
  }
}
