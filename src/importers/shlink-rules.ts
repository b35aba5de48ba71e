// Shlink's redirect rules as Hop's (domain/redirect-rules.ts). A rule with a condition Hop has no
// equal for (a city, a query parameter without a value, an unknown browser) is left out whole and
// reported: a rule changed to fit would send visitors where the owner never said.
import { BROWSERS, DEVICES } from '../domain/redirect-rules.ts';
import type { SourceRule } from './source.ts';

export interface ShlinkCondition {
  readonly type: string;
  readonly matchKey: string | null;
  readonly matchValue: string | null;
}

export interface ShlinkRule {
  readonly longUrl: string;
  readonly priority: number;
  readonly conditions: readonly ShlinkCondition[];
}

type Condition = SourceRule['conditions'][number];

/** `192.168.1.*` → `192.168.1.0/24`: Shlink's wildcards, whole trailing octets only. */
function ipRange(v: string): string | null {
  if (!v.includes('*')) return v;
  const parts = v.split('.');
  if (parts.length !== 4) return null;
  const fixed = parts.indexOf('*');
  if (
    fixed === 0 ||
    parts.slice(fixed).some((p) => p !== '*') ||
    parts.slice(0, fixed).some((p) => !/^\d{1,3}$/.test(p))
  )
    return null;
  return `${[...parts.slice(0, fixed), ...parts.slice(fixed).map(() => '0')].join('.')}/${fixed * 8}`;
}

/** Hop's condition for a Shlink one, or why there is none. */
export function mapCondition(c: ShlinkCondition): Condition | string {
  const value = (c.matchValue ?? '').trim();
  const key = (c.matchKey ?? '').trim();
  switch (c.type) {
    case 'device':
      return (DEVICES as readonly string[]).includes(value.toLowerCase())
        ? { type: 'device', value: value.toLowerCase() }
        : `Hop has no device "${value}"`;
    case 'browser':
      return (BROWSERS as readonly string[]).includes(value.toLowerCase())
        ? { type: 'browser', value: value.toLowerCase() }
        : `Hop has no browser "${value}"`;
    case 'language':
      return { type: 'language', value };
    case 'query-param':
      return { type: 'query', key, value };
    case 'any-value-query-param':
      return { type: 'query', key };
    case 'valueless-query-param':
      return `"${key}" present without a value has no equal in Hop (its query condition also matches ${key}=something)`;
    case 'ip-address': {
      const range = ipRange(value);
      return range === null
        ? `the address pattern "${value}" is not a CIDR range`
        : { type: 'ip', value: range };
    }
    case 'geolocation-country-code':
      return { type: 'country', value };
    case 'before-date':
      return { type: 'before', value };
    case 'after-date':
      return { type: 'after', value };
    default:
      return `Hop has no "${c.type}" condition`;
  }
}

/** Rules in Shlink's priority order, and a note for each one left out. */
export function mapRules(rules: readonly ShlinkRule[]): { rules: SourceRule[]; notes: string[] } {
  const out: SourceRule[] = [];
  const notes: string[] = [];
  for (const r of [...rules].sort((a, b) => a.priority - b.priority)) {
    const conditions: Condition[] = [];
    const problems: string[] = [];
    for (const c of r.conditions ?? []) {
      const m = mapCondition(c);
      if (typeof m === 'string') problems.push(`${c.type}: ${m}`);
      else conditions.push(m);
    }
    if (problems.length === 0) out.push({ url: r.longUrl, conditions });
    else notes.push(`redirect rule ${r.priority} (to ${r.longUrl}) left out: ${problems.join('; ')}`);
  }
  return { rules: out, notes };
}
