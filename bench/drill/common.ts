// What both shapes of the drill share: running `hop` commands, the seed, the checks of the API key
// and the webhook, and the result they print.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { type HopProcess, REPO_ROOT } from '../lib/hop-process.ts';
import type { Check } from './ledger.ts';

/**
 * Splits a check after recover-links: a delete the workload made while the mistake ran (between
 * --since and --until) is undone with the mistake's — recover-links cannot tell them apart, and
 * says so — so it is reported apart, not as a lost link. Deletes made after the window must stay.
 */
export function splitUndone(
  check: Check,
  window: { from: number; to: number } | null,
): { check: Check; undone: number } {
  if (window === null) return { check, undone: 0 };
  const undone = check.wrong.filter(
    (w) =>
      w.expected === null && typeof w.actual === 'string' && w.ackAt >= window.from && w.ackAt <= window.to,
  );
  const wrong = check.wrong.filter((w) => !undone.includes(w));
  const times = wrong.map((w) => w.ackAt);
  const firstLost = times.length === 0 ? null : Math.min(...times);
  const lastLost = times.length === 0 ? null : Math.max(...times);
  return {
    check: {
      ...check,
      wrong,
      firstLost,
      lastLost,
      windowMs: firstLost === null || lastLost === null ? null : lastLost - firstLost,
    },
    undone: undone.length,
  };
}

import type { WriteCounts } from './writes.ts';

export type Disaster = 'lose-data-dir' | 'drop-table' | 'mass-delete';
export const DISASTERS: readonly Disaster[] = ['lose-data-dir', 'drop-table', 'mass-delete'];

export interface DrillOptions {
  links: number;
  disaster: Disaster;
  /** How long writes go on between the backup and the disaster, and after a mass delete, ms. */
  writeMs?: number | undefined;
  /** Progress lines (stderr in the CLI). */
  log?: ((line: string) => void) | undefined;
  /** Cluster: replicas per shard (default 1) and shards (default 2). */
  replicas?: number | undefined;
  shards?: number | undefined;
  /** Cluster: archive_timeout in seconds (default 2). */
  archiveTimeoutS?: number | undefined;
}

export interface RpoFigure {
  /** Acknowledged codes served wrong or missing. */
  lost: number;
  /** Time between the first and the last acknowledgement among them, s (null: none lost). */
  windowS: number | null;
  /** When the first and last of them were acknowledged, s relative to the disaster (negative: before). */
  fromS: number | null;
  toS: number | null;
  sample: string[];
}

export interface DrillResult {
  shape: 'embedded' | 'cluster';
  disaster: Disaster;
  links: number;
  seedS: number;
  clicks: number;
  backup: { seconds: number; bytes: number; note: string };
  writes: WriteCounts & { acknowledgedCodes: number };
  /** Restore alone: seconds, rows loaded, rows/s. */
  restore: { seconds: number; rows: number; rowsPerS: number };
  /** The replay (or recover-links) step: seconds and what it said. */
  replay: { seconds: number; said: string };
  /** Restore start → Hop serving the recovered data again, s. */
  rtoS: number;
  /** What "without replay" means for this disaster. */
  withoutReplayMeans: string;
  rpoWithoutReplay: RpoFigure;
  rpoWithReplay: RpoFigure;
  /**
   * Mass delete only: deletes acknowledged after the mistake that recover-links undid (it puts back
   * every link deleted since --since and cannot tell the mistake's deletes from later ones). Counted
   * apart from lost links.
   */
  undoneDeletes: number;
  checked: number;
  apiKeyOk: boolean;
  webhookOk: boolean;
  notes: string[];
  ok: boolean;
}

export const HOP_BIN = join(REPO_ROOT, 'bin', 'hop.js');
/** Where a Hop process the drill started answers. */
export const urlOf = (hop: HopProcess): string => `http://127.0.0.1:${hop.target.port}`;

export const DRILL_KEY = 'hop_drillkeydrillkeydrillkeydrillkey0001';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  seconds: number;
}

/** `hop <args>` to its end, with Hop's quiet defaults and `env` on top of this process's. */
export function runHopCli(
  args: string[],
  env: Record<string, string>,
  timeoutMs = 30 * 60_000,
): Promise<CliRun> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [HOP_BIN, ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, HOP_LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr, seconds: (performance.now() - t0) / 1000 });
    });
  });
}

export async function mustRun(args: string[], env: Record<string, string>): Promise<CliRun> {
  const run = await runHopCli(args, env);
  if (run.code !== 0) {
    throw new Error(
      `hop ${args.join(' ')} failed (exit ${run.code}):\n${run.stderr.slice(-2000)}${run.stdout.slice(-1000)}`,
    );
  }
  return run;
}

export function rpoOf(check: Check, disasterAt: number): RpoFigure {
  const rel = (t: number | null) => (t === null ? null : t <= 0 ? null : (t - disasterAt) / 1000);
  return {
    lost: check.wrong.length,
    windowS: check.windowMs === null ? null : check.windowMs / 1000,
    fromS: rel(check.firstLost),
    toS: rel(check.lastLost),
    sample: check.wrong
      .slice(0, 5)
      .map((w) => `${w.code}: expected ${w.expected ?? 'deleted'}, got ${w.actual ?? 'deleted'}`),
  };
}

/** A webhook to find again after recovery, and clicks on the first links. */
export async function createWebhook(baseUrl: string): Promise<string> {
  const res = await fetch(`${baseUrl}/api/v1/webhooks`, {
    method: 'POST',
    headers: { authorization: `Bearer ${DRILL_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      url: 'https://hooks.drill.example/hop',
      events: ['link.created', 'link.deleted'],
    }),
  });
  const body = (await res.json()) as { id?: string };
  if (res.status !== 201 || body.id === undefined)
    throw new Error(`creating the drill's webhook answered ${res.status}: ${JSON.stringify(body)}`);
  return body.id;
}

export async function clickSome(baseUrl: string, codes: readonly string[]): Promise<number> {
  let n = 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < codes.length) {
        const code = codes[next++]!;
        const res = await fetch(`${baseUrl}/${code}`, { redirect: 'manual' });
        await res.arrayBuffer();
        if (res.status >= 300 && res.status < 400) n++;
      }
    }),
  );
  return n;
}

/** The API key still lets requests in, and the webhook is still listed. */
export async function keyAndWebhook(
  baseUrl: string,
  webhookId: string,
): Promise<{ apiKeyOk: boolean; webhookOk: boolean }> {
  const headers = { authorization: `Bearer ${DRILL_KEY}` };
  const links = await fetch(`${baseUrl}/api/v1/links?limit=1`, { headers }).catch(() => null);
  await links?.arrayBuffer();
  const hooks = await fetch(`${baseUrl}/api/v1/webhooks`, { headers }).catch(() => null);
  const text = hooks === null ? '' : await hooks.text();
  return { apiKeyOk: links?.status === 200, webhookOk: hooks?.status === 200 && text.includes(webhookId) };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function n(x: number): string {
  return Math.round(x).toLocaleString('en-US');
}

function rpoText(r: RpoFigure): string {
  if (r.lost === 0) return '0 acknowledged writes missing';
  const at = (x: number) => `t${x < 0 ? '-' : '+'}${Math.abs(x).toFixed(2)} s`;
  const window = r.windowS === null ? '' : `, covering ${r.windowS.toFixed(2)} s of acknowledgements`;
  const span =
    r.fromS === null || r.toS === null
      ? ''
      : ` (acknowledged from ${at(r.fromS)} to ${at(r.toS)}, t = the disaster)`;
  return `${n(r.lost)} acknowledged writes missing${window}${span}`;
}

export function formatResult(r: DrillResult): string {
  const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`;
  const lines = [
    `Restore drill: ${r.shape}, disaster ${r.disaster}, ${n(r.links)} links seeded in ${r.seedS.toFixed(1)} s, ${n(r.clicks)} clicks`,
    `  backup            ${mb(r.backup.bytes)} in ${r.backup.seconds.toFixed(2)} s (${r.backup.note})`,
    `  writes after it   ${n(r.writes.creates)} creates, ${n(r.writes.edits)} edits, ${n(r.writes.deletes)} deletes acknowledged; ${n(r.writes.failed)} failed or in doubt`,
    `  restore           ${r.restore.seconds.toFixed(2)} s, ${n(r.restore.rows)} rows, ${n(r.restore.rowsPerS)} rows/s`,
    `  replay            ${r.replay.seconds.toFixed(2)} s: ${r.replay.said}`,
    `  RTO               ${r.rtoS.toFixed(2)} s (restore start → Hop serving the recovered data)`,
    `  RPO without replay ${rpoText(r.rpoWithoutReplay)} [${r.withoutReplayMeans}]`,
    `  RPO with replay   ${rpoText(r.rpoWithReplay)}`,
    ...(r.undoneDeletes > 0
      ? [
          `  undone deletes    ${n(r.undoneDeletes)} deletes the workload made while the mistake ran were undone with it (recover-links cannot tell them apart; not counted as lost)`,
        ]
      : []),
    `  checked           ${n(r.checked)} acknowledged codes through the redirect; API key ${r.apiKeyOk ? 'OK' : 'MISSING'}, webhook ${r.webhookOk ? 'OK' : 'MISSING'}`,
    ...r.rpoWithReplay.sample.map((s) => `    lost: ${s}`),
    ...r.notes.map((s) => `  note: ${s}`),
    r.ok ? 'PASS: every acknowledged link is back' : 'FAIL: acknowledged links lost or wrong after recovery',
  ];
  return lines.join('\n');
}
