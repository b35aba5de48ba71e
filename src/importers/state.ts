// How far an import got, in a small JSON file written after every page (atomically: a crash leaves
// the old file or the new one), so a re-run resumes there. It also keeps the codes given to links
// imported under a new code (--on-clash regenerate), so a re-run reuses them instead of drawing again.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { SourceError } from './source.ts';

export interface ImportState {
  readonly source: string;
  readonly origin: string;
  /** The source's position after the last page written; null: the start. */
  cursor: unknown;
  /** The last run read every page; the next one starts over (and finds everything unchanged). */
  complete: boolean;
  /** Source link (`domain/code`, '' domain for its default) → the code it was imported under. */
  regenerated: Record<string, string>;
  /** Anything the source keeps across pages (e.g. Shlink's default host). */
  extra: Record<string, string>;
}

/** `import-<source>-<8 hex of the origin>.json` in `dir`: one file per source read. */
export function defaultStatePath(dir: string, source: string, origin: string): string {
  const h = createHash('sha256').update(origin).digest('hex').slice(0, 8);
  return join(dir, `import-${source}-${h}.json`);
}

export function loadState(path: string, source: string, origin: string): ImportState {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT')
      return { source, origin, cursor: null, complete: false, regenerated: {}, extra: {} };
    throw e;
  }
  let s: Partial<ImportState>;
  try {
    s = JSON.parse(text) as Partial<ImportState>;
  } catch {
    throw new SourceError(`The state file ${path} is not JSON; remove it to start over.`);
  }
  if (s.source !== source || s.origin !== origin)
    throw new SourceError(
      `The state file ${path} is for ${s.source ?? '?'} ${s.origin ?? '?'}, not ${source} ${origin}; give another --state.`,
    );
  return {
    source,
    origin,
    cursor: s.cursor ?? null,
    complete: s.complete === true,
    regenerated: typeof s.regenerated === 'object' && s.regenerated !== null ? s.regenerated : {},
    extra: typeof s.extra === 'object' && s.extra !== null ? s.extra : {},
  };
}

export function saveState(path: string, state: ImportState): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify({ ...state, savedAt: new Date().toISOString() }, null, 1)}\n`);
  renameSync(tmp, path);
}
