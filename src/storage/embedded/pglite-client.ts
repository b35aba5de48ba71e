// SqlClient over PGlite: PostgreSQL compiled to WASM, in this process (the embedded default).
// The database runs on a worker thread (pglite-worker.mjs) so that its CPU work — cold lookups,
// click-batch writes — never stalls the event loop that answers redirects.
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { Worker } from 'node:worker_threads';
import { CLICK_THREAD_HOST, PGLITE_WORKER } from '../../paths.ts';
import type { DatabaseThread } from '../ports.ts';
import type { QueryOptions, SqlClient, SqlResult } from '../sql/sql-client.ts';
import { lockDataDir } from './data-dir-lock.ts';
import { seedDataDir, templateArchive } from './data-template.ts';

interface Reply {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: { message: string; code?: string; detail?: string };
}

class DatabaseError extends Error {
  readonly code: string | undefined;
  readonly detail: string | undefined;
  constructor(e: NonNullable<Reply['error']>) {
    super(e.message);
    this.name = 'DatabaseError';
    this.code = e.code;
    this.detail = e.detail;
  }
}

/** Talks to the worker: one message per operation, answered by id; id -1 is a notice. */
class WorkerChannel implements DatabaseThread {
  private readonly worker: Worker;
  private readonly waiting = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: unknown) => void }
  >();
  private nextId = 1;
  private dead: Error | null = null;
  private readonly noticeListeners: ((notice: unknown) => void)[] = [];
  readonly heldReadListeners: (() => void)[] = [];

  constructor(worker: Worker) {
    this.worker = worker;
    worker.on('message', (m: Reply) => {
      if (m.id === -1) {
        for (const l of this.noticeListeners) l(m);
        return;
      }
      const w = this.waiting.get(m.id);
      if (w === undefined) return;
      this.waiting.delete(m.id);
      if (m.ok) w.resolve(m.result);
      else w.reject(new DatabaseError(m.error ?? { message: 'unknown database error' }));
    });
    const die = (err: Error) => {
      this.dead = err;
      for (const w of this.waiting.values()) w.reject(err);
      this.waiting.clear();
    };
    worker.on('error', die);
    worker.on('exit', (code) => die(new Error(`the database thread exited (${code})`)));
  }

  onNotice(listener: (notice: unknown) => void): void {
    this.noticeListeners.push(listener);
  }

  beforeHeldRead(listener: () => void): void {
    this.heldReadListeners.push(listener);
  }

  post(msg: Record<string, unknown>, transfer: readonly ArrayBuffer[] = []): void {
    if (this.dead === null) this.worker.postMessage({ ...msg, id: 0 }, [...transfer]);
  }

  call<T>(msg: Record<string, unknown>): Promise<T> {
    if (this.dead !== null) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ ...msg, id });
    });
  }
}

function client(ch: WorkerChannel, tx: number | undefined, close: () => Promise<void>): SqlClient {
  const self: SqlClient = {
    query<T>(sql: string, params: readonly unknown[] = [], opts?: QueryOptions): Promise<SqlResult<T>> {
      const heldClicks = opts?.heldClicks === true;
      if (heldClicks) for (const l of ch.heldReadListeners) l();
      return ch.call<SqlResult<T>>({ op: 'query', sql, params, tx, heldClicks });
    },
    exec(sql: string) {
      return ch.call<void>({ op: 'exec', sql, tx });
    },
    async transaction<R>(fn: (t: SqlClient) => Promise<R>): Promise<R> {
      if (tx !== undefined) throw new Error('nested transactions are not supported');
      const id = await ch.call<number>({ op: 'begin' });
      let out: R;
      try {
        out = await fn(client(ch, id, () => Promise.resolve()));
      } catch (err) {
        await ch.call({ op: 'rollback', tx: id });
        throw err;
      }
      await ch.call({ op: 'commit', tx: id });
      return out;
    },
    close,
    thread: ch,
  };
  return self;
}

export interface PgliteOptions {
  /** PostgreSQL's shared_buffers, in MB. */
  readonly buffersMb: number;
  /** baseline: V8 compiles the WASM with Liftoff only; optimizing: hot functions tier up. */
  readonly compiler: 'baseline' | 'optimizing';
}

/**
 * PostgreSQL's own 128 MB of buffers and V8's optimized WASM code cost a small server 160 MB
 * between them. What going without costs in capacity is the memory bench's capacity table
 * (`npm run bench -- memory`): creates at about 0.8x of the same build with the old settings (one
 * run of 3 rounds: 3,432 vs 4,209/s), redirects unchanged. Chosen on purpose for small servers.
 */
export const SMALL_DATABASE: PgliteOptions = { buffersMb: 16, compiler: 'baseline' };

/** `dataDir` null keeps everything in memory (tests). */
export async function openPglite(
  dataDir: string | null,
  opts: PgliteOptions = SMALL_DATABASE,
): Promise<SqlClient> {
  const unlock = dataDir === null ? () => {} : lockDataDir(dataDir);
  const pgdata = dataDir === null ? null : join(dataDir, 'pg');
  // A first start copies the template instead of running initdb (data-template.ts); in memory,
  // PGlite itself loads the archive.
  let template: Uint8Array | null = null;
  if (pgdata === null) {
    const archive = templateArchive();
    template = archive === null ? null : new Uint8Array(archive);
  } else {
    await seedDataDir(pgdata);
  }
  // V8's flags are the process's: set before the thread compiles the database's WASM, they
  // decide its code (no other WASM runs in Hop).
  setFlagsFromString(opts.compiler === 'baseline' ? '--liftoff-only' : '--no-liftoff-only');
  const worker = new Worker(PGLITE_WORKER, {
    workerData: { dataDir: pgdata, template, buffersMb: opts.buffersMb, clickHost: CLICK_THREAD_HOST },
    transferList: template === null ? [] : [template.buffer as ArrayBuffer],
  });
  const ready = new Promise<void>((resolve, reject) => {
    const onMessage = (m: Reply) => {
      if (m.id !== 0) return;
      worker.off('message', onMessage);
      if (m.ok) resolve();
      else reject(new DatabaseError(m.error ?? { message: 'the database did not start' }));
    };
    worker.on('message', onMessage);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the database thread exited (${code}) while starting`)));
  });
  try {
    await ready;
  } catch (err) {
    await worker.terminate();
    unlock();
    throw err;
  }
  const ch = new WorkerChannel(worker);
  let closing: Promise<void> | null = null;
  const close = () => {
    closing ??= (async () => {
      try {
        await ch.call({ op: 'close' });
      } finally {
        await worker.terminate();
        unlock();
      }
    })();
    return closing;
  };
  return client(ch, undefined, close);
}
