// hop migrate — apply migrations and say what was done.
import type { Config } from '../config.ts';
import { openStore } from '../deps.ts';

export async function runMigrate(config: Config, out: (l: string) => void): Promise<number> {
  const store = await openStore(config);
  try {
    const r = await store.migrate();
    out(
      `${store.kind}: applied ${r.applied.length ? r.applied.join(', ') : 'nothing new'}; already applied: ${r.alreadyApplied.length}`,
    );
    return 0;
  } finally {
    await store.close();
  }
}
