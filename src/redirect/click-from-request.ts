// What a redirect tells the click pipeline. Never a raw IP (DESIGN §7); richer fields
// (country, browser, visitor hash) are added by the analytics work.
import type { ClickEvent } from '../storage/ports.ts';

function referrerHost(referer: string | undefined): string | null {
  if (referer === undefined || referer === '') return null;
  try {
    return new URL(referer).hostname || null;
  } catch {
    return null;
  }
}

export function clickFrom(code: string, referer: string | undefined): ClickEvent {
  return { code, at: Date.now(), referrerHost: referrerHost(referer) };
}
