// `hop shards status | add | rebalance | move | remove | abort | resume`: online resharding from the
// command line (DESIGN §13). Runs against HOP_DATABASE_URLS while Hop processes keep serving.
import type { Config } from '../config.ts';
import { parseBucketRange, planMove, planRebalance } from '../domain/reshard-plan.ts';
import { abortMoves, type MoveReport, runMoves } from '../resharding/mover.ts';
import { closeReshardCluster, newestMap, openReshardCluster } from '../resharding/reshard-cluster.ts';
import { addShard, detachIfLast, shardsStatus } from '../resharding/shard-admin.ts';

type Line = (line: string) => void;

const USAGE =
  'hop shards status [--json] | add <primaryURL[,replicaURL…]> | rebalance | move --buckets A-B --to N | remove N | abort | resume';

function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
}

function printReport(r: MoveReport, out: Line): void {
  out(
    `moved ${r.moved} bucket(s), ${r.rowsCopied} rows staged, in ${r.seconds.toFixed(1)} s` +
      (r.aborted > 0 ? `; ${r.aborted} dropped` : ''),
  );
  if (r.fenceMs.length > 0) {
    out(
      `write fence per bucket: p50 ${quantile(r.fenceMs, 0.5).toFixed(1)} ms, p99 ${quantile(r.fenceMs, 0.99).toFixed(1)} ms, max ${Math.max(...r.fenceMs).toFixed(1)} ms`,
    );
  }
}

export async function runShards(
  config: Config,
  positionals: string[],
  values: Record<string, unknown>,
  out: Line,
  err: Line,
): Promise<number> {
  const [sub, ...rest] = positionals;
  if (config.databaseUrls === null) {
    err(
      'hop shards works on a scaled-out store: set HOP_DATABASE_URLS (the embedded database moves with hop move-store).',
    );
    return 2;
  }
  if (
    sub === undefined ||
    !['status', 'add', 'rebalance', 'move', 'remove', 'abort', 'resume'].includes(sub)
  ) {
    err(`Usage: ${USAGE}`);
    return 2;
  }
  const c = await openReshardCluster(config.databaseUrls);
  try {
    switch (sub) {
      case 'status': {
        const s = await shardsStatus(c);
        if (values.json === true) {
          out(JSON.stringify(s, null, 2));
          return 0;
        }
        out(`shard map version ${s.mapVersion}, ${s.shards.length} shard(s)`);
        for (const sh of s.shards)
          out(`  shard ${sh.shard}: ${sh.buckets} buckets, ${sh.links} links  ${sh.urls}`);
        out(
          `moves: ${s.movesInProgress.length} in progress, ${s.movesDone} done, ${s.movesAborted} aborted` +
            (s.fenceMs === null
              ? ''
              : `; fence p50 ${s.fenceMs.p50.toFixed(1)} ms, p99 ${s.fenceMs.p99.toFixed(1)} ms, max ${s.fenceMs.max.toFixed(1)} ms`),
        );
        for (const m of s.movesInProgress.slice(0, 20))
          out(`  bucket ${m.bucket}: shard ${m.from} → ${m.to} (${m.state})`);
        if (s.movesInProgress.length > 0)
          out('  (hop shards resume finishes them; hop shards abort drops them)');
        return 0;
      }
      case 'add': {
        if (rest[0] === undefined) {
          err('Usage: hop shards add <primaryURL[,replicaURL…]>');
          return 2;
        }
        const { shard, map } = await addShard(c, rest[0]);
        out(`shard ${shard} is part of the cluster (map version ${map.version}); it owns no buckets yet.`);
        out(
          'next: hop shards rebalance; and name it last in HOP_DATABASE_URLS for every Hop started from now on:',
        );
        out(`  HOP_DATABASE_URLS='${c.urls.join(';')}'`);
        return 0;
      }
      case 'rebalance':
      case 'resume': {
        const map = await newestMap(c.primaries);
        printReport(await runMoves(c, sub === 'rebalance' ? planRebalance(map) : [], { log: out }), out);
        return 0;
      }
      case 'move': {
        const range = parseBucketRange(String(values.buckets ?? ''));
        const to = Number(values.to);
        if (range === null || !Number.isInteger(to)) {
          err('Usage: hop shards move --buckets A-B --to N (buckets 0-1023)');
          return 2;
        }
        const map = await newestMap(c.primaries);
        printReport(await runMoves(c, planMove(map, range, to), { log: out }), out);
        return 0;
      }
      case 'remove': {
        const shard = Number(rest[0]);
        const map = await newestMap(c.primaries);
        if (!Number.isInteger(shard) || shard <= 0 || shard >= map.shardCount) {
          err(
            `hop shards remove takes a shard 1..${map.shardCount - 1} (shard 0 holds the catalog: keys, webhooks, domains)`,
          );
          return 2;
        }
        const others = Array.from({ length: map.shardCount }, (_, i) => i).filter((i) => i !== shard);
        printReport(await runMoves(c, planRebalance(map, others), { log: out }), out);
        const left = await detachIfLast(c, shard);
        out(
          left === 'detached'
            ? `shard ${shard} is drained and out of the map: drop it from HOP_DATABASE_URLS; its servers can be stopped.`
            : `shard ${shard} is drained; it stays in the map with no buckets (only the last shard can leave it).`,
        );
        return 0;
      }
      case 'abort': {
        const r = await abortMoves(c);
        out(
          `${r.aborted} move(s) aborted` +
            (r.cleaned ? '; staged copies dropped' : '; a mover is running: it stops before its next fence'),
        );
        return 0;
      }
    }
    return 2;
  } finally {
    await closeReshardCluster(c);
  }
}
