import { openEmbeddedStore } from '../../src/storage/embedded/open-embedded-store.ts';
import { runStoreConformance } from '../conformance/store-conformance.ts';

runStoreConformance('embedded PGlite', () => openEmbeddedStore({ dataDir: null, codeLength: 7 }));
