// The embedded store with its change log (change-log.ts): a call that changes links returns only
// once its change is fsynced in the log, so an answer of 2xx means the link survives a crash.
import { HopError } from '../../domain/errors.ts';
import type { Store } from '../ports.ts';
import type { ChangeLog } from './change-log.ts';

/** The Store methods that write outbox rows (the changes the log must hold before answering). */
const WRITES = new Set<PropertyKey>([
  'createLink',
  'updateLink',
  'deleteLink',
  'renameTag',
  'deleteTags',
  'importLinks',
  'restoreLinks',
  'applyChanges',
]);

/** Reaches the log through the store (and any proxy around it): the backup hook prunes it. */
const CHANGE_LOG = Symbol('hop.changeLog');

export function changeLogOf(store: object): ChangeLog | null {
  return ((store as Record<symbol, unknown>)[CHANGE_LOG] as ChangeLog | undefined) ?? null;
}

export function withChangeLog<S extends Store>(store: S, log: ChangeLog): S {
  const methods = new Map<PropertyKey, unknown>();
  const durable = async () => {
    try {
      await log.sync();
    } catch (err) {
      // Committed in the database, not in the log: a crash now could lose it, so no 2xx. The
      // retry finds the change (idempotency record or the link itself) and syncs it again.
      throw new HopError(
        'write_in_doubt',
        'The change was committed but could not be written to the change log. Retry with the same Idempotency-Key.',
        { headers: { 'Retry-After': '1' }, cause: err },
      );
    }
  };
  return new Proxy(store, {
    get(t, prop) {
      if (prop === CHANGE_LOG) return log;
      const known = methods.get(prop);
      if (known !== undefined) return known;
      const value: unknown = Reflect.get(t, prop, t);
      if (typeof value !== 'function') return value;
      const fn = value as (...args: unknown[]) => unknown;
      let call: unknown;
      if (WRITES.has(prop)) {
        call = async (...args: unknown[]) => {
          const out = await fn.apply(t, args);
          await durable();
          return out;
        };
      } else if (prop === 'getIdempotency') {
        // A stored answer is repeated only once its change is in the log (the retry of a
        // write_in_doubt finds the answer here, before any write of its own would sync the log).
        call = async (...args: unknown[]) => {
          const stored = await fn.apply(t, args);
          if (stored !== null) await durable();
          return stored;
        };
      } else if (prop === 'close') {
        call = async () => {
          await log.close();
          await fn.apply(t, []);
        };
      } else {
        call = fn.bind(t);
      }
      methods.set(prop, call);
      return call;
    },
  });
}
