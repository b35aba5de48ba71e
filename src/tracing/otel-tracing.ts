// The tracing port on the OpenTelemetry SDK: spans exported by OTLP (JSON over HTTP, batched), the
// active span carried by AsyncLocalStorage, W3C trace context in and out. Loaded only when tracing
// is on (open-tracing.ts), so a Hop that does not trace never loads the SDK.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import {
  type Context,
  context,
  DiagLogLevel,
  diag,
  isSpanContextValid,
  type Link,
  type Span as OtelSpan,
  propagation,
  ROOT_CONTEXT,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { parseTraceParent, suppressTracing, W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import {
  defaultResource,
  detectResources,
  envDetector,
  resourceFromAttributes,
} from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  NodeTracerProvider,
  ParentBasedSampler,
  type Sampler,
  SamplingDecision,
  type SamplingResult,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import { createLogger } from '../logger.ts';
import {
  type SpanKind as HopSpanKind,
  NOOP_SPAN,
  type Span,
  type SpanOptions,
  type Tracing,
} from './tracing.ts';
import type { TracingSettings } from './tracing-config.ts';

const KINDS: Record<HopSpanKind, SpanKind> = {
  internal: SpanKind.INTERNAL,
  server: SpanKind.SERVER,
  client: SpanKind.CLIENT,
  producer: SpanKind.PRODUCER,
  consumer: SpanKind.CONSUMER,
};

const isSampled = (sc: SpanContext) => (sc.traceFlags & TraceFlags.SAMPLED) !== 0;

function traceparentOf(sc: SpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

/** A carried `traceparent` as a remote span context; null when it is not a valid one. */
function spanContextOf(traceparent: string): SpanContext | null {
  const sc = parseTraceParent(traceparent);
  return sc !== null && isSpanContextValid(sc) ? sc : null;
}

/**
 * A span with no parent follows its links: the worker's span for a click batch is sampled when the
 * redirect it links to was, whatever share of new traces the sampler keeps. Otherwise, as configured.
 */
class FollowLinksSampler implements Sampler {
  private readonly inner: Sampler;
  constructor(inner: Sampler) {
    this.inner = inner;
  }
  shouldSample(...args: Parameters<Sampler['shouldSample']>): SamplingResult {
    const [ctx, , , , , links] = args;
    const parent = trace.getSpanContext(ctx);
    if ((parent === undefined || !isSpanContextValid(parent)) && links.some((l) => isSampled(l.context))) {
      return { decision: SamplingDecision.RECORD_AND_SAMPLED };
    }
    return this.inner.shouldSample(...args);
  }
  toString(): string {
    return `FollowLinks{${this.inner.toString()}}`;
  }
}

function samplerFor(s: TracingSettings): Sampler {
  switch (s.sampler) {
    case 'always_on':
      return new FollowLinksSampler(new AlwaysOnSampler());
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new FollowLinksSampler(new TraceIdRatioBasedSampler(s.ratio));
    case 'parentbased_always_on':
      return new FollowLinksSampler(new ParentBasedSampler({ root: new AlwaysOnSampler() }));
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new FollowLinksSampler(new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(s.ratio) }));
  }
}

class SpanHandle implements Span {
  private readonly span: OtelSpan;
  constructor(span: OtelSpan) {
    this.span = span;
  }
  setAttribute(key: string, value: string | number | boolean): void {
    this.span.setAttribute(key, value);
  }
  fail(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.span.recordException(err instanceof Error ? err : message);
    this.span.setStatus({ code: SpanStatusCode.ERROR, message });
  }
  end(): void {
    this.span.end();
  }
  traceparent(): string | null {
    const sc = this.span.spanContext();
    return isSampled(sc) ? traceparentOf(sc) : null;
  }
}

const headerGetter = {
  keys: (h: IncomingMessage['headers']) => Object.keys(h),
  get: (h: IncomingMessage['headers'], key: string) => h[key],
};

class OtelTracing implements Tracing {
  readonly enabled = true;
  private readonly provider: NodeTracerProvider;
  private readonly tracer: Tracer;
  /** Server spans of requests in flight, for naming them by route. */
  private readonly requests = new WeakMap<IncomingMessage, OtelSpan>();
  /**
   * The sampler keeps no new trace (always_off, ratio 0): a request without a traceparent is then
   * served as untraced at once, without asking the SDK for a span it would not record.
   */
  private readonly rootsNeverSampled: boolean;
  private closing: Promise<void> | null = null;

  constructor(provider: NodeTracerProvider, settings: TracingSettings) {
    this.provider = provider;
    this.tracer = provider.getTracer('hop');
    this.rootsNeverSampled =
      settings.sampler === 'always_off' ||
      settings.sampler === 'parentbased_always_off' ||
      (settings.sampler.endsWith('traceidratio') && settings.ratio === 0);
  }

  private parentOf(opts: SpanOptions): Context | null {
    const active = context.active();
    if (opts.childOnly === true && trace.getSpan(active)?.isRecording() !== true) return null;
    if (opts.parent === undefined) return active;
    if (opts.parent === null) return ROOT_CONTEXT;
    const sc = spanContextOf(opts.parent);
    return sc === null ? ROOT_CONTEXT : trace.setSpanContext(ROOT_CONTEXT, sc);
  }

  private start(name: string, opts: SpanOptions, parent: Context): OtelSpan {
    const links: Link[] = [];
    for (const tp of opts.links ?? []) {
      const sc = spanContextOf(tp);
      if (sc !== null) links.push({ context: sc });
    }
    return this.tracer.startSpan(
      name,
      {
        kind: KINDS[opts.kind ?? 'internal'],
        ...(opts.attributes === undefined ? {} : { attributes: opts.attributes }),
        ...(links.length === 0 ? {} : { links }),
        ...(opts.startTime === undefined ? {} : { startTime: opts.startTime }),
      },
      parent,
    );
  }

  withSpan<T>(name: string, opts: SpanOptions, fn: (span: Span) => T): T {
    const parent = this.parentOf(opts);
    if (parent === null) return fn(NOOP_SPAN);
    const span = this.start(name, opts, parent);
    // Not sampled: nothing to record, and nothing under it would be either.
    if (!span.isRecording()) return fn(NOOP_SPAN);
    let ctx = trace.setSpan(parent, span);
    if (opts.quiet === true) ctx = suppressTracing(ctx);
    const handle = new SpanHandle(span);
    let out: T;
    try {
      out = context.with(ctx, fn, undefined, handle);
    } catch (err) {
      handle.fail(err);
      span.end();
      throw err;
    }
    if (out instanceof Promise) {
      // The same promise type back, settled after the span ends.
      return out.then(
        (v: unknown) => {
          span.end();
          return v;
        },
        (err: unknown) => {
          handle.fail(err);
          span.end();
          throw err;
        },
      ) as T;
    }
    span.end();
    return out;
  }

  sampledSpanActive(): boolean {
    return trace.getSpan(context.active())?.isRecording() === true;
  }

  currentTraceparent(): string | null {
    const sc = trace.getSpanContext(context.active());
    return sc !== undefined && isSpanContextValid(sc) && isSampled(sc) ? traceparentOf(sc) : null;
  }

  inject(headers: Record<string, string>): void {
    propagation.inject(context.active(), headers);
  }

  serveHttp(listener: RequestListener, untraced: ReadonlySet<string> = new Set()): RequestListener {
    return (req: IncomingMessage, res: ServerResponse) => {
      const carried = req.headers.traceparent !== undefined;
      if ((!carried && this.rootsNeverSampled) || untraced.has(req.url ?? '')) {
        listener(req, res);
        return;
      }
      const parent = carried ? propagation.extract(ROOT_CONTEXT, req.headers, headerGetter) : ROOT_CONTEXT;
      const method = req.method ?? 'GET';
      const span = this.tracer.startSpan(method, { kind: SpanKind.SERVER }, parent);
      // Not sampled: the request runs as it would untraced (no context, no listeners).
      if (!span.isRecording()) {
        listener(req, res);
        return;
      }
      const url = req.url ?? '/';
      const q = url.indexOf('?');
      span.setAttributes({
        'http.request.method': method,
        'url.path': q === -1 ? url : url.slice(0, q),
        'url.scheme': 'http',
        ...(req.headers.host === undefined ? {} : { 'server.address': req.headers.host }),
        ...(req.socket.remoteAddress === undefined
          ? {}
          : { 'network.peer.address': req.socket.remoteAddress }),
      });
      this.requests.set(req, span);
      res.once('close', () => {
        const status = res.statusCode;
        span.setAttribute('http.response.status_code', status);
        if (!res.writableFinished) {
          span.setStatus({ code: SpanStatusCode.ERROR, message: 'the client went away before the answer' });
        } else if (status >= 500) {
          span.setStatus({ code: SpanStatusCode.ERROR });
          span.setAttribute('error.type', String(status));
        }
        span.end();
      });
      const ctx = trace.setSpan(parent, span);
      // Bodies and answers are streamed in events of the connection, not of this call: bind them.
      context.bind(ctx, req);
      context.bind(ctx, res);
      context.with(ctx, listener, undefined, req, res);
    };
  }

  nameRoute(req: IncomingMessage, route: string): void {
    const span = this.requests.get(req);
    if (span === undefined) return;
    span.updateName(`${req.method ?? 'GET'} ${route}`);
    span.setAttribute('http.route', route);
  }

  logFields(): Record<string, string> {
    const sc = trace.getSpanContext(context.active());
    return sc === undefined || !isSpanContextValid(sc) ? {} : { trace_id: sc.traceId, span_id: sc.spanId };
  }

  close(): Promise<void> {
    this.closing ??= this.provider.shutdown().catch(() => {});
    return this.closing;
  }
}

/** Starts the SDK: resource (service name), sampler, OTLP exporter; made the process's global. */
export function openOtelTracing(
  settings: TracingSettings,
  opts: { serviceName: string; logLevel: string },
): Tracing {
  // The SDK's own troubles (an export that failed, a bad endpoint) go to Hop's log.
  const log = createLogger(opts.logLevel).child({ component: 'tracing' });
  const detail = (args: unknown[]) => ({
    detail: args.map((a) => (a instanceof Error ? a.message : String(a))),
  });
  diag.setLogger(
    {
      error: (msg, ...args) => log.error(detail(args), msg),
      warn: (msg, ...args) => log.warn(detail(args), msg),
      info: (msg) => log.debug(msg),
      debug: (msg) => log.trace(msg),
      verbose: (msg) => log.trace(msg),
    },
    { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true },
  );
  for (const note of settings.notes) log.warn(note);
  // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (the environment detector) win over the default.
  const resource = defaultResource()
    .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: opts.serviceName }))
    .merge(detectResources({ detectors: [envDetector] }));
  const provider = new NodeTracerProvider({
    resource,
    sampler: samplerFor(settings),
    // The exporter reads OTEL_EXPORTER_OTLP_* and the processor OTEL_BSP_* themselves.
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  provider.register({ propagator: new W3CTraceContextPropagator() });
  return new OtelTracing(provider, settings);
}
