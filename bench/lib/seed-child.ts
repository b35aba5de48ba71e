// Seeding a stopped Hop's data directory in a child process (like store-admin): the parent's side
// (spawn, bound in time, the figures the child printed) and the child's (open the store, migrate,
// make the seeded link, seed, close). Shared by click-seed and visit-seed.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { SqlClient } from '../../src/storage/sql/sql-client.ts';
import type { SqlStore } from '../../src/storage/sql/sql-store.ts';
import { spawnChild } from './child.ts';

/**
 * Runs the seed module `self` as a child on `dataDir` with `spec`; returns the last line it printed
 * on stdout that starts with `{` (its figures), if any.
 */
export async function runSeedChild(
  name: string,
  self: string,
  dataDir: string,
  spec: unknown,
  opts: { verbose: boolean; timeoutMs: number },
): Promise<string | undefined> {
  const child = spawnChild(name, process.execPath, ['--import', 'tsx', self, dataDir, JSON.stringify(spec)], {
    echoStderr: opts.verbose,
  });
  let figures: string | undefined;
  child.onStdoutLine((l) => {
    if (l.startsWith('{')) figures = l;
  });
  const timer = setTimeout(() => void child.stop(2000), opts.timeoutMs);
  const code = await child.exited;
  clearTimeout(timer);
  if (code !== '0') throw new Error(`${name} failed (exit ${code}):\n${child.outputTail()}`);
  return figures;
}

/**
 * The child's side: when the module at `moduleUrl` is the process's entry point, opens the data
 * directory given on the command line, migrates it, makes the link `spec.code` and runs `seed`.
 * The store is loaded here, not at the top: the generator imports seed modules for their parent side.
 */
export function runAsSeedChild<S extends { code: string }>(
  moduleUrl: string,
  seed: (db: SqlClient, store: SqlStore, spec: S) => Promise<void>,
): void {
  const self = fileURLToPath(moduleUrl);
  if (process.argv[1] === undefined || realpathSync(process.argv[1]) !== self) return;
  (async () => {
    const { openPglite } = await import('../../src/storage/embedded/pglite-client.ts');
    const { SqlStore } = await import('../../src/storage/sql/sql-store.ts');
    const { fields } = await import('../../test/support/fixtures.ts');
    const spec = JSON.parse(process.argv[3] ?? '{}') as S;
    const db = await openPglite(process.argv[2] ?? '');
    const store = new SqlStore(db, { kind: 'embedded', codeLength: 7 });
    try {
      await store.migrate();
      await store.createLink({
        alias: spec.code,
        domain: '',
        fields: fields(),
        createdAt: new Date(),
        idempotency: null,
      });
      await seed(db, store, spec);
    } finally {
      await store.close();
    }
  })().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  });
}
