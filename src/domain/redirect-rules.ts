// Redirect rules: a link may send a visitor somewhere else than its URL by device, browser,
// language, country, query parameter, address, time or a sticky random sample (an A/B split).
// The first rule whose conditions all match wins; none matching, the link's own URL. Pure: the
// redirect path hands in what it knows of the visit (lazily, so a rule that asks nothing costs
// nothing) and gets back the rule's index.
import { ISO_DATE_TIME } from './date-time.ts';
import { HopError } from './errors.ts';
import { type Bytes, inRange, parseRange, type Range } from './ip-address.ts';
import { BROWSERS, CONDITION_TYPES, type ConditionType, DEVICES, RULE_LIMITS } from './rule-vocabulary.ts';
import { normalizeTargetUrl, type UrlPolicy } from './url-policy.ts';

// What rules may say is shared with the dashboard's rules editor (web/src/rules.ts).
export { BROWSERS, CONDITION_TYPES, type ConditionType, DEVICES, RULE_LIMITS } from './rule-vocabulary.ts';

/** A condition as stored and shown: `key` only for query, `value` for every type but a bare query key. */
export interface RuleCondition {
  readonly type: ConditionType;
  readonly key?: string;
  readonly value?: string;
}

export interface RedirectRule {
  readonly url: string;
  readonly conditions: readonly RuleCondition[];
}

/** What a rule may ask of a visit. Each is asked at most once per visit, and only when a rule needs it. */
export interface Visit {
  readonly now: number;
  /** The request's query string without the `?` ('' when none). */
  readonly query: string;
  /** OS and platform as the user agent tells them, and the browser (lower-case names, see DEVICES/BROWSERS). */
  agent(): { readonly os: string | null; readonly platform: string | null; readonly browser: string | null };
  /** Accepted language tags, lower case, most preferred first (q=0 left out). */
  languages(): readonly string[];
  /** ISO 3166 alpha-2, upper case, or null when unknown. */
  country(): string | null;
  /** The client's address, or null when unknown. */
  ip(): Bytes | null;
  /** 0-99, the same for one visitor of one link every time (the sample's split). */
  bucket(): number;
}

type Check = (v: Visit, facts: Facts) => boolean;

/** A visit's answers, asked once each. */
class Facts {
  private agentFacts: ReturnType<Visit['agent']> | undefined;
  private langs: readonly string[] | undefined;
  private params: URLSearchParams | undefined;
  private countryCode: string | null | undefined;
  private address: Bytes | null | undefined;
  private b: number | undefined;
  constructor(private readonly v: Visit) {}
  agent() {
    this.agentFacts ??= this.v.agent();
    return this.agentFacts;
  }
  languages() {
    this.langs ??= this.v.languages();
    return this.langs;
  }
  query() {
    this.params ??= new URLSearchParams(this.v.query);
    return this.params;
  }
  country() {
    if (this.countryCode === undefined) this.countryCode = this.v.country();
    return this.countryCode;
  }
  ip() {
    if (this.address === undefined) this.address = this.v.ip();
    return this.address;
  }
  bucket() {
    this.b ??= this.v.bucket();
    return this.b;
  }
}

export interface CompiledRules {
  readonly rules: readonly { readonly url: string; readonly checks: readonly Check[] }[];
}

/** Index of the first rule that matches the visit, or -1 (the link's own URL). */
export function chooseRule(compiled: CompiledRules, visit: Visit): number {
  const facts = new Facts(visit);
  const rules = compiled.rules;
  outer: for (let i = 0; i < rules.length; i++) {
    for (const check of rules[i]!.checks) if (!check(visit, facts)) continue outer;
    return i;
  }
  return -1;
}

function deviceCheck(device: (typeof DEVICES)[number]): Check {
  return (_v, f) => {
    const { os, platform } = f.agent();
    switch (device) {
      case 'ios':
        return os === 'ios';
      case 'android':
        return os === 'android';
      case 'mobile':
        return platform === 'mobile' || platform === 'tablet';
      case 'desktop':
        return platform === 'desktop';
      case 'windows':
        return os === 'windows';
      case 'macos':
        return os === 'macos';
      case 'linux':
        return os === 'linux';
      case 'chromeos':
        return os === 'chromeos';
    }
  };
}

/** `fr` matches `fr` and `fr-ca`; `fr-ca` matches only `fr-ca`. */
function languageCheck(tag: string): Check {
  const prefix = `${tag}-`;
  return (_v, f) => f.languages().some((l) => l === tag || l.startsWith(prefix));
}

function queryCheck(key: string, value: string | undefined): Check {
  return value === undefined
    ? (_v, f) => f.query().has(key)
    : (_v, f) => f.query().getAll(key).includes(value);
}

function ipCheck(range: Range): Check {
  return (_v, f) => {
    const ip = f.ip();
    return ip !== null && inRange(ip, range);
  };
}

/** Rules as stored, made ready to evaluate (once per cached record). */
export function compileRules(rules: readonly RedirectRule[]): CompiledRules {
  return {
    rules: rules.map((r) => ({
      url: r.url,
      checks: r.conditions.map((c): Check => {
        const value = c.value ?? '';
        switch (c.type) {
          case 'device':
            return deviceCheck(value as (typeof DEVICES)[number]);
          case 'browser':
            return (_v, f) => f.agent().browser === value;
          case 'language':
            return languageCheck(value);
          case 'country':
            return (_v, f) => f.country() === value;
          case 'query':
            return queryCheck(c.key ?? '', c.value);
          case 'ip':
            return ipCheck(parseRange(value)!);
          case 'before': {
            const t = Date.parse(value);
            return (v) => v.now < t;
          }
          case 'after': {
            const t = Date.parse(value);
            return (v) => v.now >= t;
          }
          case 'sample': {
            const share = Number(value);
            return (_v, f) => f.bucket() < share;
          }
          default:
            throw new Error(`unknown condition type ${String(c.type)}`);
        }
      }),
    })),
  };
}

// ---- Validation of what a client sends -------------------------------------------------------

const LANGUAGE_TAG = /^[a-z]{2,3}(-[a-z0-9]{1,8})*$/;

function bad(field: string, detail: string): HopError {
  return new HopError('validation_failed', detail, { extra: { field } });
}

const isObject = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && !Array.isArray(x);

function parseCondition(raw: unknown, at: string): RuleCondition {
  if (!isObject(raw)) throw bad(at, `${at} must be an object {type, key?, value?}.`);
  for (const k of Object.keys(raw))
    if (k !== 'type' && k !== 'key' && k !== 'value')
      throw bad(`${at}.${k}`, `${at} has an unknown field "${k}".`);
  const { type, key, value } = raw;
  if (typeof type !== 'string' || !(CONDITION_TYPES as readonly string[]).includes(type))
    throw bad(`${at}.type`, `${at}.type must be one of ${CONDITION_TYPES.join(', ')}.`);
  if (value !== undefined && typeof value !== 'string')
    throw bad(`${at}.value`, `${at}.value must be a string.`);
  if (typeof value === 'string' && value.length > RULE_LIMITS.maxValueLength)
    throw bad(`${at}.value`, `${at}.value is longer than ${RULE_LIMITS.maxValueLength} characters.`);
  if (type === 'query') {
    if (typeof key !== 'string' || key === '' || key.length > RULE_LIMITS.maxValueLength)
      throw bad(`${at}.key`, `${at}.key must name the query parameter (1 to 256 characters).`);
    return value === undefined ? { type, key } : { type, key, value };
  }
  if (key !== undefined) throw bad(`${at}.key`, `${at}.key is only for "query" conditions.`);
  const need = (ok: boolean, what: string): void => {
    if (!ok) throw bad(`${at}.value`, `${at}.value ${what}.`);
  };
  need(typeof value === 'string', `is required for "${type}"`);
  let v = (value as string).trim();
  switch (type) {
    case 'device':
      v = v.toLowerCase();
      need((DEVICES as readonly string[]).includes(v), `must be one of ${DEVICES.join(', ')}`);
      break;
    case 'browser':
      v = v.toLowerCase();
      need((BROWSERS as readonly string[]).includes(v), `must be one of ${BROWSERS.join(', ')}`);
      break;
    case 'language':
      v = v.toLowerCase().replaceAll('_', '-');
      need(LANGUAGE_TAG.test(v), 'must be a language tag such as fr or fr-CA');
      break;
    case 'country':
      v = v.toUpperCase();
      need(/^[A-Z]{2}$/.test(v), 'must be an ISO 3166 alpha-2 country code such as FR');
      break;
    case 'ip':
      need(parseRange(v) !== null, 'must be an IPv4 or IPv6 address or CIDR range such as 203.0.113.0/24');
      break;
    case 'before':
    case 'after':
      need(
        ISO_DATE_TIME.test(v) && !Number.isNaN(Date.parse(v)),
        'must be an ISO 8601 date-time with a time zone',
      );
      v = new Date(Date.parse(v)).toISOString();
      break;
    case 'sample':
      need(
        /^\d{1,2}$/.test(v) && Number(v) >= 1 && Number(v) <= 99,
        'must be a whole percentage from 1 to 99',
      );
      v = String(Number(v));
      break;
  }
  return { type: type as ConditionType, value: v };
}

/**
 * A client's `rules` (as sent to PUT /links/{code}/rules) into stored rules, or a
 * validation_failed error naming the field (e.g. `rules[2].conditions[0].value`).
 */
export function parseRules(raw: unknown, policy: UrlPolicy): RedirectRule[] {
  if (!Array.isArray(raw)) throw bad('rules', '"rules" must be an array of {url, conditions}.');
  if (raw.length > RULE_LIMITS.maxRules)
    throw bad('rules', `A link has at most ${RULE_LIMITS.maxRules} rules.`);
  return raw.map((r, i) => {
    const at = `rules[${i}]`;
    if (!isObject(r)) throw bad(at, `${at} must be an object {url, conditions}.`);
    for (const k of Object.keys(r))
      if (k !== 'url' && k !== 'conditions') throw bad(`${at}.${k}`, `${at} has an unknown field "${k}".`);
    const url = normalizeTargetUrl(r.url, policy, `${at}.url`);
    const conditions = r.conditions;
    if (!Array.isArray(conditions) || conditions.length === 0)
      throw bad(`${at}.conditions`, `${at}.conditions must be a non-empty array.`);
    if (conditions.length > RULE_LIMITS.maxConditions)
      throw bad(`${at}.conditions`, `A rule has at most ${RULE_LIMITS.maxConditions} conditions.`);
    return { url, conditions: conditions.map((c, j) => parseCondition(c, `${at}.conditions[${j}]`)) };
  });
}

/** Rules read back from storage (JSON), trusted as written by parseRules. */
export function rulesFromJson(json: unknown): RedirectRule[] | null {
  return Array.isArray(json) && json.length > 0 ? (json as RedirectRule[]) : null;
}
