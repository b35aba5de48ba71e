// What a redirect tells the click pipeline. Never a raw IP (DESIGN §7); richer fields
// (country, browser, visitor hash) are added by the analytics work.
import type { FastifyRequest } from 'fastify';
import { uuid7 } from '../events/uuid7.ts';
import type { ClickEvent } from '../storage/ports.ts';

function referrerHost(req: FastifyRequest): string | null {
  const ref = req.headers.referer;
  if (ref === undefined || ref === '') return null;
  try {
    return new URL(ref).hostname || null;
  } catch {
    return null;
  }
}

export function clickFrom(req: FastifyRequest, code: string): ClickEvent {
  const now = Date.now();
  return { id: uuid7(now), code, ts: new Date(now), referrerHost: referrerHost(req) };
}
