// A freshly initialized PostgreSQL data directory ships with Hop (template/pgdata.tar.gz), so the
// first start copies it instead of running initdb. PGlite's initdb holds a second database instance
// and the initdb program in memory beside the first (about 750 MB at its peak, and much of it is
// never given back); copying a 4.5 MB archive costs a few tens of MB, for a moment.
// The template is made by scripts/make-db-template.ts for one PGlite version and used only with
// that version; with any other, PGlite runs initdb as before.
import {
  closeSync,
  createReadStream,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { dirname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createGunzip } from 'node:zlib';
import { DB_TEMPLATE_DIR } from '../../paths.ts';

const ARCHIVE = join(DB_TEMPLATE_DIR, 'pgdata.tar.gz');
const ABOUT = join(DB_TEMPLATE_DIR, 'pgdata.json');

/** The PGlite version this process runs (the template is only good for the one it was made with). */
export function installedPgliteVersion(): string {
  const entry = fileURLToPath(import.meta.resolve('@electric-sql/pglite'));
  return (JSON.parse(readFileSync(join(dirname(entry), '..', 'package.json'), 'utf8')) as { version: string })
    .version;
}

/** Whether the shipped template was made by the installed PGlite. */
export function templateFits(): boolean {
  if (!existsSync(ABOUT) || !existsSync(ARCHIVE)) return false;
  const about = JSON.parse(readFileSync(ABOUT, 'utf8')) as { pglite?: string };
  return about.pglite === installedPgliteVersion();
}

/** The template's archive (gzipped tar), or null when there is none for the installed PGlite. */
export function templateArchive(): Buffer | null {
  return templateFits() ? readFileSync(ARCHIVE) : null;
}

/**
 * Fills an empty or missing data directory from the template. Returns whether it did: false
 * leaves the directory to PGlite (a database already there, or no template for this PGlite).
 * Streamed (the archive unpacks to 40 MB), extracted beside the directory and renamed into place,
 * so a crash mid-copy leaves no half directory.
 */
export async function seedDataDir(pgdata: string): Promise<boolean> {
  if (existsSync(pgdata) && readdirSync(pgdata).length > 0) return false;
  if (!templateFits()) return false;
  const staging = `${pgdata}.seeding`;
  rmSync(staging, { recursive: true, force: true });
  await extractTar(createReadStream(ARCHIVE).pipe(createGunzip()), staging);
  rmSync(pgdata, { recursive: true, force: true });
  renameSync(staging, pgdata);
  return true;
}

const field = (header: Buffer, at: number, len: number): string =>
  header.toString('utf8', at, at + len).replace(/\0.*$/s, '');

/** Streams a ustar archive of directories and regular files (what PGlite's dumpDataDir writes). */
export async function extractTar(tar: AsyncIterable<Buffer>, into: string): Promise<void> {
  mkdirSync(into, { recursive: true, mode: 0o700 });
  let rest: Buffer = Buffer.alloc(0);
  let fd: number | null = null;
  let left = 0; // bytes of the current file still to write
  let pad = 0; // then bytes to skip to the next 512-byte block
  for await (const chunk of tar) {
    const buf = rest.length === 0 ? chunk : Buffer.concat([rest, chunk]);
    let at = 0;
    for (;;) {
      if (fd !== null) {
        const n = Math.min(left, buf.length - at);
        writeSync(fd, buf, at, n);
        at += n;
        left -= n;
        if (left > 0) break;
        closeSync(fd);
        fd = null;
      }
      const skip = Math.min(pad, buf.length - at);
      at += skip;
      pad -= skip;
      if (pad > 0 || buf.length - at < 512) break;
      const header = buf.subarray(at, at + 512);
      at += 512;
      if (header.every((b) => b === 0)) return; // the end-of-archive blocks
      const prefix = field(header, 345, 155);
      const name = (prefix === '' ? '' : `${prefix}/`) + field(header, 0, 100);
      const size = Number.parseInt(field(header, 124, 12).trim() || '0', 8);
      const type = String.fromCharCode(header[156] || 48);
      const rel = normalize(name.replace(/^\/+/, ''));
      if (rel.split(sep).includes('..')) throw new Error(`template: unsafe path ${name}`);
      const path = join(into, rel);
      if (type === '5') {
        mkdirSync(path, { recursive: true, mode: 0o700 });
      } else if (type === '0') {
        mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
        fd = openSync(path, 'w', 0o600);
        left = size;
        pad = (512 - (size % 512)) % 512;
      } else {
        throw new Error(`template: entry ${name} of type ${type} is not a file or directory`);
      }
    }
    rest = buf.subarray(at);
  }
  if (fd !== null) closeSync(fd);
  throw new Error('template: the archive ends in the middle');
}
