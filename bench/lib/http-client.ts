// A small HTTP/1.1 keep-alive client over node:net, one request outstanding per connection.
// It exists because the generator shares two cores with the server: undici or node:http would spend
// the CPU the server needs on features a load generator never uses.
import { isIP, Socket } from 'node:net';

export type ErrorKind = 'connect_refused' | 'reset' | 'timeout' | 'parse' | 'other';
export const ERROR_KINDS: readonly ErrorKind[] = ['connect_refused', 'reset', 'timeout', 'parse', 'other'];

export class HttpError extends Error {
  readonly kind: ErrorKind;
  constructor(kind: ErrorKind, message: string) {
    super(message);
    this.kind = kind;
  }
}

export interface RequestSpec {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface ParsedResponse {
  status: number;
  /** Lower-cased names; filled only when the parser was asked to keep headers. */
  headers: Record<string, string> | null;
  /** Filled only when the parser was asked to keep bodies. */
  body: Buffer | null;
  /** The server asked to close the connection after this response. */
  close: boolean;
}

const CRLF = Buffer.from('\r\n');
const CRLFCRLF = Buffer.from('\r\n\r\n');
const MAX_HEAD_BYTES = 64 * 1024;
const MAX_CHUNK_LINE = 1024;

const S_HEAD = 0;
const S_BODY = 1;
const S_CHUNK_SIZE = 2;
const S_CHUNK_DATA = 3;
const S_CHUNK_END = 4;
const S_TRAILERS = 5;
const S_UNTIL_CLOSE = 6;

export interface ParserOptions {
  keepHeaders?: boolean;
  keepBody?: boolean;
}

/**
 * Incremental response parser: feed it TCP chunks as they come; it calls `onResponse` once per complete
 * response, whether a response spans many chunks or a chunk holds several responses.
 */
export class ResponseParser {
  onResponse: (res: ParsedResponse) => void = () => {};
  readonly #keepHeaders: boolean;
  readonly #keepBody: boolean;
  #state = S_HEAD;
  #pending: Buffer | null = null;
  #remaining = 0;
  #bodyParts: Buffer[] = [];
  #current: ParsedResponse | null = null;
  #failed = false;

  constructor(opts: ParserOptions = {}) {
    this.#keepHeaders = opts.keepHeaders ?? false;
    this.#keepBody = opts.keepBody ?? false;
  }

  /** Throws HttpError('parse') on malformed input; the parser is unusable afterwards. */
  push(chunk: Buffer): void {
    if (this.#failed) throw new HttpError('parse', 'parser already failed');
    let buf = chunk;
    if (this.#pending !== null) {
      buf = Buffer.concat([this.#pending, chunk]);
      this.#pending = null;
    }
    let pos = 0;
    const len = buf.length;
    while (pos < len) {
      switch (this.#state) {
        case S_HEAD: {
          const end = buf.indexOf(CRLFCRLF, pos);
          if (end === -1) {
            if (len - pos > MAX_HEAD_BYTES) this.#fail('response head too large');
            this.#pending = buf.subarray(pos);
            return;
          }
          this.#parseHead(buf.toString('latin1', pos, end));
          pos = end + 4;
          break;
        }
        case S_BODY:
        case S_CHUNK_DATA: {
          const take = Math.min(this.#remaining, len - pos);
          if (this.#keepBody) this.#bodyParts.push(buf.subarray(pos, pos + take));
          pos += take;
          this.#remaining -= take;
          if (this.#remaining === 0) {
            if (this.#state === S_BODY) this.#emit();
            else {
              this.#state = S_CHUNK_END;
              this.#remaining = 2;
            }
          }
          break;
        }
        case S_CHUNK_END: {
          // The CRLF after a chunk's data may itself straddle two TCP chunks.
          const expected = this.#remaining === 2 ? 0x0d : 0x0a;
          if (buf[pos] !== expected) this.#fail('missing CRLF after chunk data');
          pos++;
          if (--this.#remaining === 0) this.#state = S_CHUNK_SIZE;
          break;
        }
        case S_CHUNK_SIZE:
        case S_TRAILERS: {
          const eol = buf.indexOf(CRLF, pos);
          if (eol === -1) {
            if (len - pos > MAX_CHUNK_LINE) this.#fail('chunk line too long');
            this.#pending = buf.subarray(pos);
            return;
          }
          if (this.#state === S_CHUNK_SIZE) {
            const line = buf.toString('latin1', pos, eol);
            const semi = line.indexOf(';');
            const hex = (semi === -1 ? line : line.slice(0, semi)).trim();
            if (!/^[0-9a-fA-F]{1,8}$/.test(hex)) this.#fail(`bad chunk size ${JSON.stringify(hex)}`);
            const size = Number.parseInt(hex, 16);
            pos = eol + 2;
            if (size === 0) this.#state = S_TRAILERS;
            else {
              this.#state = S_CHUNK_DATA;
              this.#remaining = size;
            }
          } else {
            const empty = eol === pos;
            pos = eol + 2;
            if (empty) this.#emit();
          }
          break;
        }
        case S_UNTIL_CLOSE: {
          if (this.#keepBody) this.#bodyParts.push(buf.subarray(pos));
          pos = len;
          break;
        }
      }
    }
  }

  /** The peer closed: completes a read-until-close body; true when that yielded a response. */
  end(): boolean {
    if (this.#state !== S_UNTIL_CLOSE) return false;
    this.#emit();
    return true;
  }

  #fail(message: string): never {
    this.#failed = true;
    throw new HttpError('parse', message);
  }

  #parseHead(head: string): void {
    let eol = head.indexOf('\r\n');
    if (eol === -1) eol = head.length;
    // "HTTP/1.1 302 Found": a fixed layout, so slicing beats a regex on the hot path.
    if (!head.startsWith('HTTP/1.') || head.charCodeAt(8) !== 0x20) this.#fail('bad status line');
    const status = Number.parseInt(head.slice(9, 12), 10);
    if (!(status >= 100 && status <= 999)) this.#fail('bad status code');
    const minor = head.charCodeAt(7) - 0x30;
    let close = minor === 0;
    let contentLength = -1;
    let chunked = false;
    const headers: Record<string, string> | null = this.#keepHeaders ? {} : null;
    let pos = eol + 2;
    while (pos < head.length) {
      let next = head.indexOf('\r\n', pos);
      if (next === -1) next = head.length;
      const colon = head.indexOf(':', pos);
      if (colon === -1 || colon > next) this.#fail('bad header line');
      const c = head.charCodeAt(pos) | 0x20;
      // Only three headers matter for framing; lower-casing every name would cost on every response.
      if (c === 0x63 /* c */ || c === 0x74 /* t */ || headers !== null) {
        const name = head.slice(pos, colon).toLowerCase();
        const value = head.slice(colon + 1, next).trim();
        if (headers !== null) headers[name] = value;
        if (name === 'content-length') {
          if (!/^\d+$/.test(value)) this.#fail('bad content-length');
          contentLength = Number(value);
        } else if (name === 'transfer-encoding') {
          chunked = value.toLowerCase().endsWith('chunked');
        } else if (name === 'connection') {
          const v = value.toLowerCase();
          if (v === 'close') close = true;
          else if (v === 'keep-alive') close = false;
        }
      }
      pos = next + 2;
    }
    if (status < 200) {
      // 100 Continue and friends precede the real response; nothing to report.
      return;
    }
    this.#current = { status, headers, body: null, close };
    if (status === 204 || status === 304) this.#emit();
    else if (chunked) this.#state = S_CHUNK_SIZE;
    else if (contentLength > 0) {
      this.#state = S_BODY;
      this.#remaining = contentLength;
    } else if (contentLength === 0) this.#emit();
    else {
      this.#state = S_UNTIL_CLOSE;
      this.#current.close = true;
    }
  }

  #emit(): void {
    const res = this.#current!;
    if (this.#keepBody) {
      // Socket chunks are fresh buffers, so a single part can be handed out without a copy.
      res.body = this.#bodyParts.length === 1 ? this.#bodyParts[0]! : Buffer.concat(this.#bodyParts);
      this.#bodyParts = [];
    }
    this.#current = null;
    this.#state = S_HEAD;
    this.onResponse(res);
  }
}

/** Throws unless host is a loopback address: the bench must never send load anywhere else. */
export function assertLoopback(host: string): void {
  const ok =
    host === 'localhost' ||
    (isIP(host) === 4 && host.startsWith('127.')) ||
    host === '::1' ||
    host === '[::1]';
  if (!ok) throw new Error(`refusing to send load to ${host}: only loopback targets are allowed`);
}

/** Serialises a request once; the string goes straight to socket.write. */
export function encodeRequest(spec: RequestSpec, hostHeader: string): string {
  let s = `${spec.method} ${spec.path} HTTP/1.1\r\nHost: ${hostHeader}\r\n`;
  if (spec.headers !== undefined) {
    for (const name in spec.headers) s += `${name}: ${spec.headers[name]}\r\n`;
  }
  if (spec.body !== undefined) s += `Content-Length: ${Buffer.byteLength(spec.body)}\r\n\r\n${spec.body}`;
  else s += '\r\n';
  return s;
}

export type ResponseCallback = (err: HttpError | null, res: ParsedResponse | null) => void;

export interface Target {
  host: string;
  port: number;
}

function classify(err: NodeJS.ErrnoException): ErrorKind {
  switch (err.code) {
    case 'ECONNREFUSED':
      return 'connect_refused';
    case 'ECONNRESET':
    case 'EPIPE':
    case 'ECONNABORTED':
      return 'reset';
    case 'ETIMEDOUT':
      return 'timeout';
    default:
      return 'other';
  }
}

/**
 * One TCP connection. It reconnects lazily when the previous socket was closed, so a server that says
 * `Connection: close` costs a reconnect inside the next request's latency, as it would for a real client.
 */
export class HttpConnection {
  readonly target: Target;
  readonly hostHeader: string;
  readonly #parserOptions: ParserOptions;
  #socket: Socket | null = null;
  #connected = false;
  #queuedWrite: string | null = null;
  #callback: ResponseCallback | null = null;
  /** performance.now() when the outstanding request was handed over; 0 when idle. */
  sentAt = 0;

  constructor(target: Target, opts: ParserOptions = {}) {
    assertLoopback(target.host);
    this.target = target;
    this.hostHeader = `${target.host}:${target.port}`;
    this.#parserOptions = opts;
  }

  get busy(): boolean {
    return this.#callback !== null;
  }

  /** Opens the socket ahead of time so that connection setup stays out of the measured window. */
  connect(): Promise<void> {
    if (this.#connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const socket = this.#open();
      const onError = (err: Error) => reject(err);
      socket.once('error', onError);
      socket.once('connect', () => {
        socket.off('error', onError);
        resolve();
      });
    });
  }

  /** Sends one request; `cb` runs exactly once. Calling it while busy is a programming error. */
  send(raw: string, cb: ResponseCallback, now: number): void {
    if (this.#callback !== null) throw new Error('HttpConnection.send while a request is outstanding');
    this.#callback = cb;
    this.sentAt = now;
    if (this.#socket === null) this.#open();
    if (this.#connected) this.#socket!.write(raw);
    else this.#queuedWrite = raw;
  }

  /** Fails the outstanding request with a timeout if it is older than `timeoutMs`; true if it did. */
  expire(now: number, timeoutMs: number): boolean {
    if (this.#callback === null || now - this.sentAt < timeoutMs) return false;
    this.#teardown(new HttpError('timeout', `no response within ${timeoutMs} ms`));
    return true;
  }

  close(): void {
    this.#teardown(new HttpError('reset', 'connection closed by client'));
  }

  #open(): Socket {
    const socket = new Socket();
    // A parser per socket: a reconnect made from inside a response callback must not disturb the
    // parse loop of the socket that delivered that response.
    const parser = new ResponseParser(this.#parserOptions);
    parser.onResponse = (res) => this.#onResponse(res, socket);
    this.#socket = socket;
    this.#connected = false;
    socket.setNoDelay(true);
    socket.on('connect', () => {
      if (this.#socket !== socket) return;
      this.#connected = true;
      if (this.#queuedWrite !== null) {
        socket.write(this.#queuedWrite);
        this.#queuedWrite = null;
      }
    });
    socket.on('data', (chunk: Buffer) => {
      if (this.#socket !== socket) return;
      if (this.#callback === null) {
        this.#teardown(new HttpError('parse', 'data received with no request outstanding'));
        return;
      }
      try {
        parser.push(chunk);
      } catch (err) {
        this.#teardown(err instanceof HttpError ? err : new HttpError('parse', String(err)));
      }
    });
    socket.on('end', () => {
      if (this.#socket !== socket) return;
      if (this.#callback !== null && parser.end()) return;
      this.#teardown(new HttpError('reset', 'connection closed by server'));
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (this.#socket !== socket) return;
      this.#teardown(new HttpError(classify(err), err.message));
    });
    socket.on('close', () => {
      if (this.#socket !== socket) return;
      this.#teardown(new HttpError('reset', 'connection closed'));
    });
    socket.connect(this.target.port, this.target.host);
    return socket;
  }

  #onResponse(res: ParsedResponse, socket: Socket): void {
    if (this.#socket !== socket) return;
    const cb = this.#callback;
    this.#callback = null;
    this.sentAt = 0;
    if (res.close) this.#dropSocket();
    // A response nobody asked for is a protocol error, not a reason to crash the run.
    if (cb !== null) cb(null, res);
  }

  #dropSocket(): void {
    const s = this.#socket;
    this.#socket = null;
    this.#connected = false;
    this.#queuedWrite = null;
    if (s !== null) s.destroy();
  }

  #teardown(err: HttpError): void {
    this.#dropSocket();
    const cb = this.#callback;
    this.#callback = null;
    this.sentAt = 0;
    if (cb !== null) cb(err, null);
  }
}

/** Opens `n` connections in parallel; fails if none could be opened. */
export async function openConnections(
  target: Target,
  n: number,
  opts: ParserOptions = {},
): Promise<HttpConnection[]> {
  const conns = Array.from({ length: n }, () => new HttpConnection(target, opts));
  const results = await Promise.allSettled(conns.map((c) => c.connect()));
  const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (results.every((r) => r.status === 'rejected')) {
    throw new Error(`cannot connect to ${target.host}:${target.port}: ${String(failure?.reason)}`);
  }
  return conns;
}

/** One request on a fresh connection, for setup and health checks rather than measurement. */
export function requestOnce(
  target: Target,
  spec: RequestSpec,
  timeoutMs = 5000,
  opts: ParserOptions = { keepBody: true, keepHeaders: true },
): Promise<ParsedResponse> {
  const conn = new HttpConnection(target, opts);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => conn.expire(Number.POSITIVE_INFINITY, 0), timeoutMs);
    conn.send(
      encodeRequest(spec, conn.hostHeader),
      (err, res) => {
        clearTimeout(timer);
        conn.close();
        if (err !== null) reject(err);
        else resolve(res!);
      },
      performance.now(),
    );
  });
}
