// One condition of a redirect rule: its type, and the input its value needs (a list of devices or
// browsers, a date and time, a percentage, a parameter name and value, or text).
import type { ComponentChildren } from 'preact';
import {
  BROWSERS,
  CONDITION_LABELS,
  CONDITION_TYPES,
  type ConditionType,
  conditionField,
  DEVICES,
  type EditCondition,
  firstValue,
} from '../rules.ts';
import { Field } from './field.tsx';

const VALUE_LABELS: Record<ConditionType, string> = {
  device: 'Device',
  browser: 'Browser',
  language: 'Language tag',
  country: 'Country code',
  query: 'Value (optional)',
  ip: 'Address or range',
  before: 'Before (your time)',
  after: 'From (your time)',
  sample: 'Share of visitors (%)',
};

const HINTS: Partial<Record<ConditionType, string>> = {
  language: 'fr matches fr-CA too',
  country: 'Two letters, such as FR',
  query: 'Empty: the parameter is there, whatever its value',
  ip: 'Such as 203.0.113.0/24',
  sample: '1–99, the same visitors each time',
};

interface Props {
  idPrefix: string;
  rule: number;
  index: number;
  condition: EditCondition;
  errors: Record<string, string>;
  onChange: (c: EditCondition) => void;
  onRemove: () => void;
}

export function ConditionFields({ idPrefix, rule, index, condition: c, errors, onChange, onRemove }: Props) {
  const id = (part: string) => `${idPrefix}-r${rule}-c${index}-${part}`;
  const err = (part: 'type' | 'key' | 'value') => errors[conditionField(rule, index, part)];
  const text = (e: Event) => (e.currentTarget as HTMLInputElement | HTMLSelectElement).value;
  const setValue = (e: Event) => onChange({ ...c, value: text(e) });
  const name = `rule ${rule + 1}, condition ${index + 1}`;

  let input: (a: Record<string, unknown>) => ComponentChildren;
  if (c.type === 'device' || c.type === 'browser') {
    const options = c.type === 'device' ? DEVICES : BROWSERS;
    input = (a) => (
      <select {...a} value={c.value} onChange={setValue}>
        {options.map((o) => (
          <option key={o} value={o}>
            {o}
          </option>
        ))}
      </select>
    );
  } else if (c.type === 'before' || c.type === 'after') {
    input = (a) => <input {...a} type="datetime-local" value={c.value} onInput={setValue} />;
  } else if (c.type === 'sample') {
    input = (a) => (
      <input
        {...a}
        type="number"
        min="1"
        max="99"
        step="1"
        inputMode="numeric"
        value={c.value}
        onInput={setValue}
      />
    );
  } else {
    input = (a) => (
      <input
        {...a}
        autoComplete="off"
        maxLength={c.type === 'country' ? 2 : 256}
        value={c.value}
        onInput={setValue}
      />
    );
  }

  return (
    <fieldset class="condition">
      <legend class="visually-hidden">{`Condition ${index + 1} of rule ${rule + 1}`}</legend>
      <Field id={id('type')} label="Condition" error={err('type')}>
        {(a) => (
          <select
            {...a}
            value={c.type}
            onChange={(e) => {
              const type = text(e) as ConditionType;
              onChange({ ...c, type, key: '', value: firstValue(type) });
            }}
          >
            {CONDITION_TYPES.map((t) => (
              <option key={t} value={t}>
                {CONDITION_LABELS[t]}
              </option>
            ))}
          </select>
        )}
      </Field>
      {c.type === 'query' && (
        <Field id={id('key')} label="Parameter" error={err('key')}>
          {(a) => (
            <input
              {...a}
              autoComplete="off"
              maxLength={256}
              value={c.key}
              onInput={(e) => onChange({ ...c, key: text(e) })}
            />
          )}
        </Field>
      )}
      <Field id={id('value')} label={VALUE_LABELS[c.type]} error={err('value')} hint={HINTS[c.type]}>
        {input}
      </Field>
      <button type="button" class="remove" onClick={onRemove}>
        Remove<span class="visually-hidden"> {name}</span>
      </button>
    </fieldset>
  );
}
