// CSV files as records, through csv-parse (byte order mark, quotes, newlines inside quoted fields),
// with the delimiter taken from the header line: ';' when it has more of them than ',' (spreadsheets
// in many locales write ';').
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { parse } from 'csv-parse';
import { SourceError, type SourceLink, type SourcePage } from './source.ts';

/** ',' or ';', whichever the first line has more of outside quotes. */
export async function detectDelimiter(file: string): Promise<',' | ';'> {
  const fh = await open(file, 'r').catch((e: NodeJS.ErrnoException) => {
    throw new SourceError(e.code === 'ENOENT' ? `${file}: no such file.` : `${file}: ${e.message}`);
  });
  let head: string;
  try {
    const buf = Buffer.alloc(64 * 1024);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    head = buf.subarray(0, bytesRead).toString('utf8');
  } finally {
    await fh.close();
  }
  let commas = 0;
  let semicolons = 0;
  let quoted = false;
  for (const ch of head) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && (ch === '\n' || ch === '\r')) break;
    else if (!quoted && ch === ',') commas++;
    else if (!quoted && ch === ';') semicolons++;
  }
  return semicolons > commas ? ';' : ',';
}

/** The file's records in order, each with the line it starts on. */
export async function* csvRecords(
  file: string,
  delimiter: ',' | ';',
): AsyncIterable<{ readonly record: string[]; readonly line: number }> {
  const parser = createReadStream(file).pipe(
    parse({ bom: true, delimiter, relax_column_count: true, skip_empty_lines: true, info: true }),
  );
  try {
    for await (const row of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      yield { record: row.record, line: row.info.lines };
    }
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new SourceError(err.code === 'ENOENT' ? `${file}: no such file.` : `${file}: ${err.message}`);
  }
}

/** What one record of a file gives: a link, or why it is not one. */
export type FileRecord = { readonly link: SourceLink } | { readonly ref: string; readonly reason: string };

const PAGE_SIZE = 1_000;

/**
 * Records as pages, resuming after the `row` a cursor names: the records before it are read again
 * and passed over (a file has no index to seek by).
 */
export async function* recordPages(
  records: AsyncIterable<FileRecord>,
  cursor: unknown,
): AsyncIterable<SourcePage> {
  const at = cursor as { row?: unknown } | null;
  const skip = typeof at?.row === 'number' && at.row > 0 ? at.row : 0;
  let row = 0;
  let links: SourceLink[] = [];
  let failures: { ref: string; reason: string }[] = [];
  let from = skip;
  const page = (): SourcePage => {
    const p = { cursor: { row }, label: `records ${from + 1}-${row}`, links, failures };
    links = [];
    failures = [];
    from = row;
    return p;
  };
  for await (const r of records) {
    row++;
    if (row <= skip) continue;
    if ('link' in r) links.push(r.link);
    else failures.push(r);
    if (links.length + failures.length >= PAGE_SIZE) yield page();
  }
  if (links.length + failures.length > 0 || row <= skip) yield page();
}
