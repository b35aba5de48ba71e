// Redirect rules as the API reads and writes them, and as the editor holds them while they change
// (every rule and condition with a stable id, values as their inputs show them).
import {
  BROWSERS,
  CONDITION_TYPES,
  type ConditionType,
  DEVICES,
  RULE_LIMITS,
} from '../../src/domain/rule-vocabulary.ts';
import { fromLocalInput, toLocalInput } from './format.ts';

export { BROWSERS, CONDITION_TYPES, type ConditionType, DEVICES, RULE_LIMITS };

export interface ApiCondition {
  type: ConditionType;
  key?: string;
  value?: string;
}

export interface ApiRule {
  url: string;
  conditions: ApiCondition[];
}

export const CONDITION_LABELS: Record<ConditionType, string> = {
  device: 'Device',
  browser: 'Browser',
  language: 'Language',
  country: 'Country',
  query: 'Query parameter',
  ip: 'IP address',
  before: 'Before',
  after: 'After',
  sample: 'Sample (A/B split)',
};

export interface EditCondition {
  id: number;
  type: ConditionType;
  key: string;
  /** As its input shows it: before/after in local datetime-local form. */
  value: string;
}

export interface EditRule {
  id: number;
  url: string;
  conditions: EditCondition[];
}

let lastId = 0;
const nextId = () => ++lastId;

/** The value a condition of this type starts with. */
export const firstValue = (type: ConditionType): string =>
  type === 'device' ? 'ios' : type === 'browser' ? 'chrome' : type === 'sample' ? '50' : '';

export function newCondition(type: ConditionType = 'device'): EditCondition {
  return { id: nextId(), type, key: '', value: firstValue(type) };
}

export function newRule(): EditRule {
  return { id: nextId(), url: '', conditions: [newCondition()] };
}

const isTime = (type: ConditionType) => type === 'before' || type === 'after';

export function fromApi(rules: readonly ApiRule[]): EditRule[] {
  return rules.map((r) => ({
    id: nextId(),
    url: r.url,
    conditions: r.conditions.map((c) => ({
      id: nextId(),
      type: c.type,
      key: c.key ?? '',
      value: isTime(c.type) ? toLocalInput(c.value ?? null) : (c.value ?? ''),
    })),
  }));
}

/** What the API is sent: a query condition without a value asks only that the key is present. */
export function toApi(rules: readonly EditRule[]): ApiRule[] {
  return rules.map((r) => ({
    url: r.url.trim(),
    conditions: r.conditions.map((c): ApiCondition => {
      if (c.type === 'query')
        return c.value === ''
          ? { type: c.type, key: c.key.trim() }
          : { type: c.type, key: c.key.trim(), value: c.value };
      return { type: c.type, value: isTime(c.type) ? (fromLocalInput(c.value) ?? '') : c.value.trim() };
    }),
  }));
}

/** The API's name of a rule's field (as problems give it in `field`). */
export const ruleField = (i: number, part: 'url' | 'conditions') => `rules[${i}].${part}`;
export const conditionField = (i: number, j: number, part: 'type' | 'key' | 'value') =>
  `rules[${i}].conditions[${j}].${part}`;

/** The editor's name for the part of the rules a problem's field names (a whole rule: its URL), or null. */
export function editorField(field: string | null): string | null {
  if (field === null) return null;
  if (/^rules\[\d+\]$/.test(field)) return `${field}.url`;
  if (/^rules\[\d+\]\.conditions\[\d+\]$/.test(field)) return `${field}.type`;
  return /^rules\[\d+\]\.(url|conditions|conditions\[\d+\]\.(type|key|value))$/.test(field) ? field : null;
}
