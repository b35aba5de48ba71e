// Shlink's redirect rule conditions onto Hop's (domain/redirect-rules.ts) and back. What has no
// Hop equivalent is refused with the condition named, never approximated.
import type { RedirectRule } from '../domain/redirect-rules.ts';
import { invalidData } from './shlink-problem.ts';

export interface ShlinkCondition {
  type: string;
  matchKey: string | null;
  matchValue: string | null;
}

const TO_HOP: Record<string, (c: ShlinkCondition) => { type: string; key?: string; value?: string }> = {
  device: (c) => ({ type: 'device', value: c.matchValue ?? '' }),
  browser: (c) => ({ type: 'browser', value: c.matchValue ?? '' }),
  language: (c) => ({ type: 'language', value: c.matchValue ?? '' }),
  'query-param': (c) => ({ type: 'query', key: c.matchKey ?? '', value: c.matchValue ?? '' }),
  'any-value-query-param': (c) => ({ type: 'query', key: c.matchKey ?? c.matchValue ?? '' }),
  'ip-address': (c) => ({ type: 'ip', value: c.matchValue ?? '' }),
  'geolocation-country-code': (c) => ({ type: 'country', value: c.matchValue ?? '' }),
  'before-date': (c) => ({ type: 'before', value: c.matchValue ?? '' }),
  'after-date': (c) => ({ type: 'after', value: c.matchValue ?? '' }),
};

/** Shlink's `{redirectRules: [{longUrl, conditions}]}` as Hop's rules (validated after, by Hop). */
export function rulesFromShlink(body: unknown): unknown[] {
  const list = (body as { redirectRules?: unknown } | null)?.redirectRules;
  if (!Array.isArray(list)) throw invalidData('"redirectRules" must be a list.', 'redirectRules');
  return list.map((r, i) => {
    const rule = r as { longUrl?: unknown; conditions?: unknown };
    if (!Array.isArray(rule.conditions))
      throw invalidData('Each rule needs its conditions.', `redirectRules[${i}]`);
    return {
      url: rule.longUrl,
      conditions: rule.conditions.map((c, k) => {
        const cond = c as ShlinkCondition;
        const map = TO_HOP[cond?.type];
        if (map === undefined)
          throw invalidData(
            `Condition type "${String(cond?.type)}" is not supported by Hop (supported: ${Object.keys(TO_HOP).join(', ')}).`,
            `redirectRules[${i}].conditions[${k}].type`,
          );
        if (cond.type === 'browser' && cond.matchValue === 'android_browser')
          throw invalidData(
            'Browser "android_browser" is not one Hop tells apart.',
            `redirectRules[${i}].conditions[${k}].matchValue`,
          );
        return map({ type: cond.type, matchKey: cond.matchKey ?? null, matchValue: cond.matchValue ?? null });
      }),
    };
  });
}

const TO_SHLINK: Record<string, (c: { key?: string; value?: string }) => ShlinkCondition> = {
  device: (c) => ({ type: 'device', matchKey: null, matchValue: c.value ?? null }),
  browser: (c) => ({ type: 'browser', matchKey: null, matchValue: c.value ?? null }),
  language: (c) => ({ type: 'language', matchKey: null, matchValue: c.value ?? null }),
  query: (c) =>
    c.value === undefined || c.value === ''
      ? { type: 'any-value-query-param', matchKey: c.key ?? null, matchValue: null }
      : { type: 'query-param', matchKey: c.key ?? null, matchValue: c.value },
  ip: (c) => ({ type: 'ip-address', matchKey: null, matchValue: c.value ?? null }),
  country: (c) => ({ type: 'geolocation-country-code', matchKey: null, matchValue: c.value ?? null }),
  before: (c) => ({ type: 'before-date', matchKey: null, matchValue: c.value ?? null }),
  after: (c) => ({ type: 'after-date', matchKey: null, matchValue: c.value ?? null }),
};

/** Hop's rules as Shlink lists them; a Hop-only condition (sample) keeps its own type name. */
export function rulesToShlink(defaultLongUrl: string, rules: readonly RedirectRule[] | null) {
  return {
    defaultLongUrl,
    redirectRules: (rules ?? []).map((r, i) => ({
      longUrl: r.url,
      priority: i + 1,
      conditions: r.conditions.map((c) => {
        const cond = c as { type: string; key?: string; value?: string };
        return (
          TO_SHLINK[cond.type]?.(cond) ?? {
            type: cond.type,
            matchKey: cond.key ?? null,
            matchValue: cond.value ?? null,
          }
        );
      }),
    })),
  };
}
