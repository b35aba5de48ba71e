// Group commit: requests that arrive while a transaction is running wait and then share the
// next one. Under load this turns N commits into one without adding latency when idle.

export class GroupCommit<In, Out> {
  private queue: { input: In; resolve: (o: Out) => void; reject: (e: unknown) => void }[] = [];
  private running = false;
  private readonly run: (inputs: In[]) => Promise<Out[]>;
  private readonly maxBatch: number;

  constructor(run: (inputs: In[]) => Promise<Out[]>, maxBatch = 256) {
    this.run = run;
    this.maxBatch = maxBatch;
  }

  submit(input: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.maxBatch);
        try {
          const outs = await this.run(batch.map((b) => b.input));
          for (const [i, b] of batch.entries()) b.resolve(outs[i]!);
        } catch (err) {
          for (const b of batch) b.reject(err);
        }
      }
    } finally {
      this.running = false;
    }
  }
}
