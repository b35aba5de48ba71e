// The live click feed: clicks fan out to Server-Sent Events subscribers as they are recorded.
// Publishing never waits on a subscriber: each has a bounded buffer (the socket's), and one that
// falls behind is dropped — a slow dashboard can never slow a redirect.
import { type ClickEvent, publicClick } from '../domain/clicks.ts';

export interface FeedSubscriber {
  /** Only this link's clicks, or every link's when null. */
  readonly code: string | null;
  /** Returns false when the subscriber cannot take more (then it is dropped). */
  send(chunk: string): boolean;
  /** Ends the subscriber's stream. */
  end(): void;
}

export interface ClickFeedOptions {
  readonly heartbeatMs: number;
}

/** What a subscriber sees of a click (publicClick). */
export function feedItem(e: ClickEvent): string {
  return `event: click\nid: ${e.id}\ndata: ${JSON.stringify(publicClick(e))}\n\n`;
}

export class ClickFeed {
  private readonly subscribers = new Set<FeedSubscriber>();
  private readonly timer: NodeJS.Timeout;
  dropped = 0;

  constructor(opts: ClickFeedOptions) {
    this.timer = setInterval(() => this.broadcast(': heartbeat\n\n', null), opts.heartbeatMs);
    this.timer.unref();
  }

  get size(): number {
    return this.subscribers.size;
  }

  subscribe(s: FeedSubscriber): () => void {
    this.subscribers.add(s);
    return () => this.subscribers.delete(s);
  }

  publish(e: ClickEvent): void {
    if (this.subscribers.size === 0) return;
    this.broadcast(feedItem(e), e.code);
  }

  private broadcast(chunk: string, code: string | null): void {
    for (const s of this.subscribers) {
      if (code !== null && s.code !== null && s.code !== code) continue;
      if (!s.send(chunk)) {
        this.subscribers.delete(s);
        this.dropped++;
        s.end();
      }
    }
  }

  /** Ends every stream (shutdown), so draining does not wait for them. */
  close(): void {
    clearInterval(this.timer);
    for (const s of this.subscribers) s.end();
    this.subscribers.clear();
  }
}
