import { openEmbeddedStore } from '../../src/storage/embedded/open-embedded-store.ts';
import { runClickLogConformance } from '../conformance/click-log-conformance.ts';
import { runStoreConformance } from '../conformance/store-conformance.ts';

runStoreConformance('embedded PGlite', () => openEmbeddedStore({ dataDir: null, codeLength: 7 }));
runClickLogConformance('embedded PGlite', () => openEmbeddedStore({ dataDir: null, codeLength: 7 }));
