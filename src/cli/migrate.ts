// hop migrate — apply migrations (to every shard) and say what was done.
import type { Config } from '../config.ts';
import { openStore } from '../deps.ts';
import type { MigrationReport } from '../storage/ports.ts';

const describe = (r: Pick<MigrationReport, 'applied' | 'alreadyApplied'>) =>
  `applied ${r.applied.length ? r.applied.join(', ') : 'nothing new'}; already applied: ${r.alreadyApplied.length}`;

export async function runMigrate(config: Config, out: (l: string) => void): Promise<number> {
  const store = await openStore(config);
  try {
    const r = await store.migrate();
    if (r.perShard === undefined) out(`${store.kind}: ${describe(r)}`);
    else for (const s of r.perShard) out(`${store.kind} shard ${s.shard}: ${describe(s)}`);
    return 0;
  } finally {
    await store.close();
  }
}
