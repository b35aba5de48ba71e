// hop export / hop import — links as JSON Lines, for backups and moves between installations; and
// hop import --from — another shortener's links, visits and counts (src/importers/).

import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Config } from '../config.ts';
import { openStore, urlPolicyFor } from '../deps.ts';
import { requestHost } from '../domain/domains.ts';
import { isHopError } from '../domain/errors.ts';
import { parseImportLine } from '../domain/import-line.ts';
import type { Link } from '../domain/link.ts';
import { domainRegistrar } from '../domains/domain-registrar.ts';
import { CLASH_POLICIES, type ClashPolicy } from '../importers/clash.ts';
import { Progress } from '../importers/progress.ts';
import { type ImportResult, importFromSource } from '../importers/run-import.ts';
import { type ImportSource, SourceError } from '../importers/source.ts';
import { sourceFor } from '../importers/sources.ts';
import { defaultStatePath } from '../importers/state.ts';
import { linkToJson } from '../storage/link-json.ts';
import type { ImportStatus } from '../storage/ports.ts';

const BATCH = 5000;

export async function runExport(
  config: Config,
  opts: { output: string | null; includeDeleted: boolean },
  err: (l: string) => void,
): Promise<number> {
  const store = await openStore(config);
  const sink = opts.output === null ? process.stdout : createWriteStream(opts.output);
  let n = 0;
  try {
    for await (const link of store.exportLinks({ includeDeleted: opts.includeDeleted })) {
      // A link on the default domain is written without one: it lands on the importer's default domain.
      const { bucket: _bucket, ...line } = linkToJson(link);
      if (!sink.write(`${JSON.stringify(line)}\n`)) await once(sink, 'drain');
      n++;
    }
  } finally {
    await store.close();
    if (sink !== process.stdout) await new Promise<void>((resolve) => sink.end(() => resolve()));
  }
  err(`Exported ${n} links.`);
  return 0;
}

export async function runImport(
  config: Config,
  file: string,
  out: (l: string) => void,
  err: (l: string) => void,
): Promise<number> {
  const store = await openStore(config);
  const policy = urlPolicyFor(config);
  const defaultHost = requestHost(new URL(config.publicUrl).host);
  // Domains the lines name are registered as they are met (an export carries its links' domains).
  const register = await domainRegistrar(store, err);
  const counts: Record<ImportStatus | 'invalid', number> = {
    created: 0,
    unchanged: 0,
    conflict: 0,
    invalid: 0,
  };
  let batch: { line: number; link: Link }[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    await register(batch.map((b) => b.link));
    const statuses = await store.importLinks(batch.map((b) => b.link));
    statuses.forEach((s, i) => {
      counts[s]++;
      if (s === 'conflict') {
        const b = batch[i]!;
        err(
          `line ${b.line}: conflict: code "${b.link.code}"${b.link.domain === '' ? '' : ` on ${b.link.domain}`} already exists with a different mapping; kept the existing one`,
        );
      }
    });
    batch = [];
  };
  const started = performance.now();
  try {
    const input = file === '-' ? process.stdin : createReadStream(file);
    const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
    let lineNo = 0;
    const now = Date.now();
    for await (const raw of lines) {
      lineNo++;
      if (raw.trim() === '') continue;
      try {
        batch.push({ line: lineNo, link: parseImportLine(raw, policy, now, defaultHost) });
      } catch (e) {
        if (!isHopError(e)) throw e;
        counts.invalid++;
        err(`line ${lineNo}: ${e.code}: ${e.detail}`);
      }
      if (batch.length >= BATCH) await flush();
    }
    await flush();
  } finally {
    await store.close();
  }
  const secs = (performance.now() - started) / 1000;
  out(
    `Imported: ${counts.created} created, ${counts.unchanged} unchanged, ${counts.conflict} conflicts, ${counts.invalid} invalid lines (${secs.toFixed(1)} s).`,
  );
  return counts.conflict + counts.invalid > 0 ? 1 : 0;
}

export interface SourceImportOptions {
  readonly from: string;
  readonly url?: string | undefined;
  readonly key?: string | undefined;
  readonly signature?: string | undefined;
  readonly token?: string | undefined;
  readonly file?: string | undefined;
  readonly state?: string | undefined;
  readonly onClash?: string | undefined;
  readonly skipVisits: boolean;
}

/** `hop import --from shlink|kutt|yourls|bitly|csv …`: another shortener's links, visits and counts. */
export async function runSourceImport(
  config: Config,
  o: SourceImportOptions,
  out: (l: string) => void,
  err: (l: string) => void,
): Promise<number> {
  const progress = new Progress(process.stderr);
  const onClash = o.onClash ?? 'keep';
  if (!(CLASH_POLICIES as readonly string[]).includes(onClash)) {
    err(`--on-clash must be keep or regenerate; got "${onClash}".`);
    return 2;
  }
  let source: ImportSource;
  try {
    source = sourceFor(o.from, { ...o, onRetry: (m) => progress.log(m) });
  } catch (e) {
    if (!(e instanceof SourceError)) throw e;
    err(e.message);
    return 2;
  }
  const statePath = o.state ?? defaultStatePath(config.dataDir ?? process.cwd(), source.name, source.origin);
  const store = await openStore(config);
  let result: ImportResult;
  try {
    result = await importFromSource(
      source,
      store,
      {
        policy: urlPolicyFor(config),
        now: Date.now(),
        defaultHost: requestHost(new URL(config.publicUrl).host),
      },
      {
        onClash: onClash as ClashPolicy,
        statePath,
        visits: !o.skipVisits,
        codeLength: config.codeLength,
      },
      { log: (l) => progress.log(l), progress: (t) => progress.update(t) },
    );
  } catch (e) {
    progress.end();
    if (e instanceof SourceError) {
      err(e.message);
      return 1;
    }
    throw e;
  } finally {
    await store.close();
  }
  progress.end();
  const c = result.counts;
  const links = c.created + c.unchanged + c.conflicts + c.failed + c.regenerated;
  const extras = [
    c.regenerated > 0 ? `${c.regenerated} under new codes` : '',
    c.withNotes > 0 ? `${c.withNotes} with warnings` : '',
  ].filter((s) => s !== '');
  const parts = [
    `${source.name}: ${c.created + c.regenerated} imported, ${c.unchanged} unchanged, ${c.conflicts} conflicts, ${c.failed} failed${extras.length > 0 ? ` (${extras.join(', ')})` : ''}`,
  ];
  if (c.visits + c.visitsAlready > 0)
    parts.push(`visits: ${c.visits} imported, ${c.visitsAlready} already there`);
  if (c.counted + c.countedAlready > 0)
    parts.push(`clicks counted: ${c.counted} imported, ${c.countedAlready} already there`);
  if (c.orphans + c.orphansAlready > 0)
    parts.push(`orphan visits: ${c.orphans} imported, ${c.orphansAlready} already there`);
  const secs = Math.max(result.seconds, 0.001);
  parts.push(
    `${result.seconds.toFixed(1)} s (${(links / secs).toFixed(0)} links/s, ${((c.visits + c.visitsAlready) / secs).toFixed(0)} visits/s)`,
  );
  out(parts.join('; '));
  if (result.stopped !== null) {
    err(`Stopped: ${result.stopped}`);
    err(`Run the same command again to resume after the last page written (state: ${statePath}).`);
    return 1;
  }
  return c.conflicts + c.failed > 0 ? 1 : 0;
}
