// The bench's HTTP client: framing must survive any TCP chunking, since a mis-parse would silently
// turn into wrong latencies rather than an error.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  assertLoopback,
  HttpConnection,
  type ParsedResponse,
  ResponseParser,
  requestOnce,
} from '../../../bench/lib/http-client.ts';

const REDIRECT =
  'HTTP/1.1 302 Found\r\nLocation: https://example.com/1\r\nCache-Control: private, no-store\r\n' +
  'Content-Length: 0\r\nDate: Thu, 01 Jan 2026 00:00:00 GMT\r\n\r\n';
const WITH_BODY =
  'HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 12\r\n\r\n{"code":"x"}';
const CHUNKED =
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: y\r\n\r\n';
const CONTINUE_THEN_404 =
  'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nnop';
const STREAM = REDIRECT + WITH_BODY + CHUNKED + CONTINUE_THEN_404;

function collect(parts: Buffer[]): ParsedResponse[] {
  const parser = new ResponseParser({ keepBody: true, keepHeaders: true });
  const out: ParsedResponse[] = [];
  parser.onResponse = (r) => out.push(r);
  for (const p of parts) parser.push(p);
  return out;
}

function checkStream(out: ParsedResponse[]): void {
  assert.deepEqual(
    out.map((r) => r.status),
    [302, 201, 200, 404],
  );
  assert.equal(out[0]!.headers!.location, 'https://example.com/1');
  assert.equal(out[0]!.body!.length, 0);
  assert.equal(out[1]!.body!.toString(), '{"code":"x"}');
  assert.equal(out[2]!.body!.toString(), 'hello, world');
  assert.equal(out[3]!.body!.toString(), 'nop');
}

describe('ResponseParser', () => {
  it('parses several responses delivered in one chunk', () => {
    checkStream(collect([Buffer.from(STREAM)]));
  });

  it('parses the same stream split at every possible byte offset', () => {
    const whole = Buffer.from(STREAM);
    for (let cut = 1; cut < whole.length; cut++) {
      checkStream(collect([whole.subarray(0, cut), whole.subarray(cut)]));
    }
  });

  it('parses the stream delivered one byte at a time', () => {
    const whole = Buffer.from(STREAM);
    const bytes: Buffer[] = [];
    for (let i = 0; i < whole.length; i++) bytes.push(whole.subarray(i, i + 1));
    checkStream(collect(bytes));
  });

  it('rejects garbage with a parse error', () => {
    assert.throws(
      () => collect([Buffer.from('HTTX/1.1 200 OK\r\n\r\n')]),
      (e: unknown) => (e as { kind?: string }).kind === 'parse',
    );
    assert.throws(
      () => collect([Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n')]),
      (e: unknown) => (e as { kind?: string }).kind === 'parse',
    );
  });

  it('reads a body without framing until the connection ends', () => {
    const parser = new ResponseParser({ keepBody: true });
    const out: ParsedResponse[] = [];
    parser.onResponse = (r) => out.push(r);
    parser.push(Buffer.from('HTTP/1.1 200 OK\r\n\r\nabc'));
    parser.push(Buffer.from('def'));
    assert.equal(out.length, 0);
    assert.equal(parser.end(), true);
    assert.equal(out[0]!.body!.toString(), 'abcdef');
    assert.equal(out[0]!.close, true);
  });
});

describe('HttpConnection against node:http', () => {
  let server: Server;
  let port = 0;
  before(async () => {
    server = createServer((req, res) => {
      if (req.url === '/close') res.setHeader('Connection', 'close');
      if (req.url === '/chunked') {
        res.write('part1-');
        setTimeout(() => res.end('part2'), 5);
        return;
      }
      res.writeHead(302, { Location: `https://example.com${req.url}`, 'Content-Length': '0' }).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  it('reuses one connection, survives Connection: close, and reads chunked bodies', async () => {
    const conn = new HttpConnection({ host: '127.0.0.1', port }, { keepHeaders: true, keepBody: true });
    await conn.connect();
    const get = (path: string) =>
      new Promise<ParsedResponse>((resolve, reject) =>
        conn.send(
          `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`,
          (err, res) => (err ? reject(err) : resolve(res!)),
          performance.now(),
        ),
      );
    for (let i = 0; i < 20; i++) {
      const res = await get(`/a${i}`);
      assert.equal(res.status, 302);
      assert.equal(res.headers!.location, `https://example.com/a${i}`);
    }
    assert.equal((await get('/close')).close, true);
    assert.equal((await get('/chunked')).body!.toString(), 'part1-part2');
    conn.close();
  });

  it('classifies a refused connection', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const freePort = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    await assert.rejects(requestOnce({ host: '127.0.0.1', port: freePort }, { method: 'GET', path: '/' }), {
      kind: 'connect_refused',
    });
  });

  it('refuses non-loopback targets', () => {
    assert.throws(() => assertLoopback('10.0.0.1'));
    assert.throws(() => assertLoopback('example.com'));
    assertLoopback('127.0.0.1');
    assertLoopback('localhost');
  });
});
