// A webhook receiver for tests: a real HTTP server on a loopback address that records what it is
// sent (and every connection made to it, request or not) and answers as the test says.
import { createServer, type IncomingMessage, type Server } from 'node:http';

export interface Received {
  headers: IncomingMessage['headers'];
  body: string;
}

export interface ReceiverOptions {
  /** Wait before answering (ms). */
  delayMs?: number;
  /** Loopback address to listen on (default 127.0.0.1). */
  host?: string;
  /** Headers of every answer (e.g. a Location). */
  headers?: Record<string, string>;
}

/** A receiver that answers the n-th request with the status `answer(n)` gives. */
export async function receiver(answer: (n: number) => number, opts: ReceiverOptions = {}) {
  const got: Received[] = [];
  const seen = { connections: 0 };
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      got.push({ headers: req.headers, body });
      const status = answer(got.length);
      setTimeout(() => res.writeHead(status, opts.headers ?? {}).end(), opts.delayMs ?? 0);
    });
  });
  server.on('connection', () => {
    seen.connections++;
  });
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((r) => server.listen(0, host, r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  return {
    url: `http://${host}:${port}/hook`,
    port,
    got,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export async function until(what: string, ok: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
