// A store seen through one client session: every call runs in the same consistency scope, the
// way an API client that keeps its hop_ct cookie is served. Reads then see the session's own
// writes even when they go to replicas, which is what the store conformance suite expects.
import { RequestConsistency, runWithConsistency } from '../../src/storage/consistency.ts';
import type { Store } from '../../src/storage/ports.ts';

export function asSession(store: Store): Store {
  const session = new RequestConsistency(null);
  return new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) =>
        runWithConsistency(session, () => (v as (...a: unknown[]) => unknown).apply(target, args));
    },
  });
}
