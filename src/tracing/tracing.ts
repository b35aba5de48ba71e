// The tracing port: spans for requests and the work done for them, W3C trace context in and out.
// Off by default: NO_TRACING does nothing and costs nothing; the OpenTelemetry adapter
// (otel-tracing.ts) is loaded only when the OTEL_* variables ask for traces (open-tracing.ts).
import type { IncomingMessage, RequestListener } from 'node:http';

export type SpanKind = 'internal' | 'server' | 'client' | 'producer' | 'consumer';
export type SpanAttributes = Readonly<Record<string, string | number | boolean>>;

/** A span in progress; every method is a no-op when it is not sampled. */
export interface Span {
  setAttribute(key: string, value: string | number | boolean): void;
  /** Records the error on the span and marks it failed. */
  fail(err: unknown): void;
  end(): void;
  /** This span as a W3C `traceparent`, to carry across a process boundary; null when not sampled. */
  traceparent(): string | null;
}

export interface SpanOptions {
  readonly kind?: SpanKind;
  readonly attributes?: SpanAttributes;
  /**
   * Where the span hangs: by default under the active span (a new trace when none); null starts a
   * new trace; a string is a W3C `traceparent` carried from elsewhere (a stream entry).
   */
  readonly parent?: string | null;
  /** Spans this one follows from without being their child: W3C `traceparent`s. */
  readonly links?: readonly string[];
  /**
   * Made only under an active sampled span: detail of a traced request. Background loops (polls,
   * leases, blocking reads) then make no spans of their own.
   */
  readonly childOnly?: boolean;
  /** When the span began (epoch ms), if before it was started. */
  readonly startTime?: number;
  /** The work inside makes no spans of its own (thousands of commands under one batch span). */
  readonly quiet?: boolean;
}

export interface Tracing {
  /** False for NO_TRACING: callers that would prepare something for spans check this once, at start. */
  readonly enabled: boolean;
  /**
   * Runs fn with a new span active, ended when fn returns or its promise settles; a throw or a
   * rejection marks it failed.
   */
  withSpan<T>(name: string, opts: SpanOptions, fn: (span: Span) => T): T;
  /** Whether a sampled span is active (detail worth recording is being asked for). */
  sampledSpanActive(): boolean;
  /** The active span as a W3C `traceparent` when it is sampled, else null. */
  currentTraceparent(): string | null;
  /** Adds the active context's `traceparent` and `tracestate` to an outgoing request's headers. */
  inject(headers: Record<string, string>): void;
  /**
   * The listener with a server span around each request, parented by its `traceparent` header,
   * except requests for the `untraced` paths (probes, scrapes); the listener itself when off.
   */
  serveHttp(listener: RequestListener, untraced?: ReadonlySet<string>): RequestListener;
  /** Names a request's server span by its route (e.g. `/:code`). */
  nameRoute(req: IncomingMessage, route: string): void;
  /** `trace_id` and `span_id` of the active span, for log lines. */
  logFields(): Record<string, string>;
  /** Exports what is left and stops. */
  close(): Promise<void>;
}

export const NOOP_SPAN: Span = {
  setAttribute() {},
  fail() {},
  end() {},
  traceparent: () => null,
};

export const NO_TRACING: Tracing = {
  enabled: false,
  withSpan: (_name, _opts, fn) => fn(NOOP_SPAN),
  sampledSpanActive: () => false,
  currentTraceparent: () => null,
  inject() {},
  serveHttp: (listener) => listener,
  nameRoute() {},
  logFields: () => ({}),
  close: async () => {},
};
