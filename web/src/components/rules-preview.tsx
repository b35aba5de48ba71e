// Tries the rules being edited (unsaved) on a described visitor: the server's own rule code says
// where they would go, and the answer is put in a sentence.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.ts';
import type { ApiRule } from '../rules.ts';
import { AGENT_PRESETS, describeOutcome, emptyVisitor, type VisitorForm, visitorBody } from '../visitor.ts';
import { Field } from './field.tsx';

interface Props {
  idPrefix: string;
  linkUrl: string;
  /** The rules as they stand in the editor, or null when they cannot be sent yet. */
  rules: () => ApiRule[] | null;
  /** Shows an error about the rules in the editor; false when it is not about them. */
  onRulesError: (err: unknown) => boolean;
  /** Changes whenever the rules do: an answer about other rules is no longer shown. */
  rulesKey: string;
}

export function RulesPreview({ idPrefix, linkUrl, rules, onRulesError, rulesKey }: Props) {
  const [v, setV] = useState<VisitorForm>(emptyVisitor);
  const [outcome, setOutcome] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const id = (f: string) => `${idPrefix}-pv-${f}`;
  useEffect(() => setOutcome(''), [rulesKey]);
  const set = (f: keyof VisitorForm) => (e: Event) =>
    setV({ ...v, [f]: (e.currentTarget as HTMLInputElement | HTMLSelectElement).value });

  const preview = async (e: Event) => {
    e.preventDefault();
    setError(null);
    setOutcome('');
    const current = rules();
    if (current === null) return;
    setBusy(true);
    try {
      const r = await api<{ url: string; rule: number }>('POST', '/rules/preview', {
        url: linkUrl,
        rules: current,
        visitor: visitorBody(v),
      });
      setOutcome(describeOutcome(v, r.url, r.rule));
    } catch (err) {
      if (!onRulesError(err)) setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="preview" onSubmit={preview} noValidate aria-labelledby={id('title')}>
      <h3 id={id('title')}>Try a visitor</h3>
      <div class="grid">
        <Field id={id('agent')} label="Device and browser">
          {(a) => (
            <select {...a} value={v.agent} onChange={set('agent')}>
              {AGENT_PRESETS.map((p) => (
                <option key={p.id} value={p.id}>
                  {p.label}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field id={id('language')} label="Language" hint="As browsers send it: fr-CA,fr;q=0.9">
          {(a) => <input {...a} autoComplete="off" value={v.language} onInput={set('language')} />}
        </Field>
        <Field id={id('country')} label="Country" hint="Two letters, such as FR">
          {(a) => (
            <input {...a} autoComplete="off" maxLength={2} value={v.country} onInput={set('country')} />
          )}
        </Field>
        <Field id={id('query')} label="Query string" hint="Such as utm_source=newsletter">
          {(a) => <input {...a} autoComplete="off" value={v.query} onInput={set('query')} />}
        </Field>
        <Field id={id('ip')} label="IP address">
          {(a) => <input {...a} autoComplete="off" value={v.ip} onInput={set('ip')} />}
        </Field>
        <Field id={id('bucket')} label="Sample bucket (0–99)" hint="Empty: 0. A sample of 30 takes 0–29">
          {(a) => (
            <input
              {...a}
              type="number"
              min="0"
              max="99"
              step="1"
              inputMode="numeric"
              value={v.bucket}
              onInput={set('bucket')}
            />
          )}
        </Field>
      </div>
      <div class="actions">
        <button type="submit" disabled={busy}>
          {busy ? 'Trying…' : 'Preview'}
        </button>
      </div>
      {error !== null && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <p class="outcome" role="status" data-testid="preview-outcome">
        {outcome}
      </p>
    </form>
  );
}
