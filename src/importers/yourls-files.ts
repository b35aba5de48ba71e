// YOURLS from a file: a CSV of its `yourls_url` table (keyword,url,title,timestamp,ip,clicks, with
// or without that header line) or an SQL dump holding that table's INSERT statements (mysqldump's
// or phpMyAdmin's; tables of other names are passed over). Read as a stream: a dump may be large.
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { csvRecords, detectDelimiter, type FileRecord, recordPages } from './csv-file.ts';
import { type ImportSource, SourceError } from './source.ts';
import { yourlsLink } from './yourls.ts';

const COLUMNS = ['keyword', 'url', 'title', 'timestamp', 'ip', 'clicks'] as const;

function rowRecord(values: Record<string, string | null>, ref: string): FileRecord {
  const keyword = values.keyword ?? '';
  const url = values.url ?? '';
  if (keyword === '' || url === '') return { ref, reason: 'no keyword or no url' };
  return {
    link: yourlsLink(
      {
        keyword,
        url,
        title: values.title ?? null,
        timestamp: values.timestamp ?? null,
        clicks: values.clicks ?? 0,
      },
      `${ref} (${keyword})`,
    ),
  };
}

async function* csvRows(file: string): AsyncIterable<FileRecord> {
  let columns: readonly string[] | null = null;
  for await (const { record, line } of csvRecords(file, await detectDelimiter(file))) {
    if (columns === null) {
      const names = record.map((h) => h.trim().toLowerCase());
      columns = names.includes('keyword') && names.includes('url') ? names : COLUMNS;
      if (columns === names) continue;
    }
    const values: Record<string, string | null> = {};
    columns.forEach((c, i) => {
      values[c] = record[i] ?? null;
    });
    yield rowRecord(values, `line ${line}`);
  }
}

/**
 * SQL text as statements, split at the semicolons outside quotes and comments (`-- …`, `# …`,
 * `/* … *\/`), comments dropped.
 */
async function* statements(file: string): AsyncIterable<string> {
  let stmt = '';
  let quote = '';
  let escaped = false;
  let comment: '' | 'line' | 'block' = '';
  let prev = '';
  const stream = createReadStream(file, { encoding: 'utf8' });
  try {
    for await (const chunk of stream as AsyncIterable<string>) {
      let from = 0;
      for (let i = 0; i < chunk.length; i++) {
        const ch = chunk[i]!;
        if (comment === 'line') {
          if (ch === '\n') {
            comment = '';
            from = i + 1;
          }
          prev = ch;
          continue;
        }
        if (comment === 'block') {
          if (prev === '*' && ch === '/') {
            comment = '';
            from = i + 1;
            prev = '';
            continue;
          }
          prev = ch;
          continue;
        }
        if (quote !== '') {
          if (escaped) escaped = false;
          else if (ch === '\\') escaped = true;
          else if (ch === quote) quote = '';
          prev = ch;
          continue;
        }
        if (ch === "'" || ch === '"' || ch === '`') quote = ch;
        else if (ch === '#' || ((ch === '-' || ch === '*') && prev === (ch === '-' ? '-' : '/'))) {
          // The comment's first character is already in `stmt` when the previous chunk ended with it.
          if (ch !== '#' && i === 0) stmt = stmt.slice(0, -1);
          else stmt += chunk.slice(from, ch === '#' ? i : i - 1);
          comment = ch === '*' ? 'block' : 'line';
          prev = '';
          continue;
        } else if (ch === ';') {
          stmt += chunk.slice(from, i);
          if (stmt.trim() !== '') yield stmt;
          stmt = '';
          from = i + 1;
        }
        prev = ch;
      }
      if (comment === '') stmt += chunk.slice(from);
    }
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new SourceError(err.code === 'ENOENT' ? `${file}: no such file.` : `${file}: ${err.message}`);
  }
  if (stmt.trim() !== '') yield stmt;
}

const ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t', '0': '\0', Z: '\u001a', b: '\b' };

/** The tuples of `VALUES (…),(…)`: strings unescaped, NULL as null, anything else as written. */
export function sqlTuples(values: string): (string | null)[][] {
  const tuples: (string | null)[][] = [];
  let i = 0;
  const n = values.length;
  const skipSpace = () => {
    while (i < n && /\s/.test(values[i]!)) i++;
  };
  while (i < n) {
    skipSpace();
    if (values[i] !== '(') break;
    i++;
    const tuple: (string | null)[] = [];
    for (;;) {
      skipSpace();
      const ch = values[i];
      if (ch === "'" || ch === '"') {
        let s = '';
        i++;
        while (i < n) {
          const c = values[i]!;
          if (c === '\\' && i + 1 < n) {
            const e = values[i + 1]!;
            s += ESCAPES[e] ?? e;
            i += 2;
          } else if (c === ch && values[i + 1] === ch) {
            s += ch;
            i += 2;
          } else if (c === ch) {
            i++;
            break;
          } else {
            s += c;
            i++;
          }
        }
        tuple.push(s);
      } else {
        const start = i;
        while (i < n && values[i] !== ',' && values[i] !== ')') i++;
        const raw = values.slice(start, i).trim();
        tuple.push(raw.toUpperCase() === 'NULL' ? null : raw);
      }
      skipSpace();
      if (values[i] === ',') {
        i++;
        continue;
      }
      if (values[i] === ')') i++;
      break;
    }
    tuples.push(tuple);
    skipSpace();
    if (values[i] === ',') i++;
  }
  return tuples;
}

const INSERT =
  /^\s*INSERT\s+(?:IGNORE\s+)?INTO\s+[`"]?(?:\w+[`"]?\.[`"]?)?(\w*url)[`"]?\s*(?:\(([^)]*)\))?\s*VALUES\s*/i;

async function* sqlRows(file: string): AsyncIterable<FileRecord> {
  let n = 0;
  for await (const stmt of statements(file)) {
    const m = INSERT.exec(stmt);
    if (m === null || !/(^|_)url$/i.test(m[1]!)) continue;
    const columns =
      m[2] === undefined ? COLUMNS : m[2].split(',').map((c) => c.trim().replace(/[`"]/g, '').toLowerCase());
    for (const tuple of sqlTuples(stmt.slice(m[0].length))) {
      n++;
      const values: Record<string, string | null> = {};
      columns.forEach((c, i) => {
        values[c] = tuple[i] ?? null;
      });
      yield rowRecord(values, `row ${n}`);
    }
  }
}

/** SQL when the name says so or the file starts like a dump; CSV otherwise. */
async function isSql(file: string): Promise<boolean> {
  if (/\.sql$/i.test(file)) return true;
  const fh = await open(file, 'r').catch((e: NodeJS.ErrnoException) => {
    throw new SourceError(e.code === 'ENOENT' ? `${file}: no such file.` : `${file}: ${e.message}`);
  });
  try {
    const buf = Buffer.alloc(4096);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return /^\s*(--|\/\*|#|SET\s|INSERT\s|CREATE\s|DROP\s|LOCK\s)/i.test(
      buf.subarray(0, bytesRead).toString('utf8'),
    );
  } finally {
    await fh.close();
  }
}

export function yourlsFileSource(opts: { file: string }): ImportSource {
  return {
    name: 'yourls',
    origin: opts.file,
    async *pages(cursor) {
      const rows = (await isSql(opts.file)) ? sqlRows(opts.file) : csvRows(opts.file);
      yield* recordPages(rows, cursor);
    },
  };
}
