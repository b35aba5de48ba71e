// The `hop` command: serve (default), migrate, keys, export, import, backup, restore, worker, dlq,
// replay. Flags work on every command (flags > environment > defaults); `--help` on each says what it takes.
// Each command's code is loaded when it runs: a server on the embedded default never loads the
// worker's, the dead letters' or the replay's Redis and PostgreSQL clients (tens of MB).
import { parseArgs } from 'node:util';
import { type Config, loadConfig, SETTINGS } from '../config.ts';

const out = (line: string) => process.stdout.write(`${line}\n`);
const err = (line: string) => process.stderr.write(`${line}\n`);

interface Command {
  usage: string;
  summary: string;
  options?: Record<string, { type: 'string' | 'boolean'; help: string }>;
  run(
    config: Config,
    args: { positionals: string[]; values: Record<string, unknown>; publicUrlGiven: boolean },
  ): Promise<number | undefined>;
}

const commands: Record<string, Command> = {
  serve: {
    usage: 'hop serve [config flags]',
    summary: 'Serve the API, redirects and metrics (the default command)',
    async run(config, a) {
      const { serve } = await import('../main.ts');
      await serve(config, a.publicUrlGiven, out);
      return undefined; // keeps running until SIGTERM
    },
  },
  migrate: {
    usage: 'hop migrate',
    summary: 'Apply database migrations (safe to re-run); serve also does this on start',
    run: async (config) => (await import('./migrate.ts')).runMigrate(config, out),
  },
  keys: {
    usage: 'hop keys create [--name NAME] | hop keys list | hop keys revoke <id|prefix>',
    summary: 'Manage API keys (stored hashed; a new key is shown once)',
    options: { name: { type: 'string', help: 'A label for a new key' } },
    run: async (config, a) =>
      (await import('./keys.ts')).runKeys(config, a.positionals, String(a.values.name ?? 'cli'), out, err),
  },
  export: {
    usage: 'hop export [--output FILE] [--include-deleted]',
    summary: 'Write every link as JSON Lines (stdout by default)',
    options: {
      output: { type: 'string', help: 'File to write (default: stdout)' },
      'include-deleted': { type: 'boolean', help: 'Also export tombstones, so their codes stay retired' },
    },
    run: async (config, a) =>
      (await import('./import-export.ts')).runExport(
        config,
        {
          output: (a.values.output as string | undefined) ?? null,
          includeDeleted: a.values['include-deleted'] === true,
        },
        err,
      ),
  },
  backup: {
    usage: 'hop backup [--output FILE]',
    summary: 'Back up the embedded database (asks the running server, or opens a stopped data directory)',
    options: {
      output: {
        type: 'string',
        help: 'File to write (default: hop-backup-<UTC time>.gz in HOP_BACKUP_DIR, else here)',
      },
    },
    run: async (config, a) =>
      (await import('./backup.ts')).runBackup(
        config,
        (a.values.output as string | undefined) ?? null,
        out,
        err,
      ),
  },
  restore: {
    usage: 'hop restore FILE [--data-dir DIR] [--until ISO8601 --change-log LOG]',
    summary:
      'Restore a backup into an empty data directory and check it against the backup; --until: then replay the change log up to that time',
    options: {
      until: {
        type: 'string',
        help: 'point in time: apply the change log (--change-log) up to it; the copy is for hop recover-links, not for serving',
      },
    },
    run: async (config, a) =>
      (await import('./backup.ts')).runRestore(
        config,
        a.positionals[0],
        out,
        err,
        (a.values.until as string | undefined) ?? null,
      ),
  },
  worker: {
    usage: 'hop worker [config flags]',
    summary: 'Write the click stream (Redis Streams) into rollups; run one or more beside Hop',
    async run(config) {
      const { runWorker } = await import('../worker/run-worker.ts');
      await runWorker(config, out);
      return undefined; // keeps running until SIGTERM
    },
  },
  dlq: {
    usage:
      'hop dlq list [--limit N] | hop dlq show <id> | hop dlq replay <id…|--all> | hop dlq purge <id…|--all>',
    summary: "The click stream's dead letters: list, show, replay after a fix, or purge",
    options: {
      all: { type: 'boolean', help: 'replay or purge every dead letter' },
      limit: { type: 'string', help: 'list at most this many (default 50)' },
    },
    run: async (config, a) =>
      (await import('./dlq.ts')).runDlq(
        config,
        a.positionals,
        { all: a.values.all === true, limit: Math.max(1, Number(a.values.limit ?? 50) || 50) },
        out,
        err,
      ),
  },
  replay: {
    usage:
      'hop replay --into cache [--from SEQ|TIME] | hop replay --into postgres://… --shard N [--from SEQ]',
    summary: 'Rebuild from the change stream: warm a cold Redis cache, or bring a restored shard up to date',
    options: {
      into: { type: 'string', help: 'cache, or the URL of a shard database restored from a base copy' },
      shard: { type: 'string', help: 'with a database: which shard it is (its change stream)' },
      from: {
        type: 'string',
        help: 'first seq (or ISO time, cache only) to replay; a database: after its newest change',
      },
    },
    run: async (config, a) =>
      (await import('./replay.ts')).runReplay(
        config,
        {
          into: a.values.into as string | undefined,
          shard: a.values.shard as string | undefined,
          from: a.values.from as string | undefined,
        },
        out,
        err,
      ),
  },
  'move-store': {
    usage: 'hop move-store --to <HOP_DATABASE_URLS> [--data-dir DIR] [--verify-only]',
    summary:
      'Copy the embedded database (stopped) into a PostgreSQL cluster by bucket, then verify it; a re-run finishes the job',
    options: {
      to: { type: 'string', help: 'the cluster: shards ;-separated, each primaryURL[,replicaURL…]' },
      'verify-only': { type: 'boolean', help: 'copy nothing: compare the two and print what differs' },
    },
    run: async (config, a) =>
      (await import('./move-store.ts')).runMoveStore(
        config,
        { to: a.values.to as string | undefined, verifyOnly: a.values['verify-only'] === true },
        out,
        err,
      ),
  },
  shards: {
    usage:
      'hop shards status | add <primaryURL[,replicaURL…]> | rebalance | move --buckets A-B --to N | remove N | abort | resume',
    summary: 'Reshard online: list placement, add a shard, move buckets, drain and remove a shard',
    options: {
      buckets: { type: 'string', help: 'move: the buckets, A-B or A (0-1023)' },
      to: { type: 'string', help: 'move: the shard that takes them' },
      json: { type: 'boolean', help: 'status: as JSON' },
      'grace-ms': { type: 'string', help: 'how long an old copy stays after its move (default 30000)' },
    },
    run: async (config, a) =>
      (await import('./shards.ts')).runShards(config, a.positionals, a.values, out, err),
  },
  'recover-links': {
    usage:
      'hop recover-links --from <data dir | postgres://…> --since <ISO time> [--until <ISO time>] [--dry-run]',
    summary:
      'Put back links lost to a mistake (deleted since --since, or missing) from a copy taken before it; keeps later writes',
    options: {
      from: {
        type: 'string',
        help: 'the copy from before the mistake: a restored data dir or a database URL',
      },
      since: { type: 'string', help: 'when the mistake began: tombstones made from then on are lifted' },
      until: {
        type: 'string',
        help: 'when it ended: tombstones made from then on are deletes to keep (default: now)',
      },
      'dry-run': { type: 'boolean', help: 'count what would be put back, change nothing' },
    },
    run: async (config, a) =>
      (await import('./recover-links.ts')).runRecoverLinks(
        config,
        {
          from: a.values.from as string | undefined,
          since: a.values.since as string | undefined,
          until: a.values.until as string | undefined,
          dryRun: a.values['dry-run'] === true,
        },
        out,
        err,
      ),
  },
  import: {
    usage:
      'hop import <FILE|-> | hop import --from shlink|kutt|yourls|bitly|csv [--url U] [--key K] [--signature S] [--token T] [--file F] [--state F] [--on-clash keep|regenerate] [--skip-visits]',
    summary:
      'Read links from JSON Lines, or from another shortener (with visits); idempotent; reports errors and carries on',
    options: {
      from: {
        type: 'string',
        help: 'shlink, kutt, yourls, bitly or csv (default: JSON Lines from FILE or stdin)',
      },
      url: {
        type: 'string',
        help: 'shlink, kutt: the server; yourls: its yourls-api.php; bitly: the API (default https://api-ssl.bitly.com)',
      },
      key: { type: 'string', help: 'shlink, kutt: an API key' },
      signature: { type: 'string', help: 'yourls: the API signature token' },
      token: { type: 'string', help: 'bitly: an access token' },
      file: { type: 'string', help: 'csv: the file; yourls: a CSV or SQL dump of its yourls_url table' },
      state: {
        type: 'string',
        help: 'progress kept for resuming (default: import-<source>-<hash>.json in the data dir, else here)',
      },
      'on-clash': {
        type: 'string',
        help: 'a code Hop has with another mapping: keep (default; reported) or regenerate (new code)',
      },
      'skip-visits': { type: 'boolean', help: 'links only: no visits, click counts or orphan visits' },
    },
    run: async (config, a) => {
      const m = await import('./import-export.ts');
      const v = a.values;
      if (v.from === undefined) return m.runImport(config, a.positionals[0] ?? '-', out, err);
      if (a.positionals.length > 0) {
        err('hop import --from reads its source from --url or --file, not from a FILE argument.');
        return 2;
      }
      const str = (k: string) => (typeof v[k] === 'string' ? (v[k] as string) : undefined);
      return m.runSourceImport(
        config,
        {
          from: String(v.from),
          url: str('url'),
          // From the environment too: a command line is visible to every user of the machine.
          key: str('key') ?? process.env.HOP_IMPORT_KEY,
          signature: str('signature') ?? process.env.HOP_IMPORT_SIGNATURE,
          token: str('token') ?? process.env.HOP_IMPORT_TOKEN,
          file: str('file'),
          state: str('state'),
          onClash: str('on-clash'),
          skipVisits: v['skip-visits'] === true,
        },
        out,
        err,
      );
    },
  },
};

function help(name: string | null): string {
  const lines: string[] = [];
  if (name === null || commands[name] === undefined) {
    lines.push('Usage: hop [command] [options]', '', 'Commands:');
    for (const [n, c] of Object.entries(commands)) lines.push(`  ${n.padEnd(9)} ${c.summary}`);
    lines.push('', 'Run "hop <command> --help" for a command\'s options.');
  } else {
    const c = commands[name]!;
    lines.push(`Usage: ${c.usage}`, '', c.summary);
    if (c.options) {
      lines.push('', 'Options:');
      for (const [n, o] of Object.entries(c.options)) lines.push(`  --${n.padEnd(24)} ${o.help}`);
    }
  }
  lines.push('', 'Configuration (flag / environment, default):');
  for (const s of SETTINGS)
    lines.push(`  --${s.flag.padEnd(22)} ${s.env.padEnd(24)} ${s.help}${s.default ? ` [${s.default}]` : ''}`);
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number | undefined> {
  const first = argv[0];
  const name = first !== undefined && !first.startsWith('-') ? first : 'serve';
  const rest = first === name ? argv.slice(1) : argv;
  if (name === 'help') {
    out(help(rest[0] ?? null));
    return 0;
  }
  const cmd = commands[name];
  if (cmd === undefined) {
    err(`Unknown command "${name}".\n\n${help(null)}`);
    return 2;
  }
  const options: Record<string, { type: 'string' | 'boolean' }> = { help: { type: 'boolean' } };
  for (const s of SETTINGS) options[s.flag] = { type: 'string' };
  for (const [n, o] of Object.entries(cmd.options ?? {})) options[n] = { type: o.type };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: rest, options, allowPositionals: true, strict: true });
  } catch (e) {
    err(`${(e as Error).message}\n\n${help(name)}`);
    return 2;
  }
  if (parsed.values.help === true) {
    out(help(name));
    return 0;
  }
  const flags: Record<string, string | undefined> = {};
  for (const s of SETTINGS) {
    const v = parsed.values[s.flag];
    if (typeof v === 'string') flags[s.flag] = v;
  }
  let config: Config;
  try {
    config = loadConfig(flags, process.env);
  } catch (e) {
    err((e as Error).message);
    return 2;
  }
  const publicUrlGiven = flags['public-url'] !== undefined || (process.env.HOP_PUBLIC_URL ?? '') !== '';
  return cmd.run(config, { positionals: parsed.positionals, values: parsed.values, publicUrlGiven });
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== undefined) process.exitCode = code;
  },
  (e: unknown) => {
    err(e instanceof Error ? e.message : String(e));
    process.exitCode = 1;
  },
);
