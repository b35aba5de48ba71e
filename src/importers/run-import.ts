// The import run every source shares: page by page, build Hop links, register their domains, write
// them (idempotent), settle clashes, write visits, click counts and orphan visits as batches with
// derived ids, then record the page in the state file. A re-run resumes after the last page
// written; one from the start finds everything unchanged and writes no batch twice.

import { generateCode } from '../domain/codes.ts';
import { linkKey } from '../domain/domains.ts';
import { isHopError } from '../domain/errors.ts';
import type { Link } from '../domain/link.ts';
import { domainRegistrar } from '../domains/domain-registrar.ts';
import type { Store } from '../storage/ports.ts';
import { type BuildContext, buildLink, codeProblem, storedDomain } from './build-link.ts';
import { type ClashPolicy, regenerate } from './clash.ts';
import { countBatch, HourGroups, orphanBatch, visitBatch } from './clicks.ts';
import { mapLimit } from './concurrency.ts';
import {
  type ImportSource,
  SourceError,
  type SourceLink,
  type SourceOrphan,
  type SourcePage,
  type SourceVisit,
} from './source.ts';
import { loadState, saveState } from './state.ts';

export type ImportTarget = Pick<
  Store,
  'importLinks' | 'listDomains' | 'createDomain' | 'recordClickBatch' | 'recordOrphans'
>;

export interface RunOptions {
  readonly onClash: ClashPolicy;
  readonly statePath: string;
  /** False: links only (no visits, counts or orphan visits). */
  readonly visits: boolean;
  readonly codeLength: number;
  /** Links whose visits are read and written at once. */
  readonly concurrency?: number;
}

export interface ImportIo {
  /** A message line (stderr). */
  log(line: string): void;
  /** The progress line (stderr). */
  progress(text: string): void;
}

export interface ImportCounts {
  created: number;
  unchanged: number;
  conflicts: number;
  failed: number;
  /** Imported under a new code (--on-clash regenerate). */
  regenerated: number;
  /** Imported with a warning (a rule Hop cannot take left out, a banned link disabled). */
  withNotes: number;
  visits: number;
  /** Visits in batches an earlier run wrote already. */
  visitsAlready: number;
  /** Clicks carried as counts (Kutt, YOURLS). */
  counted: number;
  countedAlready: number;
  orphans: number;
  orphansAlready: number;
  pages: number;
}

export interface ImportResult {
  readonly counts: ImportCounts;
  /** Why the run stopped before the end, or null. */
  readonly stopped: string | null;
  readonly seconds: number;
}

export async function importFromSource(
  source: ImportSource,
  store: ImportTarget,
  ctx: BuildContext,
  opts: RunOptions,
  io: ImportIo,
): Promise<ImportResult> {
  const started = performance.now();
  const counts: ImportCounts = {
    created: 0,
    unchanged: 0,
    conflicts: 0,
    failed: 0,
    regenerated: 0,
    withNotes: 0,
    visits: 0,
    visitsAlready: 0,
    counted: 0,
    countedAlready: 0,
    orphans: 0,
    orphansAlready: 0,
    pages: 0,
  };
  const state = loadState(opts.statePath, source.name, source.origin);
  if (state.complete) {
    io.log(
      `${source.name}: an earlier import read all of ${source.origin}; reading it again (nothing is written twice).`,
    );
    state.cursor = null;
    state.complete = false;
  } else if (state.cursor !== null) {
    io.log(`${source.name}: resuming where the last run stopped (${opts.statePath}).`);
  }
  let label = '';
  let total: number | null = null;
  const seen = () =>
    counts.created + counts.unchanged + counts.conflicts + counts.failed + counts.regenerated;
  const show = () => {
    const secs = (performance.now() - started) / 1000;
    io.progress(
      `${source.name}: ${label} · ${seen()}${total === null ? '' : ` of ${total}`} links (${counts.created + counts.regenerated} new, ${counts.unchanged} unchanged, ${counts.conflicts} conflicts, ${counts.failed} failed) · ${counts.visits + counts.visitsAlready} visits · ${secs.toFixed(0)} s`,
    );
  };

  const register = await domainRegistrar(store, io.log);

  const writeVisits = async (src: SourceLink, key: string, createdAt: number) => {
    if (src.clicks !== undefined && src.clicks > 0) {
      const applied =
        (await store.recordClickBatch(countBatch(source.name, key, createdAt, src.clicks))) === 'applied';
      if (applied) counts.counted += src.clicks;
      else counts.countedAlready += src.clicks;
    }
    if (src.visits === undefined) return;
    const groups = new HourGroups<SourceVisit>();
    const write = async (gs: { hour: number; seq: number; items: SourceVisit[] }[]) => {
      for (const g of gs) {
        const applied = (await store.recordClickBatch(visitBatch(source.origin, key, g))) === 'applied';
        if (applied) counts.visits += g.items.length;
        else counts.visitsAlready += g.items.length;
      }
      show();
    };
    for await (const page of src.visits()) for (const v of page) await write(groups.add(v));
    await write(groups.finish());
  };

  const writeOrphans = async (stream: () => AsyncIterable<readonly SourceOrphan[]>) => {
    const groups = new HourGroups<SourceOrphan>();
    const domainOf = (host: string | null) => {
      try {
        return storedDomain(host, ctx.defaultHost);
      } catch {
        return '';
      }
    };
    const write = async (gs: { hour: number; seq: number; items: SourceOrphan[] }[]) => {
      for (const g of gs) {
        const applied = (await store.recordOrphans(orphanBatch(source.origin, g, domainOf))) === 'applied';
        if (applied) counts.orphans += g.items.length;
        else counts.orphansAlready += g.items.length;
      }
    };
    for await (const page of stream()) for (const o of page) await write(groups.add(o));
    await write(groups.finish());
  };

  const writePage = async (page: SourcePage) => {
    for (const f of page.failures ?? []) {
      counts.failed++;
      io.log(`${f.ref}: failed: ${f.reason}`);
    }
    const built: { src: SourceLink; sourceKey: string; link: Link; notes: string[] }[] = [];
    for (const src of page.links) {
      try {
        const sourceKey = `${storedDomain(src.domain, ctx.defaultHost)}/${src.code}`;
        let code = state.regenerated[sourceKey] ?? src.code;
        const problem = codeProblem(code);
        if (problem !== null) {
          if (opts.onClash !== 'regenerate') throw problem;
          code = generateCode(opts.codeLength);
          io.log(`${src.ref}: ${problem.detail} Drawing a new code for it.`);
        }
        const { link, notes } = buildLink(src, code, ctx);
        built.push({ src, sourceKey, link, notes });
      } catch (e) {
        if (!isHopError(e)) throw e;
        counts.failed++;
        io.log(`${src.ref}: failed: ${e.code}: ${e.detail}`);
      }
    }
    await register(built.map((b) => b.link));
    const statuses = built.length === 0 ? [] : await store.importLinks(built.map((b) => b.link));
    const imported: { src: SourceLink; link: Link }[] = [];
    for (let i = 0; i < built.length; i++) {
      const b = built[i]!;
      let link = b.link;
      const status = statuses[i]!;
      const renamed = link.code !== b.src.code;
      if (status === 'conflict') {
        const where = `"${link.code}"${link.domain === '' ? '' : ` on ${link.domain}`}`;
        if (opts.onClash === 'keep') {
          counts.conflicts++;
          io.log(
            `${b.src.ref}: conflict: ${where} already exists with a different mapping; kept the existing one${b.src.visits !== undefined || (b.src.clicks ?? 0) > 0 ? ' (its visits are not imported)' : ''}`,
          );
          continue;
        }
        link = await regenerate(store, link, opts.codeLength);
        io.log(`${b.src.ref}: ${where} is taken by another link; imported as "${link.code}"`);
        counts.regenerated++;
      } else if (renamed && status === 'created') {
        counts.regenerated++;
        io.log(`${b.src.ref}: imported as "${link.code}"`);
      } else counts[status]++;
      if (link.code !== b.src.code) state.regenerated[b.sourceKey] = link.code;
      if (b.notes.length > 0) {
        counts.withNotes++;
        for (const n of b.notes) io.log(`${b.src.ref}: ${n}`);
      }
      imported.push({ src: b.src, link });
    }
    show();
    if (opts.visits) {
      await mapLimit(imported, opts.concurrency ?? 4, ({ src, link }) =>
        writeVisits(src, linkKey(link.domain, link.code), link.createdAt.getTime()),
      );
      if (page.orphans !== undefined) await writeOrphans(page.orphans);
    }
  };

  let stopped: string | null = null;
  try {
    for await (const page of source.pages(state.cursor, state.extra)) {
      label = page.label;
      total = page.total ?? total;
      await writePage(page);
      counts.pages++;
      state.cursor = page.cursor;
      saveState(opts.statePath, state);
      show();
    }
    state.complete = true;
  } catch (e) {
    if (e instanceof SourceError) stopped = e.message;
    else if (isHopError(e)) stopped = `${e.code}: ${e.detail}`;
    else throw e;
  } finally {
    // Codes drawn for clashes on an unfinished page are kept too, so the next run reuses them.
    saveState(opts.statePath, state);
  }
  return { counts, stopped, seconds: (performance.now() - started) / 1000 };
}
