// The shared tier in process memory, for unit tests and the conformance suite: instances made on
// one hub share entries and invalidations the way processes on one Redis do.
import type { RedirectRecord } from '../domain/link.ts';
import type { SharedCache, SharedEntry } from './shared-cache.ts';

export class MemorySharedHub {
  readonly entries = new Map<string, SharedEntry>();
  readonly members = new Set<MemorySharedCache>();
  /** Tests flip this to stand for an outage. */
  down = false;
}

export class MemorySharedCache implements SharedCache {
  private readonly hub: MemorySharedHub;
  private readonly ttlMs: number;
  private readonly negativeTtlMs: number;
  private readonly handlers: ((code: string | null) => void)[] = [];
  private readonly now: () => number;

  constructor(hub: MemorySharedHub, opts: { ttlMs: number; negativeTtlMs: number; now?: () => number }) {
    this.hub = hub;
    this.ttlMs = opts.ttlMs;
    this.negativeTtlMs = opts.negativeTtlMs;
    this.now = opts.now ?? Date.now;
    hub.members.add(this);
  }

  get healthy(): boolean {
    return !this.hub.down;
  }

  async get(code: string): Promise<SharedEntry | undefined> {
    if (this.hub.down) return undefined;
    const e = this.hub.entries.get(code);
    if (e === undefined || e.expiresAt <= this.now()) return undefined;
    return e;
  }

  async set(code: string, record: RedirectRecord | null, loadMs: number): Promise<void> {
    if (this.hub.down) return;
    const ttl = record === null ? this.negativeTtlMs : this.ttlMs;
    this.hub.entries.set(code, { record, expiresAt: this.now() + ttl, loadMs });
  }

  async invalidate(code: string): Promise<void> {
    if (this.hub.down) return;
    this.hub.entries.delete(code);
    for (const m of this.hub.members) for (const h of m.handlers) h(code);
  }

  onInvalidate(handler: (code: string | null) => void): void {
    this.handlers.push(handler);
  }

  async close(): Promise<void> {
    this.hub.members.delete(this);
  }
}
