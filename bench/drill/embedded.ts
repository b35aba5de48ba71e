// The restore drill on the embedded default: `hop import` seeds the links, `hop backup` copies them
// while Hop serves, writes go on, the disaster strikes, and the recovery uses only what survives it:
// the backup file and the fsynced change log (kept in its own directory, HOP_CHANGE_LOG, as on
// another disk).
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { openPglite, SMALL_DATABASE } from '../../src/storage/embedded/pglite-client.ts';
import { type HopProcess, importLinks, makeTempDir, removeDir, startHop } from '../lib/hop-process.ts';
import { linkUrl, randomCodes, writeLinksJsonl } from '../lib/links.ts';
import {
  clickSome,
  createWebhook,
  DRILL_KEY,
  type DrillOptions,
  type DrillResult,
  keyAndWebhook,
  mustRun,
  rpoOf,
  sleep,
  splitUndone,
  urlOf,
} from './common.ts';
import { Ledger, redirectLookup } from './ledger.ts';
import { eachLimit, startWrites, type WriteCounts } from './writes.ts';

export async function runEmbeddedDrill(o: DrillOptions): Promise<DrillResult> {
  const log = o.log ?? (() => {});
  const writeMs = o.writeMs ?? 3_000;
  const base = await makeTempDir('hop-drill');
  const data = join(base, 'data');
  const changeLog = join(base, 'changes');
  const backupFile = join(base, 'backup.gz');
  const setup = (dataDir: string, env: Record<string, string> = {}) => ({
    dataDir,
    apiKey: DRILL_KEY,
    env: { HOP_CHANGE_LOG: changeLog, ...env },
  });
  const ledger = new Ledger();
  const notes: string[] = [];
  let live: HopProcess | null = null;
  try {
    // Seed: N links with their own codes (8 characters, never a generated one), imported stopped.
    const codes = randomCodes(o.links, 8, 20);
    for (const [i, c] of codes.entries()) ledger.seed(c, linkUrl(i));
    const jsonl = join(base, 'seed.jsonl');
    await writeLinksJsonl(jsonl, codes);
    const seed = await importLinks(setup(data), jsonl, o.links);
    log(`seeded ${o.links} links in ${(seed.ms / 1000).toFixed(1)} s`);
    let hop = await startHop(setup(data));
    live = hop;
    const webhookId = await createWebhook(urlOf(hop));
    const clicks = await clickSome(urlOf(hop), codes.slice(0, Math.min(o.links, 5_000)));
    await sleep(1_500); // the clicks' flush

    const backup = await mustRun(['backup', '--output', backupFile], {
      HOP_DATA_DIR: data,
      HOP_CHANGE_LOG: changeLog,
    });
    const backupBytes = (await stat(backupFile)).size;
    log(`backup: ${backupBytes} bytes in ${backup.seconds.toFixed(2)} s`);

    // Writes after the backup; a mass delete's victims are seeded links no client touches.
    const isVictim = (i: number) => o.disaster === 'mass-delete' && i % 10 === 9;
    const victims = codes.filter((_, i) => isVictim(i));
    const writes = startWrites({
      baseUrl: urlOf(hop),
      apiKey: DRILL_KEY,
      ledger,
      seeded: codes.filter((_, i) => !isVictim(i)),
    });
    await sleep(writeMs);

    let disasterAt: number;
    let counts: WriteCounts;
    let mistakeAt: Date | null = null;
    let mistakeEnd: Date | null = null;
    if (o.disaster === 'lose-data-dir') {
      // The machine's disk is gone mid-write: only the backup and the log's own directory survive.
      disasterAt = Date.now();
      hop.child.proc.kill('SIGKILL');
      await hop.child.exited;
      live = null;
      counts = await writes.stop();
      await rm(data, { recursive: true, force: true });
    } else if (o.disaster === 'drop-table') {
      // Writes stop, Hop stops, then the links table is dropped by hand.
      counts = await writes.stop();
      await hop.stop();
      live = null;
      disasterAt = Date.now();
      const db = await openPglite(data, SMALL_DATABASE);
      try {
        await db.exec('DROP TABLE links CASCADE');
      } finally {
        await db.close();
      }
    } else {
      // An operator deletes ~10% of the links through the API; the writes go on after it.
      await sleep(100);
      mistakeAt = new Date();
      disasterAt = mistakeAt.getTime();
      await sleep(100);
      const bearer = { authorization: `Bearer ${DRILL_KEY}` };
      let deleted = 0;
      await eachLimit(victims, 16, async (code) => {
        const res = await fetch(`${urlOf(hop)}/api/v1/links/${code}`, { method: 'DELETE', headers: bearer });
        await res.arrayBuffer();
        if (res.status === 204) deleted++;
      });
      mistakeEnd = new Date();
      log(`mass delete: ${deleted} of ${victims.length} links deleted by mistake`);
      notes.push(`the mistake: ${deleted} links deleted through the API at ${mistakeAt.toISOString()}`);
      await sleep(writeMs / 2);
      counts = await writes.stop();
      await hop.stop();
      live = null;
    }
    log(`disaster ${o.disaster}; ${ledger.codes().length} acknowledged codes to check`);

    // Restore, and the figure without replay: the backup (or the copy from before the mistake)
    // served alone, change log off.
    const restored = o.disaster === 'mass-delete' ? join(base, 'side') : join(base, 'restored');
    const restoreArgs = ['restore', backupFile, '--data-dir', restored];
    if (mistakeAt !== null) restoreArgs.push('--change-log', changeLog, '--until', mistakeAt.toISOString());
    const restore = await mustRun(restoreArgs, {});
    const rows = Number(/OK: \d+ tables, (\d+) rows/.exec(restore.stdout)?.[1] ?? 0);
    log(`restore: ${rows} rows in ${restore.seconds.toFixed(2)} s`);

    const alone = await startHop(setup(restored, { HOP_CHANGE_LOG: 'off' }));
    live = alone;
    const without = await ledger.check(redirectLookup(urlOf(alone)));
    await alone.stop();
    live = null;
    log(`without replay: ${without.wrong.length} of ${without.checked} wrong`);

    let replaySeconds: number;
    let said: string;
    const stepStart = performance.now();
    if (mistakeAt === null) {
      // The restored backup started with the log: Hop replays what the log holds beyond it.
      hop = await startHop(setup(restored));
      live = hop;
      replaySeconds = (performance.now() - stepStart) / 1000;
      said = 'Hop started on the restored backup with the change log, which it replays at start';
    } else {
      // The live data directory, stopped: links deleted since the mistake come back from the copy.
      const recover = await mustRun(
        [
          'recover-links',
          '--from',
          restored,
          '--since',
          mistakeAt.toISOString(),
          '--until',
          mistakeEnd!.toISOString(),
        ],
        {
          HOP_DATA_DIR: data,
          HOP_CHANGE_LOG: changeLog,
        },
      );
      hop = await startHop(setup(data));
      live = hop;
      replaySeconds = recover.seconds;
      said = `hop recover-links: ${recover.stdout.trim().split('\n').at(-1)}`;
    }
    // RTO: the restore, then the replay (or recover-links) and Hop's start; the check of the copy
    // alone in between is the drill's, not the recovery's.
    const rtoS = restore.seconds + (performance.now() - stepStart) / 1000;
    const withReplay = await ledger.check(redirectLookup(urlOf(hop)));
    const extras = await keyAndWebhook(urlOf(hop), webhookId);
    await hop.stop();
    live = null;
    const split = splitUndone(
      withReplay,
      mistakeAt === null ? null : { from: mistakeAt.getTime(), to: mistakeEnd!.getTime() },
    );
    const rpoWithReplay = rpoOf(split.check, disasterAt);
    return {
      shape: 'embedded',
      disaster: o.disaster,
      links: o.links,
      seedS: seed.ms / 1000,
      clicks,
      backup: {
        seconds: backup.seconds,
        bytes: backupBytes,
        note: 'hop backup while Hop serves, over its control socket',
      },
      writes: { ...counts, acknowledgedCodes: ledger.codes().length },
      restore: { seconds: restore.seconds, rows, rowsPerS: rows / restore.seconds },
      replay: { seconds: replaySeconds, said },
      rtoS,
      withoutReplayMeans:
        mistakeAt === null
          ? 'the backup restored and served with HOP_CHANGE_LOG=off'
          : 'the copy from just before the mistake (backup + log --until) served alone: later writes lost',
      rpoWithoutReplay: rpoOf(without, disasterAt),
      rpoWithReplay,
      undoneDeletes: split.undone,
      checked: withReplay.checked,
      ...extras,
      notes,
      ok: rpoWithReplay.lost === 0 && extras.apiKeyOk && extras.webhookOk,
    };
  } finally {
    if (live !== null) await live.stop().catch(() => {});
    await removeDir(base);
  }
}
