// Tracing's settings are OpenTelemetry's standard variables, not HOP_ ones: whether to trace, how to
// sample. The OTLP exporter reads its own (endpoint, headers, timeout, batching: OTEL_EXPORTER_OTLP_*,
// OTEL_BSP_*), and the service's name comes from OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES.
// A value Hop cannot honour stops it at boot, naming the variable, like any other setting.

export const SAMPLERS = [
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
  'always_on',
  'always_off',
  'traceidratio',
] as const;

export type SamplerName = (typeof SAMPLERS)[number];

export interface TracingSettings {
  /** Spans are made and exported (OTLP, JSON over HTTP) only when true. */
  readonly enabled: boolean;
  readonly sampler: SamplerName;
  /** The traceidratio samplers' share of new traces, 0 to 1. */
  readonly ratio: number;
  /** Things worth a warning at start (a setting taken differently than asked). */
  readonly notes: readonly string[];
}

export const TRACING_OFF: TracingSettings = {
  enabled: false,
  sampler: 'parentbased_always_on',
  ratio: 1,
  notes: [],
};

function invalid(name: string, raw: string, why: string): Error {
  return new Error(`Invalid configuration: ${name}=${JSON.stringify(raw)} ${why}.`);
}

/** Reads the OTEL_* variables; throws a message naming the variable when one cannot be honoured. */
export function tracingSettings(env: NodeJS.ProcessEnv): TracingSettings {
  const get = (name: string) => {
    const v = env[name]?.trim();
    return v === undefined || v === '' ? undefined : v;
  };
  if (get('OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return TRACING_OFF;
  const exporters = (get('OTEL_TRACES_EXPORTER') ?? '').split(',').map((e) => e.trim().toLowerCase());
  const unsupported = exporters.filter((e) => e !== '' && e !== 'otlp' && e !== 'none');
  if (unsupported.length > 0) {
    throw invalid(
      'OTEL_TRACES_EXPORTER',
      get('OTEL_TRACES_EXPORTER')!,
      'must be otlp or none (Hop exports OTLP)',
    );
  }
  const endpoint = get('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') ?? get('OTEL_EXPORTER_OTLP_ENDPOINT');
  const enabled = !exporters.includes('none') && (exporters.includes('otlp') || endpoint !== undefined);
  if (!enabled) return TRACING_OFF;

  const notes: string[] = [];
  const protocolVar = get('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL')
    ? 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL'
    : 'OTEL_EXPORTER_OTLP_PROTOCOL';
  const protocol = get(protocolVar);
  if (protocol === 'grpc') {
    throw invalid(protocolVar, protocol, 'is not supported: Hop exports OTLP over HTTP (http/json)');
  } else if (protocol === 'http/protobuf') {
    notes.push(
      `${protocolVar}=http/protobuf: Hop sends OTLP over HTTP as JSON (http/json), which collectors take on the same endpoint`,
    );
  } else if (protocol !== undefined && protocol !== 'http/json') {
    throw invalid(protocolVar, protocol, 'must be http/json');
  }

  const samplerRaw = get('OTEL_TRACES_SAMPLER') ?? 'parentbased_always_on';
  const sampler = SAMPLERS.find((s) => s === samplerRaw.toLowerCase());
  if (sampler === undefined)
    throw invalid('OTEL_TRACES_SAMPLER', samplerRaw, `must be one of ${SAMPLERS.join(', ')}`);
  let ratio = 1;
  const arg = get('OTEL_TRACES_SAMPLER_ARG');
  if (sampler.endsWith('traceidratio') && arg !== undefined) {
    ratio = Number(arg);
    if (!Number.isFinite(ratio) || ratio < 0 || ratio > 1) {
      throw invalid(
        'OTEL_TRACES_SAMPLER_ARG',
        arg,
        'must be a number from 0 to 1 (the share of traces sampled)',
      );
    }
  }
  return { enabled, sampler, ratio, notes };
}
