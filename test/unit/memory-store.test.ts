import { MemoryStore } from '../../src/storage/memory/memory-store.ts';
import { runClickLogConformance } from '../conformance/click-log-conformance.ts';
import { runStoreConformance } from '../conformance/store-conformance.ts';

runStoreConformance('memory', async () => new MemoryStore());
runClickLogConformance('memory', async () => new MemoryStore());
