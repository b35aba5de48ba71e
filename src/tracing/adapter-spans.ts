// Which calls of the store and of the cache tiers get spans, and what the spans say. The composition
// root applies these when tracing is on (traced-calls.ts); the adapters know nothing of tracing.
import type { LruCache } from '../cache/lru-cache.ts';
import type { SharedCache, SharedEntry } from '../cache/shared-cache.ts';
import type { Store } from '../storage/ports.ts';
import { traceCalls } from './traced-calls.ts';
import type { Tracing } from './tracing.ts';

// Not operations: reading these is bookkeeping, not a query.
const NOT_QUERIES = new Set(['topology', 'constructor']);

/** One client span per store operation, made only inside a traced request or job. */
export function traceStore<S extends Store>(store: S, tracing: Tracing): S {
  return traceCalls(store, tracing, {
    span: (method) =>
      NOT_QUERIES.has(method)
        ? null
        : {
            name: `store ${method}`,
            opts: {
              kind: 'client',
              childOnly: true,
              attributes: {
                'db.system.name': 'postgresql',
                'db.operation.name': method,
                'hop.store': store.kind,
              },
            },
          },
  });
}

/** L1 (in process): its lookups, hit, negative (a cached "no such code") or miss. */
export function traceL1<V>(l1: LruCache<V>, tracing: Tracing): LruCache<V> {
  return traceCalls(l1, tracing, {
    span: (method) =>
      method === 'get'
        ? { name: 'cache.l1 get', opts: { childOnly: true, attributes: { 'hop.cache.tier': 'l1' } } }
        : null,
    annotate: (_method, span, result) =>
      span.setAttribute(
        'hop.cache.result',
        result === undefined ? 'miss' : result === null ? 'negative' : 'hit',
      ),
  });
}

const L2_TRACED = new Set(['get', 'set', 'invalidate']);

/** L2 (Redis): lookups, fills and invalidations; the Redis commands under them have spans of their own. */
export function traceL2(l2: SharedCache, tracing: Tracing): SharedCache {
  return traceCalls(l2, tracing, {
    span: (method) =>
      L2_TRACED.has(method)
        ? { name: `cache.l2 ${method}`, opts: { childOnly: true, attributes: { 'hop.cache.tier': 'l2' } } }
        : null,
    annotate: (method, span, result) => {
      if (method !== 'get') return;
      const entry = result as SharedEntry | undefined;
      span.setAttribute(
        'hop.cache.result',
        entry === undefined ? 'miss' : entry.record === null ? 'negative' : 'hit',
      );
    },
  });
}
