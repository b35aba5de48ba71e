// What a redirect rule may say: its condition types, the devices and browsers it knows, and its
// limits. No imports: the dashboard's rules editor (web/src/rules.ts) bundles this file too, so
// the editor offers exactly what the API accepts.
export const RULE_LIMITS = { maxRules: 20, maxConditions: 10, maxValueLength: 256 } as const;

export const CONDITION_TYPES = [
  'device',
  'browser',
  'language',
  'country',
  'query',
  'ip',
  'before',
  'after',
  'sample',
] as const;
export type ConditionType = (typeof CONDITION_TYPES)[number];

export const DEVICES = [
  'ios',
  'android',
  'mobile',
  'desktop',
  'windows',
  'macos',
  'linux',
  'chromeos',
] as const;
export const BROWSERS = [
  'chrome',
  'firefox',
  'safari',
  'edge',
  'opera',
  'samsung',
  'chromium',
  'vivaldi',
  'yandex',
  'ie',
] as const;
