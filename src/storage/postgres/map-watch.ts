// How a running Hop learns of a newer shard map (DESIGN §13): a push, PostgreSQL's LISTEN on shard
// 0 (the mover NOTIFYs hop_shard_map after publishing), plus a poll, so a missed notification or a
// dropped connection cannot leave a process routing by an old map for longer than one interval.
import pg from 'pg';

export const MAP_CHANNEL = 'hop_shard_map';

export class MapWatch {
  private timer: NodeJS.Timeout | null = null;
  private client: pg.Client | null = null;
  private stopped = false;

  constructor(
    private readonly url: string,
    private readonly pollMs: number,
    private readonly refresh: () => Promise<unknown>,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.refresh().catch(() => {}), this.pollMs);
    this.timer.unref();
    void this.listen();
  }

  private async listen(): Promise<void> {
    while (!this.stopped) {
      const client = new pg.Client({ connectionString: this.url, application_name: 'hop-map-watch' });
      this.client = client;
      try {
        const ended = new Promise<void>((resolve) => {
          client.on('error', () => resolve());
          client.on('end', () => resolve());
        });
        await client.connect();
        client.on('notification', () => void this.refresh().catch(() => {}));
        await client.query(`LISTEN ${MAP_CHANNEL}`);
        // A notification sent while this was not listening is caught up here.
        await this.refresh().catch(() => {});
        await ended;
      } catch {
        // The server is down or failing over: the poll covers the gap; listen again shortly.
      }
      await client.end().catch(() => {});
      if (!this.stopped) await new Promise((r) => setTimeout(r, this.pollMs).unref());
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    await this.client?.end().catch(() => {});
  }
}
