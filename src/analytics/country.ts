// Where a click's country comes from, for click analytics and for redirect rules alike: a CDN's
// country header when one is configured and carries a code, else the bundled GeoIP database.
import type { IncomingHttpHeaders } from 'node:http';
import { createRequire } from 'node:module';

// Codes CDNs send for "unknown", Tor, anonymous proxies, satellite providers and "other".
const UNKNOWN_COUNTRIES = new Set(['XX', 'T1', 'A1', 'A2', 'O1']);

type GeoIp = typeof import('geoip-country')['default'];
let geoipDatabase: GeoIp | null = null;

/**
 * The bundled GeoIP database, read into memory (about 17 MB) on first use, not when this module is
 * imported: a process that never looks a country up never loads it.
 */
export function geoip(): GeoIp {
  geoipDatabase ??= createRequire(import.meta.url)('geoip-country') as GeoIp;
  return geoipDatabase;
}

/**
 * The country a CDN's header names (`header` lower-case): the code, null when the CDN says it does
 * not know, undefined when there is no usable header (then GeoIP decides).
 */
export function headerCountry(
  headers: IncomingHttpHeaders,
  header: string | null,
): string | null | undefined {
  if (header === null) return undefined;
  const h = headers[header];
  const c = typeof h === 'string' ? h.trim().toUpperCase() : '';
  if (!/^[A-Z]{2}$/.test(c)) return undefined;
  return UNKNOWN_COUNTRIES.has(c) ? null : c;
}
