// The running server's control socket: a Unix domain socket in the data directory (hop.sock) over
// which `hop backup` asks the process that holds the data directory for a backup. Whoever can
// reach the data directory's files may back them up, so the socket asks for no API key.
import { existsSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';

/** Longest Unix socket path that binds everywhere (sun_path: 108 bytes on Linux, 104 on macOS). */
const MAX_SOCKET_PATH = 103;

export function controlSocketPath(dataDir: string): string {
  return join(resolve(dataDir), 'hop.sock');
}

export const socketPathFits = (path: string): boolean => Buffer.byteLength(path) <= MAX_SOCKET_PATH;

/** What the caller learns once the snapshot's transaction has ended (HTTP trailers). */
export interface BackupTotals {
  readonly lastChangeSeq: number;
  readonly pauseMs: number;
  readonly tables: number;
  readonly rows: number;
}

export interface BackupOffer {
  readonly id: string;
  /** The file's bytes as they are read: the response streams them, holding none whole. */
  readonly body: Readable;
  /** Settles when the snapshot ends, before the body's last bytes. */
  readonly totals: Promise<BackupTotals>;
}

/** The totals travel as trailers: they are known only when the body has been read. */
const TRAILERS = {
  lastChangeSeq: 'x-hop-last-change-seq',
  pauseMs: 'x-hop-pause-ms',
  tables: 'x-hop-tables',
  rows: 'x-hop-rows',
} as const;

export interface ControlHandlers {
  /** A backup for the caller: its bytes, and what the headers tell the caller. */
  backup(): Promise<BackupOffer>;
  /** The caller has the backup durably: false when the id is unknown. */
  backupDone(id: string): Promise<boolean>;
}

/** Listens on the socket; the caller has made sure no other process serves this data directory. */
export async function listenControlSocket(path: string, handlers: ControlHandlers): Promise<Server> {
  // The data directory's lock is held, so a socket file left there is a dead process's.
  if (existsSync(path)) rmSync(path, { force: true });
  const server = createServer((req, res) => {
    const fail = (status: number, message: string) => {
      if (res.headersSent) {
        res.destroy(new Error(message));
        return;
      }
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end(message);
    };
    const done = /^\/backup\/([A-Za-z0-9-]+)\/done$/.exec(req.url ?? '');
    if (req.method === 'POST' && req.url === '/backup') {
      handlers.backup().then(
        (offer) => {
          res.writeHead(200, {
            'content-type': 'application/gzip',
            'x-hop-backup-id': offer.id,
            trailer: Object.values(TRAILERS).join(', '),
          });
          // A caller that goes away cancels the snapshot (the body's end lets go of the database).
          res.on('close', () => {
            if (!res.writableFinished) offer.body.destroy();
          });
          offer.body.on('error', (err) => res.destroy(err));
          offer.body.on('end', () => {
            offer.totals.then(
              (t) => {
                res.addTrailers({
                  [TRAILERS.lastChangeSeq]: String(t.lastChangeSeq),
                  [TRAILERS.pauseMs]: t.pauseMs.toFixed(1),
                  [TRAILERS.tables]: String(t.tables),
                  [TRAILERS.rows]: String(t.rows),
                });
                res.end();
              },
              (err: unknown) => res.destroy(err as Error),
            );
          });
          offer.body.pipe(res, { end: false });
        },
        (err: unknown) => fail(500, (err as Error).message),
      );
    } else if (req.method === 'POST' && done !== null) {
      handlers.backupDone(done[1]!).then(
        (known) => (known ? res.writeHead(204).end() : fail(404, 'unknown backup id')),
        (err: unknown) => fail(500, (err as Error).message),
      );
    } else {
      fail(404, 'not found');
    }
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(path, () => {
      server.off('error', fail);
      ok();
    });
  });
  return server;
}

export async function closeControlSocket(server: Server, path: string): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((ok) => server.close(() => ok()));
  rmSync(path, { force: true });
}

/** No server answers on the socket: the caller may open the data directory itself. */
export class NoServer extends Error {
  override name = 'NoServer';
}

function call(path: string, url: string): Promise<IncomingMessage> {
  return new Promise((ok, fail) => {
    const req = httpRequest({ socketPath: path, path: url, method: 'POST' }, ok);
    req.on('error', (err: NodeJS.ErrnoException) =>
      fail(err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? new NoServer(err.message) : err),
    );
    req.end();
  });
}

async function failure(res: IncomingMessage): Promise<Error> {
  let text = '';
  for await (const chunk of res) text += chunk;
  return new Error(`the server could not take the backup: ${text || res.statusMessage}`);
}

/** Asks the server for a backup; rejects with NoServer when none listens. */
export async function requestBackup(path: string): Promise<{
  id: string;
  body: IncomingMessage;
  /** The totals, once `body` has been read to its end. */
  totals: () => BackupTotals;
}> {
  if (!existsSync(path)) throw new NoServer(`no socket at ${path}`);
  const res = await call(path, '/backup');
  if (res.statusCode !== 200) throw await failure(res);
  const trailer = (name: string) => Number(res.trailers[name] ?? Number.NaN);
  return {
    id: String(res.headers['x-hop-backup-id'] ?? ''),
    body: res,
    totals: () => ({
      lastChangeSeq: trailer(TRAILERS.lastChangeSeq),
      pauseMs: trailer(TRAILERS.pauseMs),
      tables: trailer(TRAILERS.tables),
      rows: trailer(TRAILERS.rows),
    }),
  };
}

/** Tells the server the backup is safely written (it then runs its after-backup work). */
export async function confirmBackup(path: string, id: string): Promise<void> {
  const res = await call(path, `/backup/${encodeURIComponent(id)}/done`);
  if (res.statusCode !== 204) throw await failure(res);
  res.resume();
}
