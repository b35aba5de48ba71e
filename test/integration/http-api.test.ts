import { startHarness } from '../support/harness.ts';
import { runHttpApiSuite } from './http-api-suite.ts';

runHttpApiSuite('the embedded database', () => startHarness());
