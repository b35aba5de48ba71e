// Structured JSON logs (pino, the logger Fastify itself uses), one instance per process.
import { pino } from 'pino';

export type Logger = pino.Logger;

export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'hop' }, timestamp: pino.stdTimeFunctions.isoTime });
}
