// The system-design playbook's scaling stages as data: later issues make a stage runnable by giving
// it a `run`, and the playbook scenario reports whatever is there.

import type { ScenarioReport } from './lib/report.ts';
import type { BenchContext } from './scenarios/common.ts';

export interface PlaybookStage {
  stage: number;
  name: string;
  /** What the stage changes, in the playbook's words. */
  change: string;
  /** Why it cannot run yet; absent once `run` is provided. */
  unavailable?: string;
  run?: (ctx: BenchContext) => Promise<ScenarioReport>;
}

export const PLAYBOOK_STAGES: PlaybookStage[] = [
  {
    stage: 1,
    name: 'no index on code',
    change: 'every redirect is a sequential scan of links',
    unavailable: 'needs the PostgreSQL server adapter and a configuration without the primary-key index',
  },
  {
    stage: 2,
    name: 'indexed lookups',
    change: 'a B-tree index on code makes a redirect one index probe',
    unavailable: 'needs the PostgreSQL server adapter (the embedded store is indexed from the start)',
  },
  {
    stage: 3,
    name: 'bounded connection pool',
    change: 'a fixed pool of database connections, so overload queues instead of exhausting the server',
    unavailable: 'needs the PostgreSQL server adapter',
  },
  {
    stage: 4,
    name: 'cache-aside',
    change: 'redirects read a cache first and fill it from the database on a miss',
    unavailable:
      'runnable once Hop serves from the PostgreSQL server adapter; meanwhile `redirect --cache on|off` ' +
      'measures the in-process cache over the embedded store',
  },
  {
    stage: 5,
    name: 'read replicas',
    change: 'redirects read from replicas; writes go to the primary',
    unavailable: 'needs issue "Scale out the store"',
  },
  {
    stage: 6,
    name: 'sharded',
    change: 'links spread over shards by bucket; each shard owns a slice of the code space',
    unavailable: 'needs issue "Scale out the store"',
  },
];
