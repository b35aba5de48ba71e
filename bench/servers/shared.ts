// What the two baseline servers share: arguments, the JSONL seed file, Hop's redirect response shape,
// and the ready line the bench waits for. Only the lookup differs between them.
import { createReadStream } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

export interface SeedLink {
  code: string;
  url: string;
}

export function serverArgs(): { links: string; port: number } {
  const { values } = parseArgs({
    options: { links: { type: 'string' }, port: { type: 'string', default: '0' } },
  });
  if (values.links === undefined) throw new Error('usage: --links FILE.jsonl [--port N]');
  return { links: values.links, port: Number(values.port) };
}

/** Streams the seed file in batches, so a million links never sit in memory twice. */
export async function readSeed(
  file: string,
  batchSize: number,
  onBatch: (b: SeedLink[]) => Promise<void> | void,
) {
  let batch: SeedLink[] = [];
  for await (const line of createInterface({
    input: createReadStream(file),
    crlfDelay: Number.POSITIVE_INFINITY,
  })) {
    if (line.length === 0) continue;
    const { code, url } = JSON.parse(line) as SeedLink;
    batch.push({ code, url });
    if (batch.length >= batchSize) {
      await onBatch(batch);
      batch = [];
    }
  }
  if (batch.length > 0) await onBatch(batch);
}

const NOT_FOUND = JSON.stringify({ title: 'Not Found', status: 404 });

/** The path's code, or null for anything that is not `GET /<code>`. */
export function codeOf(req: IncomingMessage): string | null {
  if (req.method !== 'GET' || req.url === undefined) return null;
  const q = req.url.indexOf('?');
  const code = req.url.slice(1, q === -1 ? undefined : q);
  return code.length > 0 ? code : null;
}

/** Same headers as Hop's redirect, so that both sides put the same bytes on the wire. */
export function sendRedirect(res: ServerResponse, url: string): void {
  res.writeHead(302, { Location: url, 'Cache-Control': 'private, no-store', 'Content-Length': '0' });
  res.end();
}

export function sendNotFound(res: ServerResponse): void {
  res.writeHead(404, {
    'Content-Type': 'application/problem+json',
    'Content-Length': String(NOT_FOUND.length),
  });
  res.end(NOT_FOUND);
}

export function sendHealthy(res: ServerResponse): void {
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '2' });
  res.end('ok');
}

/** Listens on 127.0.0.1, prints the ready line, and exits cleanly on SIGTERM. */
export function serve(handler: (req: IncomingMessage, res: ServerResponse) => void, port: number): void {
  const server = createServer(handler);
  server.keepAliveTimeout = 65_000;
  server.listen(port, '127.0.0.1', () => {
    const { port: bound } = server.address() as AddressInfo;
    process.stdout.write(`${JSON.stringify({ ready: true, port: bound })}\n`);
  });
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
