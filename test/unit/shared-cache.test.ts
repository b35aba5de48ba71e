import { MemorySharedCache, MemorySharedHub } from '../../src/cache/memory-shared-cache.ts';
import { runSharedCacheConformance } from '../conformance/shared-cache-conformance.ts';

runSharedCacheConformance('memory', async () => {
  const hub = new MemorySharedHub();
  const opts = { ttlMs: 60_000, negativeTtlMs: 100 };
  const a = new MemorySharedCache(hub, opts);
  const b = new MemorySharedCache(hub, opts);
  return { a, b, negativeTtlMs: 100, close: async () => {} };
});
