// `hop move-store --to <HOP_DATABASE_URLS>`: the embedded database (HOP_DATA_DIR, its Hop stopped)
// copied into a PostgreSQL cluster by bucket and verified; `--verify-only` compares and copies
// nothing. The work is src/resharding/move-store.ts; runbook: docs/runbooks/move-store.md.
import { type Config, loadConfig } from '../config.ts';
import { MoveRefused, moveStore } from '../resharding/move-store.ts';

const USAGE = 'Usage: hop move-store --to <HOP_DATABASE_URLS> [--data-dir DIR] [--verify-only]';

export async function runMoveStore(
  config: Config,
  opts: { to: string | undefined; verifyOnly: boolean },
  out: (line: string) => void,
  err: (line: string) => void,
): Promise<number> {
  if (opts.to === undefined || opts.to.trim() === '') {
    err(
      `${USAGE}\n--to names the cluster, in HOP_DATABASE_URLS's form: shards ;-separated, each primaryURL[,replicaURL…].`,
    );
    return 2;
  }
  if (config.dataDir === null) {
    err('The embedded database is in memory (HOP_DATA_DIR=:memory:): there is nothing to move.');
    return 2;
  }
  let cluster: NonNullable<Config['databaseUrls']>;
  try {
    // The cluster is read exactly as HOP_DATABASE_URLS is.
    cluster = loadConfig({ 'database-urls': opts.to }, {}).databaseUrls!;
  } catch (e) {
    err(`--to: ${(e as Error).message.replace('--database-urls', '--to')}`);
    return 2;
  }
  try {
    const r = await moveStore({
      dataDir: config.dataDir,
      changeLog: config.changeLog,
      codeLength: config.codeLength,
      cluster,
      verifyOnly: opts.verifyOnly,
      out,
    });
    return r.identical ? 0 : 1;
  } catch (e) {
    if (e instanceof MoveRefused) {
      err(e.message);
      return 1;
    }
    throw e;
  }
}
