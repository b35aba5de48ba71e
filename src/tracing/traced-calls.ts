// Spans around a port's calls, added from outside: with tracing on, the composition root wraps an
// adapter (the store, the cache tiers, a Redis client) in a proxy that gives each call made inside
// a sampled span a child span of its own; with tracing off the adapter is handed on untouched, so
// the untraced path is the same code it was. Calls outside any sampled span (background loops,
// unsampled requests) pass straight through.
import type { Span, SpanOptions, Tracing } from './tracing.ts';

export interface CallSpans {
  /** The span for a call of this method; null for none (the call passes through). */
  span(method: string): { readonly name: string; readonly opts: SpanOptions } | null;
  /** Attributes read off what a call gave back (a cache's hit or miss). */
  annotate?(method: string, span: Span, result: unknown): void;
}

export function traceCalls<T extends object>(target: T, tracing: Tracing, spans: CallSpans): T {
  if (!tracing.enabled) return target;
  // Each method once: traced, or bound to the target so its own field reads skip the proxy.
  const methods = new Map<PropertyKey, unknown>();
  return new Proxy(target, {
    get(t, prop) {
      const known = methods.get(prop);
      if (known !== undefined) return known;
      const value: unknown = Reflect.get(t, prop, t);
      if (typeof value !== 'function') return value;
      const fn = value as (...args: unknown[]) => unknown;
      const spec = typeof prop === 'string' ? spans.span(prop) : null;
      const call =
        spec === null
          ? fn.bind(t)
          : (...args: unknown[]) => {
              if (!tracing.sampledSpanActive()) return fn.apply(t, args);
              return tracing.withSpan(spec.name, spec.opts, (span) => {
                const out = fn.apply(t, args);
                const annotate = spans.annotate;
                if (annotate === undefined) return out;
                if (!(out instanceof Promise)) {
                  annotate(prop as string, span, out);
                  return out;
                }
                return out.then((v: unknown) => {
                  annotate(prop as string, span, v);
                  return v;
                });
              });
            };
      methods.set(prop, call);
      return call;
    },
  });
}
