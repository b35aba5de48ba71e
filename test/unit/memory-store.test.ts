import { MemoryStore } from '../../src/storage/memory/memory-store.ts';
import { runStoreConformance } from '../conformance/store-conformance.ts';

runStoreConformance('memory', async () => new MemoryStore());
