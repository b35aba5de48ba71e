// `hop import --from NAME`: which source reads what, and the options each one needs.
import { resolve } from 'node:path';
import { bitlySource } from './bitly.ts';
import { csvSource } from './csv.ts';
import { kuttSource } from './kutt.ts';
import { shlinkSource } from './shlink.ts';
import { type ImportSource, SourceError } from './source.ts';
import { yourlsApiSource } from './yourls.ts';
import { yourlsFileSource } from './yourls-files.ts';

export const SOURCE_NAMES = ['shlink', 'kutt', 'yourls', 'bitly', 'csv'] as const;

export interface SourceOptions {
  readonly url?: string | undefined;
  readonly key?: string | undefined;
  readonly signature?: string | undefined;
  readonly token?: string | undefined;
  readonly file?: string | undefined;
  readonly onRetry?: (message: string) => void;
}

function need(value: string | undefined, what: string): string {
  if (value === undefined || value === '') throw new SourceError(`${what} is required.`);
  return value;
}

function httpUrl(value: string | undefined, what: string): string {
  const v = need(value, what);
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new SourceError(`${what}: "${v}" is not a URL.`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new SourceError(`${what}: "${v}" is not an http(s) URL.`);
  return u.href;
}

/** The source `--from` names, or a SourceError saying which option is missing. */
export function sourceFor(name: string, o: SourceOptions): ImportSource {
  const retry = o.onRetry === undefined ? {} : { onRetry: o.onRetry };
  switch (name) {
    case 'shlink':
      return shlinkSource({
        url: httpUrl(o.url, '--url (the Shlink server)'),
        key: need(o.key, '--key (a Shlink API key)'),
        ...retry,
      });
    case 'kutt':
      return kuttSource({
        url: httpUrl(o.url, '--url (the Kutt server)'),
        key: need(o.key, '--key (a Kutt API key)'),
        ...retry,
      });
    case 'yourls':
      if (o.file !== undefined) return yourlsFileSource({ file: resolve(o.file) });
      return yourlsApiSource({
        url: httpUrl(o.url, '--url (its yourls-api.php) or --file'),
        signature: need(o.signature, '--signature (the YOURLS API signature token)'),
        ...retry,
      });
    case 'bitly':
      return bitlySource({
        token: need(o.token, '--token (a Bitly access token)'),
        ...(o.url === undefined ? {} : { url: httpUrl(o.url, '--url') }),
        ...retry,
      });
    case 'csv':
      return csvSource({ file: resolve(need(o.file, '--file (the CSV file)')) });
    default:
      throw new SourceError(`--from must be one of ${SOURCE_NAMES.join(', ')}; got "${name}".`);
  }
}
