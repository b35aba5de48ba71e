// PGlite's own thread. The embedded database runs its WASM here, so queries and click-batch
// writes never block the event loop that serves redirects. Plain JavaScript on purpose: a
// worker does not inherit the TypeScript loader the main thread was started with.
import { pathToFileURL } from 'node:url';
import { getHeapStatistics } from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm';
import { exportDatabase, hashingSink, openLoad, streamingSink } from './backup-thread.mjs';

const port = parentPort;
const transactions = new Map();
let nextTx = 1;
/** The embedded click writer, when the process records clicks (click-thread-host.ts). */
let clicks = null;
/** Backups being streamed to the main thread, by stream id (their acks and cancels find them). */
const exports = new Map();
/** A restore's load, between backup-load-begin and backup-load-end (or -abort). */
let loading = null;

/**
 * Loads the click writer: bundled JavaScript, or the TypeScript source, for which this thread
 * registers tsx's loader itself (a worker does not inherit the main thread's).
 */
async function openClicks(options) {
  if (workerData.clickHost.endsWith('.ts')) {
    const { register } = await import('tsx/esm/api');
    register();
  }
  const { ClickThreadHost } = await import(pathToFileURL(workerData.clickHost).href);
  return ClickThreadHost.open(db, options, (notice) => port.postMessage(notice));
}

function reply(id, result) {
  port.postMessage({ id, ok: true, result });
}

function fail(id, err) {
  const e = err instanceof Error ? err : new Error(String(err));
  port.postMessage({ id, ok: false, error: { message: e.message, code: e.code, detail: e.detail } });
}

let db;
try {
  db = await PGlite.create({
    ...(workerData.dataDir === null ? {} : { dataDir: workerData.dataDir }),
    // In memory, the data directory comes from the template archive instead of initdb.
    ...(workerData.template === null ? {} : { loadDataDir: new Blob([workerData.template]) }),
    extensions: { pg_trgm },
    // PGlite's defaults plus the buffer pool Hop is configured for (PostgreSQL's 128 MB default
    // is most of a small server's memory; pages beyond it are read back from the files).
    startParams: [...PGlite.defaultStartParams, '-c', `shared_buffers=${workerData.buffersMb}MB`],
  });
} catch (err) {
  fail(0, err);
  process.exit(1);
}

function target(txId) {
  if (txId === undefined) return db;
  const t = transactions.get(txId);
  if (t === undefined || t.tx === undefined) throw new Error(`no open transaction ${txId}`);
  return t.tx;
}

async function begin() {
  const txId = nextTx++;
  const entry = {};
  transactions.set(txId, entry);
  // Resolves once PGlite has given this transaction the database (it may wait for another).
  await new Promise((started) => {
    entry.done = db
      .transaction(async (tx) => {
        entry.tx = tx;
        await new Promise((commit, rollback) => {
          entry.commit = commit;
          entry.rollback = rollback;
          started();
        });
      })
      .finally(() => transactions.delete(txId));
    entry.done.catch(() => started());
  });
  return txId;
}

async function end(txId, commit) {
  const t = transactions.get(txId);
  if (t === undefined) throw new Error(`no open transaction ${txId}`);
  if (commit) {
    t.commit();
    await t.done;
  } else {
    t.rollback(new Error('rolled back'));
    await t.done.catch(() => {});
  }
}

port.on('message', async (m) => {
  try {
    switch (m.op) {
      case 'query': {
        const r = await target(m.tx).query(m.sql, m.params);
        // In the same turn as the answer, as the click writer's held clicks require.
        if (m.heldClicks && clicks !== null) clicks.addHeld(r.rows);
        reply(m.id, { rows: r.rows, affectedRows: r.affectedRows ?? 0 });
        break;
      }
      case 'clicks':
        clicks?.take(m.batch);
        break;
      case 'clicks-open':
        clicks ??= await openClicks(m.options);
        reply(m.id, null);
        break;
      case 'clicks-flush':
        await clicks?.flush();
        reply(m.id, null);
        break;
      case 'clicks-settle':
        await clicks?.settle();
        reply(m.id, null);
        break;
      case 'clicks-close':
        await clicks?.close();
        reply(m.id, null);
        break;
      case 'click-stats':
        if (clicks === null) throw new Error('the click writer is not running on this thread');
        reply(m.id, await clicks.clickStats(m.query));
        break;
      case 'backup-export': {
        // Held clicks first, so the snapshot has them. Each chunk goes to the main thread as a
        // notice as soon as it is read (its bytes move, not copied); the answer ends the stream.
        await clicks?.flush();
        const sink = streamingSink((notice, transfer) =>
          port.postMessage({ id: -1, stream: m.stream, ...notice }, transfer),
        );
        exports.set(m.stream, sink);
        try {
          reply(m.id, await exportDatabase(db, sink));
        } finally {
          exports.delete(m.stream);
        }
        break;
      }
      case 'backup-ack':
        exports.get(m.stream)?.ack(m.bytes);
        break;
      case 'backup-cancel':
        exports.get(m.stream)?.cancel();
        break;
      case 'backup-check': {
        // A restore's check: the same ordered export, counted and hashed here, nothing kept.
        const sink = hashingSink();
        const r = await exportDatabase(db, sink);
        reply(m.id, { ...r, tables: sink.summaries() });
        break;
      }
      case 'backup-load-begin':
        if (loading !== null) throw new Error('a restore is already loading');
        loading = await openLoad(db);
        reply(m.id, null);
        break;
      case 'backup-load-chunk':
        if (loading === null) throw new Error('no restore is loading');
        await loading.chunk(m.table, m.columns, m.index, m.csv);
        reply(m.id, null);
        break;
      case 'backup-load-end': {
        const l = loading;
        loading = null;
        if (l === null) throw new Error('no restore is loading');
        await l.finish(m.sequences);
        reply(m.id, null);
        break;
      }
      case 'backup-load-abort': {
        const l = loading;
        loading = null;
        await l?.abort();
        reply(m.id, null);
        break;
      }
      case 'exec':
        await target(m.tx).exec(m.sql);
        reply(m.id, null);
        break;
      case 'begin':
        reply(m.id, await begin());
        break;
      case 'commit':
        await end(m.tx, true);
        reply(m.id, null);
        break;
      case 'rollback':
        await end(m.tx, false);
        reply(m.id, null);
        break;
      case 'memory': {
        // What this thread holds: the database's WASM memory (it grows and never shrinks) and
        // this thread's own V8 heap (the click writer's state lives there).
        const h = getHeapStatistics();
        reply(m.id, {
          wasm: db.mod?.HEAPU8?.byteLength ?? 0,
          heapUsed: h.used_heap_size,
          heapTotal: h.total_heap_size,
          external: h.external_memory,
        });
        break;
      }
      case 'close':
        await clicks?.close();
        clicks = null;
        await db.close();
        reply(m.id, null);
        break;
      default:
        throw new Error(`unknown op ${m.op}`);
    }
  } catch (err) {
    fail(m.id, err);
  }
});

port.postMessage({ id: 0, ok: true, result: 'ready' });
