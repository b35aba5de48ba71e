// Picks the tracing adapter. Off (the default), it is NO_TRACING and nothing of OpenTelemetry is
// loaded; on, the SDK is imported here, on first use, and nowhere else.

import { NO_TRACING, type Tracing } from './tracing.ts';
import type { TracingSettings } from './tracing-config.ts';

export interface TracingOptions {
  /** The service's name unless OTEL_SERVICE_NAME says otherwise: hop, hop-worker. */
  readonly serviceName: string;
  /** The SDK's own warnings (a failed export) go to the log at this level. */
  readonly logLevel: string;
}

export async function openTracing(settings: TracingSettings, opts: TracingOptions): Promise<Tracing> {
  if (!settings.enabled) return NO_TRACING;
  const { openOtelTracing } = await import('./otel-tracing.ts');
  return openOtelTracing(settings, opts);
}
