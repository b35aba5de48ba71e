// Resident memory of a process while a phase runs: VmRSS of it and of its descendants every ~100 ms,
// and the kernel's own high-water mark (VmHWM), which sees the peaks between two samples.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

export interface RssFigures {
  /** The most resident at once in the window, KiB: sampled, or the kernel's VmHWM when higher. */
  peakKb: number | null;
  /** The last reading (taken on the spot while the process lives), KiB. */
  lastKb: number | null;
  samples: number;
  /** The most descendant processes seen at once (their RSS counts in the sums). */
  descendants: number;
}

function readStatus(pid: number): { rssKb: number; hwmKb: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /^VmRSS:\s+(\d+)\s+kB/m.exec(text);
    const hwm = /^VmHWM:\s+(\d+)\s+kB/m.exec(text);
    return rss === null || hwm === null ? null : { rssKb: Number(rss[1]), hwmKb: Number(hwm[1]) };
  } catch {
    return null;
  }
}

/** Every process descended from `pid` (children, grandchildren…), from the parent ids in /proc. */
export function descendantPids(pid: number): number[] {
  const children = new Map<number, number[]>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(e)]);
    } catch {
      // Gone meanwhile.
    }
  }
  const out: number[] = [];
  for (let queue = [pid]; queue.length > 0; ) {
    const next = children.get(queue.shift()!) ?? [];
    out.push(...next);
    queue.push(...next);
  }
  return out;
}

/**
 * Resets the kernel's high-water mark of `pid` to its current RSS (`5` into clear_refs, Linux 4.0+,
 * needs the rights to ptrace it); false where that is refused, and VmHWM then covers the whole life.
 */
function resetHighWaterMark(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

// Descendants are looked for about once a second: a scan of /proc costs more than the readings.
const SCAN_EVERY = 10;

/**
 * Samples `pid` and its descendants until stopped or until the process is gone. A window opens at
 * start and at each `window()`: the peak is the window's own. Sampling runs on the bench's event
 * loop, so a busy generator samples less often; the kernel's VmHWM catches what falls between.
 */
export class RssSampler {
  readonly pid: number;
  readonly #timer: NodeJS.Timeout;
  #descendants: number[] = [];
  #ticks = 0;
  #hwmValid = true;
  #gone = false;
  #w: RssFigures = { peakKb: null, lastKb: null, samples: 0, descendants: 0 };

  /** `justStarted`: the process was spawned a moment ago, so its VmHWM is all this window's. */
  constructor(pid: number, o: { intervalMs?: number; justStarted?: boolean } = {}) {
    this.pid = pid;
    if (o.justStarted === false) this.#hwmValid = resetHighWaterMark(pid);
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), o.intervalMs ?? 100);
    this.#timer.unref();
  }

  #sample(): void {
    if (this.#gone) return;
    const own = readStatus(this.pid);
    if (own === null) {
      this.#gone = true;
      clearInterval(this.#timer);
      return;
    }
    if (this.#ticks++ % SCAN_EVERY === 0) this.#descendants = descendantPids(this.pid);
    let total = own.rssKb;
    let alive = 0;
    for (const d of this.#descendants) {
      const s = readStatus(d);
      if (s !== null) {
        total += s.rssKb;
        alive++;
      }
    }
    const w = this.#w;
    const hwm = this.#hwmValid ? own.hwmKb : 0;
    w.peakKb = Math.max(w.peakKb ?? 0, total, hwm);
    w.lastKb = total;
    w.samples++;
    w.descendants = Math.max(w.descendants, alive);
  }

  /** Opens a new window: figures from now on. */
  window(): void {
    this.#hwmValid = resetHighWaterMark(this.pid);
    this.#w = { peakKb: null, lastKb: null, samples: 0, descendants: 0 };
    this.#sample();
  }

  /** The current window's figures, with a fresh reading. */
  read(): RssFigures {
    this.#sample();
    return { ...this.#w };
  }

  /** Stops sampling; the figures of the last window. */
  stop(): RssFigures {
    const out = this.read();
    this.#gone = true;
    clearInterval(this.#timer);
    return out;
  }
}

/** An `onSpawn` for a process starter that puts a sampler on the process the moment it exists. */
export function sampleFromSpawn(): { rss: RssSampler | null; onSpawn: (child: { pid: number }) => void } {
  const out = {
    rss: null as RssSampler | null,
    onSpawn: (child: { pid: number }) => {
      out.rss = new RssSampler(child.pid);
    },
  };
  return out;
}
