// npm run drill -- [--shape embedded|cluster] [--links N] [--disaster drop-table|lose-data-dir|mass-delete] [--json]
// The restore drill (issue #20): seed, back up, keep writing, cause the disaster, restore, replay,
// and check every acknowledged link, the API key and a webhook. Prints RTO, RPO with and without the
// replay step, the backup's size and duration, and the restore's rows/s. Exits 1 when any
// acknowledged link is lost or wrong after the full recovery.
import { parseArgs } from 'node:util';
import {
  DISASTERS,
  type Disaster,
  type DrillOptions,
  type DrillResult,
  formatResult,
} from './drill/common.ts';

const USAGE =
  'Usage: npm run drill -- [--shape embedded|cluster] [--links N] [--disaster drop-table|lose-data-dir|mass-delete] ' +
  '[--write-ms MS] [--shards N] [--replicas N] [--archive-timeout S] [--json]';

export async function runDrill(shape: 'embedded' | 'cluster', opts: DrillOptions): Promise<DrillResult> {
  if (shape === 'embedded') {
    const { runEmbeddedDrill } = await import('./drill/embedded.ts');
    return runEmbeddedDrill(opts);
  }
  const { runClusterDrill } = await import('./drill/cluster.ts');
  return runClusterDrill(opts);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      shape: { type: 'string', default: 'embedded' },
      links: { type: 'string', default: '100000' },
      disaster: { type: 'string', default: 'lose-data-dir' },
      'write-ms': { type: 'string' },
      shards: { type: 'string' },
      replicas: { type: 'string' },
      'archive-timeout': { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  const links = Number(values.links);
  const shape = values.shape;
  const disaster = values.disaster as Disaster;
  if (
    values.help ||
    (shape !== 'embedded' && shape !== 'cluster') ||
    !DISASTERS.includes(disaster) ||
    !Number.isInteger(links) ||
    links < 100
  ) {
    console.error(USAGE);
    return 2;
  }
  const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  const result = await runDrill(shape, {
    links,
    disaster,
    writeMs: num(values['write-ms']),
    shards: num(values.shards),
    replicas: num(values.replicas),
    archiveTimeoutS: num(values['archive-timeout']),
    log: (line) => {
      process.stderr.write(`[drill] ${line}\n`);
    },
  });
  console.log(values.json ? JSON.stringify(result, null, 2) : formatResult(result));
  return result.ok ? 0 : 1;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then(
    (code) => process.exit(code),
    (err) => {
      console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
      process.exit(1);
    },
  );
}
