// Structured JSON logs (pino, the logger Fastify itself uses), one instance per process.
import { pino } from 'pino';

export type Logger = pino.Logger;

/**
 * `fields` adds to every line what is true at the moment it is written: with tracing on, the
 * active span's trace_id and span_id (absent otherwise, at no cost).
 */
export function createLogger(level: string, fields?: () => Record<string, string>): Logger {
  return pino({
    level,
    base: { service: 'hop' },
    timestamp: pino.stdTimeFunctions.isoTime,
    ...(fields === undefined ? {} : { mixin: fields }),
  });
}
