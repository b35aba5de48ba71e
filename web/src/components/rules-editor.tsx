// A link's redirect rules, edited as a whole: add, remove and reorder rules and their conditions,
// try them on a described visitor (the preview), and save them (PUT replaces the list; an empty
// list removes them). The API's errors land next to the rule or condition field they name.
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, api, type Link } from '../api.ts';
import { linkPath } from '../domains.ts';
import {
  type ApiRule,
  type EditCondition,
  type EditRule,
  editorField,
  fromApi,
  newCondition,
  newRule,
  RULE_LIMITS,
  ruleField,
  toApi,
} from '../rules.ts';
import { ConditionFields } from './condition-fields.tsx';
import { Field } from './field.tsx';
import { RulesPreview } from './rules-preview.tsx';

interface Props {
  idPrefix: string;
  link: Link;
  onClose: () => void;
  onSaved: (hasRules: boolean) => void;
}

export function RulesEditor({ idPrefix, link, onClose, onSaved }: Props) {
  const [rules, setRules] = useState<EditRule[] | null>(null);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [notice, setNotice] = useState('');
  const [busy, setBusy] = useState(false);
  const focusNext = useRef<string | null>(null);
  const id = (part: string) => `${idPrefix}-${part}`;

  useEffect(() => {
    linkPath(link.code, link.domain, '/rules')
      .then((path) => api<{ rules: ApiRule[] }>('GET', path))
      .then(
        (r) => setRules(fromApi(r.rules)),
        (err: Error) => setFormError(err.message),
      );
  }, [link.code, link.domain]);

  // After a change that adds, removes or moves a control, focus goes where the keyboard user expects.
  useEffect(() => {
    if (focusNext.current === null) return;
    document.getElementById(focusNext.current)?.focus();
    focusNext.current = null;
  });

  if (rules === null)
    return formError === null ? (
      <p class="muted">Loading rules…</p>
    ) : (
      <p class="error" role="alert">
        {formError}
      </p>
    );

  /** A structural change: indices shift, so the errors they named no longer apply. */
  const change = (next: EditRule[], focus?: string) => {
    setRules(next);
    setErrors({});
    setNotice('');
    if (focus !== undefined) focusNext.current = focus;
  };
  const setRule = (i: number, rule: EditRule) => {
    setRules(rules.map((r, k) => (k === i ? rule : r)));
    setNotice('');
  };
  const move = (i: number, by: -1 | 1) => {
    const to = i + by;
    const next = [...rules];
    [next[i], next[to]] = [next[to]!, next[i]!];
    // Focus stays on the button pressed, unless the rule reached the end it was moving to.
    const edge = (by === -1 && to === 0) || (by === 1 && to === rules.length - 1);
    change(next, id(`r${to}-${(by === -1) !== edge ? 'up' : 'down'}`));
  };

  /** The rules to send, or null (with the errors shown) when one has no condition. */
  const current = (): ApiRule[] | null => {
    const empty = rules.findIndex((r) => r.conditions.length === 0);
    if (empty === -1) return toApi(rules);
    setErrors({ [ruleField(empty, 'conditions')]: `Give rule ${empty + 1} a condition, or remove it.` });
    document.getElementById(id(`r${empty}-add`))?.focus();
    return null;
  };

  /** Shows an API error next to the field it names; false when it names none the editor shows. */
  const showError = (err: unknown): boolean => {
    const field = err instanceof ApiError ? editorField(err.field) : null;
    if (field === null || !(err instanceof Error)) return false;
    setErrors({ [field]: err.message });
    const m = /^rules\[(\d+)\]\.(?:url|conditions(?:\[(\d+)\]\.(\w+))?)$/.exec(field);
    const target =
      m === null
        ? null
        : m[2] !== undefined
          ? id(`r${m[1]}-c${m[2]}-${m[3]}`)
          : field.endsWith('.url')
            ? id(`r${m[1]}-url`)
            : id(`r${m[1]}-add`);
    if (target !== null) document.getElementById(target)?.focus();
    return true;
  };

  const save = async (e: Event) => {
    e.preventDefault();
    setFormError(null);
    setErrors({});
    setNotice('');
    const body = current();
    if (body === null) return;
    setBusy(true);
    try {
      const path = await linkPath(link.code, link.domain, '/rules');
      const saved = await api<{ rules: ApiRule[] }>('PUT', path, { rules: body });
      setRules(fromApi(saved.rules));
      const n = saved.rules.length;
      setNotice(n === 0 ? 'Rules removed.' : `Saved ${n} rule${n === 1 ? '' : 's'}.`);
      onSaved(n > 0);
    } catch (err) {
      if (!showError(err)) setFormError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="rules-editor" aria-labelledby={id('title')}>
      <h2 id={id('title')}>Redirect rules for {link.code}</h2>
      <p class="hint">
        The first rule whose conditions all match sends the visitor to its URL; when none matches, they go to
        the link's URL, <span class="url">{link.url}</span>.
      </p>
      <form onSubmit={save} noValidate>
        {rules.length === 0 && <p class="muted">No rules: every visitor goes to the link's URL.</p>}
        <ol class="rules">
          {rules.map((rule, i) => (
            <RuleFields
              key={rule.id}
              idPrefix={idPrefix}
              index={i}
              count={rules.length}
              rule={rule}
              errors={errors}
              onChange={(r) => setRule(i, r)}
              onStructure={(r, focus) =>
                change(
                  rules.map((x, k) => (k === i ? r : x)),
                  focus,
                )
              }
              onMove={(by) => move(i, by)}
              onRemove={() =>
                change(
                  rules.filter((_, k) => k !== i),
                  rules.length > 1 ? id(`r${Math.max(0, i - 1)}-url`) : id('add'),
                )
              }
            />
          ))}
        </ol>
        {formError !== null && (
          <p class="error form-error" role="alert">
            {formError}
          </p>
        )}
        <div class="actions">
          <button
            type="button"
            id={id('add')}
            disabled={rules.length >= RULE_LIMITS.maxRules}
            onClick={() => change([...rules, newRule()], id(`r${rules.length}-url`))}
          >
            Add rule
          </button>
          <button type="submit" class="primary" disabled={busy}>
            {busy ? 'Saving…' : 'Save rules'}
          </button>
          <button type="button" onClick={onClose}>
            Close
          </button>
          <span class="copy-status" role="status">
            {notice}
          </span>
        </div>
      </form>
      <RulesPreview
        idPrefix={idPrefix}
        linkUrl={link.url}
        rules={current}
        onRulesError={showError}
        rulesKey={JSON.stringify(toApi(rules))}
      />
    </section>
  );
}

function RuleFields(props: {
  idPrefix: string;
  index: number;
  count: number;
  rule: EditRule;
  errors: Record<string, string>;
  onChange: (r: EditRule) => void;
  onStructure: (r: EditRule, focus: string) => void;
  onMove: (by: -1 | 1) => void;
  onRemove: () => void;
}) {
  const { idPrefix, index: i, rule, errors } = props;
  const id = (part: string) => `${idPrefix}-r${i}-${part}`;
  const name = `rule ${i + 1}`;
  const setCondition = (j: number, c: EditCondition) =>
    props.onChange({ ...rule, conditions: rule.conditions.map((x, k) => (k === j ? c : x)) });
  const conditionsError = errors[ruleField(i, 'conditions')];
  return (
    <li>
      <fieldset class="rule">
        <legend>Rule {i + 1}</legend>
        <Field id={id('url')} label="Send to" error={errors[ruleField(i, 'url')]}>
          {(a) => (
            <input
              {...a}
              type="url"
              autoComplete="off"
              placeholder="https://example.com/for-these-visitors"
              value={rule.url}
              onInput={(e) => props.onChange({ ...rule, url: e.currentTarget.value })}
            />
          )}
        </Field>
        <p class="hint">when every condition below matches:</p>
        {rule.conditions.map((c, j) => (
          <ConditionFields
            key={c.id}
            idPrefix={idPrefix}
            rule={i}
            index={j}
            condition={c}
            errors={errors}
            onChange={(next) => setCondition(j, next)}
            onRemove={() =>
              props.onStructure({ ...rule, conditions: rule.conditions.filter((_, k) => k !== j) }, id('add'))
            }
          />
        ))}
        {conditionsError !== undefined && (
          <p class="error" id={id('conditions-error')} data-field-error={id('conditions')}>
            {conditionsError}
          </p>
        )}
        <div class="actions">
          <button
            type="button"
            id={id('add')}
            aria-describedby={conditionsError === undefined ? undefined : id('conditions-error')}
            disabled={rule.conditions.length >= RULE_LIMITS.maxConditions}
            onClick={() =>
              props.onStructure(
                { ...rule, conditions: [...rule.conditions, newCondition()] },
                id(`c${rule.conditions.length}-type`),
              )
            }
          >
            Add condition<span class="visually-hidden"> to {name}</span>
          </button>
          <button type="button" id={id('up')} disabled={i === 0} onClick={() => props.onMove(-1)}>
            Move up<span class="visually-hidden"> {name}</span>
          </button>
          <button
            type="button"
            id={id('down')}
            disabled={i === props.count - 1}
            onClick={() => props.onMove(1)}
          >
            Move down<span class="visually-hidden"> {name}</span>
          </button>
          <button type="button" class="danger" onClick={props.onRemove}>
            Remove<span class="visually-hidden"> {name}</span>
          </button>
        </div>
      </fieldset>
    </li>
  );
}
