// Progress of an import on stderr: one line redrawn in place on a terminal, or a line every few
// seconds when stderr is a file or a pipe (CI logs, `2> import.log`). Messages go through `log` so
// they never land in the middle of the redrawn line.

export interface ProgressStream {
  readonly isTTY?: boolean;
  write(chunk: string): unknown;
}

export class Progress {
  private readonly stream: ProgressStream;
  private readonly tty: boolean;
  private readonly everyMs: number;
  private last = 0;
  private shown = '';
  private pending = '';

  constructor(stream: ProgressStream, everyMs = 5_000) {
    this.stream = stream;
    this.tty = stream.isTTY === true;
    this.everyMs = everyMs;
  }

  /** The current state; drawn now on a terminal (at most 10 times a second), else every few seconds. */
  update(text: string): void {
    this.pending = text;
    const now = Date.now();
    if (now - this.last < (this.tty ? 100 : this.everyMs)) return;
    this.last = now;
    this.draw();
  }

  /** A message on its own line. */
  log(line: string): void {
    if (this.tty && this.shown !== '') this.stream.write('\r\u001b[2K');
    this.stream.write(`${line}\n`);
    if (this.tty && this.shown !== '') this.stream.write(this.shown);
  }

  /** Leaves the last state on its own line (a terminal) and stops drawing. */
  end(): void {
    if (this.tty) {
      if (this.pending !== '' && this.pending !== this.shown) this.draw();
      if (this.shown !== '') this.stream.write('\n');
    }
    this.shown = '';
  }

  private draw(): void {
    if (this.tty) {
      const width = Math.max(20, ((this.stream as { columns?: number }).columns || 100) - 1);
      this.shown = this.pending.length > width ? this.pending.slice(0, width) : this.pending;
      this.stream.write(`\r\u001b[2K${this.shown}`);
    } else {
      this.stream.write(`${this.pending}\n`);
    }
  }
}
