// A CSV file with the columns Shlink's own importer reads: Long URL, Short code (or Short URL),
// Domain, Title, Tags. Column names are matched ignoring case, spaces and underscores; tags are
// separated by commas, spaces or '|' (Shlink's own separator).
import { csvRecords, detectDelimiter, type FileRecord, recordPages } from './csv-file.ts';
import { type ImportSource, SourceError } from './source.ts';

const name = (h: string) => h.toLowerCase().replace(/[\s_-]+/g, '');

async function* records(file: string): AsyncIterable<FileRecord> {
  let columns: Map<string, number> | null = null;
  for await (const { record, line } of csvRecords(file, await detectDelimiter(file))) {
    if (columns === null) {
      columns = new Map(record.map((h, i) => [name(h), i]));
      if (!columns.has('longurl') || !(columns.has('shortcode') || columns.has('shorturl')))
        throw new SourceError(
          `${file}: the first line must name the columns, "Long URL" and "Short code" (or "Short URL") at least; it has ${record.join(', ')}.`,
        );
      continue;
    }
    const get = (col: string) => {
      const i = columns?.get(col);
      return i === undefined ? '' : (record[i] ?? '').trim();
    };
    const ref = `line ${line}`;
    let code = get('shortcode');
    let domain: string | null = get('domain') || null;
    const shortUrl = get('shorturl');
    if (code === '' && shortUrl !== '') {
      try {
        const u = new URL(/^https?:\/\//i.test(shortUrl) ? shortUrl : `https://${shortUrl}`);
        code = decodeURIComponent(u.pathname.replace(/^\/+|\/+$/g, ''));
        domain ??= u.hostname;
      } catch {
        yield { ref, reason: `"${shortUrl}" is not a short URL` };
        continue;
      }
    }
    if (code === '') {
      yield { ref, reason: 'no short code' };
      continue;
    }
    const title = get('title');
    yield {
      link: {
        ref: `${ref} (${code})`,
        code,
        domain,
        url: get('longurl'),
        title: title === '' ? null : title,
        tags: get('tags')
          .split(/[\s,|]+/)
          .filter((t) => t !== ''),
      },
    };
  }
}

export function csvSource(opts: { file: string }): ImportSource {
  return {
    name: 'csv',
    origin: opts.file,
    pages: (cursor) => recordPages(records(opts.file), cursor),
  };
}
