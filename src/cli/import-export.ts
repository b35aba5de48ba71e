// hop export / hop import — links as JSON Lines, for backups and moves between installations.

import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Config } from '../config.ts';
import { openStore, urlPolicyFor } from '../deps.ts';
import { requestHost } from '../domain/domains.ts';
import { isHopError } from '../domain/errors.ts';
import { parseImportLine } from '../domain/import-line.ts';
import type { Link } from '../domain/link.ts';
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
  const known = new Set((await store.listDomains()).map((d) => d.host));
  const register = async (links: readonly Link[]) => {
    for (const l of links) {
      if (known.has(l.domain)) continue;
      await store.createDomain({
        host: l.domain,
        rootRedirect: null,
        notFoundRedirect: null,
        expiredRedirect: null,
        createdAt: new Date(),
      });
      known.add(l.domain);
      err(`Registered domain ${l.domain}.`);
    }
  };
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
