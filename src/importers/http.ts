// GET JSON from another shortener's API: only ever from the origin the user gave, retrying 429 and
// 5xx (honouring Retry-After) and network errors a bounded number of times, and saying plainly
// when the credentials are refused.
import { SourceError } from './source.ts';

export interface HttpOptions {
  /** The source's name, for messages. */
  readonly name: string;
  readonly headers: Readonly<Record<string, string>>;
  /** What to fix when the source refuses the credentials, e.g. "check --key". */
  readonly authHint: string;
  readonly maxAttempts?: number;
  readonly timeoutMs?: number;
  /** Longest wait between attempts (a Retry-After beyond it is cut to it). */
  readonly maxDelayMs?: number;
  /** Told of each retry (progress line). */
  readonly onRetry?: (message: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Retry-After as seconds or an HTTP date, in ms from now; null when absent or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number | null {
  if (header === null || header.trim() === '') return null;
  const v = header.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

export class SourceHttp {
  private readonly base: URL;
  private readonly opts: HttpOptions;

  constructor(base: string | URL, opts: HttpOptions) {
    this.base = new URL(base);
    this.opts = opts;
  }

  /** `target`: a path (with query) under the base URL, or a full URL on the same origin. */
  url(target: string, query: Record<string, string | number | null | undefined> = {}): URL {
    const u = /^https?:\/\//i.test(target)
      ? new URL(target)
      : new URL(`${this.base.href.replace(/\/+$/, '')}/${target.replace(/^\/+/, '')}`);
    if (u.origin !== this.base.origin)
      throw new SourceError(
        `${this.opts.name}: refusing to follow ${u.origin}; only ${this.base.origin} is read.`,
      );
    for (const [k, v] of Object.entries(query))
      if (v !== null && v !== undefined) u.searchParams.set(k, String(v));
    return u;
  }

  async getJson<T>(target: string | URL): Promise<T> {
    return (await this.get<T>(target, false)) as T;
  }

  /** As getJson, but null when the source answers 404 (something it does not have, or an older API). */
  getJsonOrNull<T>(target: string | URL): Promise<T | null> {
    return this.get<T>(target, true);
  }

  private async get<T>(target: string | URL, missingOk: boolean): Promise<T | null> {
    const url = typeof target === 'string' ? this.url(target) : this.url(target.href);
    const attempts = this.opts.maxAttempts ?? 6;
    const maxDelay = this.opts.maxDelayMs ?? 60_000;
    let last = '';
    for (let attempt = 1; attempt <= attempts; attempt++) {
      let res: Response;
      let text: string;
      try {
        res = await fetch(url, {
          headers: { accept: 'application/json', ...this.opts.headers },
          // A redirect could lead anywhere: it is reported, not followed.
          redirect: 'manual',
          signal: AbortSignal.timeout(this.opts.timeoutMs ?? 30_000),
        });
        text = await res.text();
      } catch (e) {
        // No answer, or one cut off: the network's fault, worth another try.
        const err = e as Error;
        last = err.cause instanceof Error ? err.cause.message : err.message;
        if (attempt < attempts) await this.wait(attempt, null, last, attempts, maxDelay);
        continue;
      }
      if (res.ok) {
        try {
          return JSON.parse(text) as T;
        } catch {
          throw new SourceError(`${this.opts.name}: ${url.pathname} did not answer JSON: ${snippet(text)}`);
        }
      }
      const body = text;
      if (res.status === 404 && missingOk) return null;
      if (res.status === 401 || res.status === 403)
        throw new SourceError(
          `${this.opts.name} refused the request (${res.status} ${res.statusText}): ${this.opts.authHint}. ${snippet(body)}`.trim(),
        );
      if (res.status >= 300 && res.status < 400)
        throw new SourceError(
          `${this.opts.name}: ${url.pathname} answered ${res.status}, a redirect to ${res.headers.get('location') ?? '?'}; give that address instead.`,
        );
      if (res.status !== 429 && res.status < 500)
        throw new SourceError(`${this.opts.name}: ${url.pathname} answered ${res.status}: ${snippet(body)}`);
      last = `${res.status} ${res.statusText}`;
      if (attempt < attempts)
        await this.wait(attempt, retryAfterMs(res.headers.get('retry-after')), last, attempts, maxDelay);
    }
    throw new SourceError(`${this.opts.name}: ${url.pathname} failed ${attempts} times (last: ${last}).`);
  }

  private async wait(
    attempt: number,
    retryAfter: number | null,
    why: string,
    attempts: number,
    maxDelay: number,
  ): Promise<void> {
    // Without Retry-After: 0.5 s, 1 s, 2 s, … with jitter, so parallel requests do not retry in step.
    const ms = Math.min(maxDelay, retryAfter ?? 500 * 2 ** (attempt - 1) * (0.5 + Math.random() / 2));
    this.opts.onRetry?.(
      `${this.opts.name}: ${why}; retrying in ${(ms / 1000).toFixed(1)} s (attempt ${attempt + 1} of ${attempts})`,
    );
    await sleep(ms);
  }
}

function snippet(text: string): string {
  const t = text.replace(/\s+/g, ' ').trim();
  return t.length > 200 ? `${t.slice(0, 200)}…` : t;
}
