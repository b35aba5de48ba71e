// The system-design playbook's scaling stages as data: a stage is runnable once it has a `start`, and
// the playbook scenario measures whatever is there with the same workload. Stages 1, 2 and 4 run on
// the embedded store; 3, 5 and 6 on PostgreSQL clusters of their own.

import type { Table } from './lib/report.ts';
import type { BenchContext, Sut } from './scenarios/common.ts';
import { clusterStage } from './scenarios/playbook-cluster.ts';
import { embeddedStage } from './scenarios/playbook-embedded.ts';

/** What the playbook scenario hands every stage. */
export interface StageEnv {
  /** The links every stage serves, in seed order (codes[0] is the most popular under Zipf). */
  codes: readonly string[];
  apiKey: string;
  /**
   * A data directory of its own holding the scenario's links exactly as `hop import` left them,
   * so every stage starts from the same data and none sees another's changes.
   */
  freshDataDir(name: string): Promise<string>;
  /** An empty directory of the stage's own, removed after it. */
  emptyDir(name: string): Promise<string>;
  /** The links as JSON Lines, for `hop import` into a store of the stage's own (a PostgreSQL cluster). */
  linksFile: string;
  /** CPU budget of each Hop process, in cores; null for none. */
  cpuQuota: number | null;
  /** CPU budget of each PostgreSQL server a stage starts, in cores; null for none. */
  dbCpuQuota: number | null;
}

/** A stage's system, up and ready for the redirect workload. */
export interface RunningStage {
  /** Where the load goes. */
  sut: Sut;
  /** Shown with the results: query plans and whatever else shows what the stage changed. */
  details: Table[];
  /** Anything the reader must know; `stop` may add to it (e.g. how often a CPU quota throttled). */
  notes: string[];
  /** Called right before and after the closed-loop capacity probe, while the system is up. */
  beforeProbe?: () => Promise<void>;
  afterProbe?: () => Promise<void>;
  /** Called right before and after the measured open-loop run, while the system is up; may add notes. */
  beforeRun?: () => Promise<void>;
  afterRun?: () => Promise<void>;
  stop(): Promise<void>;
}

export interface PlaybookStage {
  stage: number;
  name: string;
  /** What the stage changes, in the playbook's words. */
  change: string;
  /** Why it cannot run yet; absent once `start` is provided. */
  unavailable?: string;
  start?: (ctx: BenchContext, env: StageEnv) => Promise<RunningStage>;
}

/**
 * The stage whose capacity sets the one open-loop rate all stages are measured at (half its max):
 * the plain indexed store, which the stages before it fall short of and the ones after improve on.
 */
export const RATE_REFERENCE_STAGE = 2;

export const PLAYBOOK_STAGES: PlaybookStage[] = [
  {
    stage: 1,
    name: 'no index on code',
    change: 'every redirect is a sequential scan of links',
    start: embeddedStage({ dropPrimaryKey: true, cache: false, explain: true }),
  },
  {
    stage: 2,
    name: 'indexed lookups',
    change: 'a B-tree index on code makes a redirect one index probe',
    start: embeddedStage({ dropPrimaryKey: false, cache: false, explain: true }),
  },
  {
    stage: 3,
    name: 'bounded connection pool',
    change: 'a fixed pool of database connections, so overload queues instead of exhausting the server',
    start: clusterStage({ shards: 1, replicas: 0, primaryReads: false }),
  },
  {
    stage: 4,
    name: 'cache-aside in front of the store',
    change: 'redirects read a cache first and fill it from the database on a miss',
    start: embeddedStage({ dropPrimaryKey: false, cache: true, explain: false }),
  },
  {
    stage: 5,
    name: 'read replicas',
    change: 'redirects read from replicas; writes go to the primary',
    // The primary takes its turn in the read rotation: one replica then doubles the servers reading.
    start: clusterStage({ shards: 1, replicas: 1, primaryReads: true }),
  },
  {
    stage: 6,
    name: 'sharded',
    change: 'links spread over shards by bucket; each shard owns a slice of the code space',
    start: clusterStage({ shards: 2, replicas: 0, primaryReads: false }),
  },
];

/** Parses `--stages 1,2,4`; every number must name a stage. */
export function parseStageList(raw: string, stages: readonly PlaybookStage[] = PLAYBOOK_STAGES): number[] {
  const known = new Set(stages.map((s) => s.stage));
  const picked: number[] = [];
  for (const part of raw.split(',')) {
    const n = Number(part.trim());
    if (part.trim() === '' || !Number.isInteger(n) || !known.has(n)) {
      throw new Error(
        `--stages needs stage numbers from ${[...known].join(',')} separated by commas, got ${JSON.stringify(raw)}`,
      );
    }
    if (!picked.includes(n)) picked.push(n);
  }
  return picked.sort((a, b) => a - b);
}

/**
 * The order stages run in: the rate reference first when the rate is not given, since every other
 * stage's open-loop run needs its capacity; otherwise the playbook's order. Reports keep stage order.
 */
export function executionOrder<T extends { stage: number }>(
  stages: readonly T[],
  reference: number | null,
): T[] {
  const ref = stages.find((s) => s.stage === reference);
  return ref === undefined ? [...stages] : [ref, ...stages.filter((s) => s !== ref)];
}
