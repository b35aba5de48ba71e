// A domain's fields: its host (when adding one) and where it sends visitors that find no live
// link. Empty redirects are left out when adding and cleared when editing.
import { useState } from 'preact/hooks';
import type { Domain } from '../api.ts';
import { Field } from './field.tsx';
import { FormActions, showSubmitError } from './form-actions.tsx';

const REDIRECTS = [
  {
    name: 'rootRedirect',
    label: 'Root redirect (optional)',
    hint: "Where the domain's root (/) sends visitors",
  },
  {
    name: 'notFoundRedirect',
    label: 'Unknown-code redirect (optional)',
    hint: 'Where a code with no link sends visitors; empty: 404',
  },
  {
    name: 'expiredRedirect',
    label: 'Dead-link redirect (optional)',
    hint: 'Where an expired, used-up or disabled link without its own fallback sends visitors; empty: 410',
  },
  {
    name: 'otherNotFoundRedirect',
    label: 'Other 404 redirect (optional)',
    hint: 'Where any other missing page on the domain sends visitors; empty: 404',
  },
] as const;

type FieldName = 'host' | (typeof REDIRECTS)[number]['name'];
type Values = Record<FieldName, string>;

const valuesOf = (d: Domain | null): Values => ({
  host: d?.host ?? '',
  rootRedirect: d?.rootRedirect ?? '',
  notFoundRedirect: d?.notFoundRedirect ?? '',
  expiredRedirect: d?.expiredRedirect ?? '',
  otherNotFoundRedirect: d?.otherNotFoundRedirect ?? '',
});

// Problem codes that concern one field even when the problem names none.
const CODE_FIELDS: Record<string, FieldName> = { domain_exists: 'host' };

interface Props {
  idPrefix: string;
  /** null: a new domain (the host is asked for). */
  domain: Domain | null;
  submitLabel: string;
  onSubmit: (body: Record<string, unknown>) => Promise<void>;
  onCancel?: () => void;
}

export function DomainForm({ idPrefix, domain, submitLabel, onSubmit, onCancel }: Props) {
  const [v, setV] = useState<Values>(valuesOf(domain));
  const [errors, setErrors] = useState<Partial<Values>>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const id = (f: string) => `${idPrefix}-${f}`;
  const set = (f: FieldName) => (e: Event) =>
    setV({ ...v, [f]: (e.currentTarget as HTMLInputElement).value });

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setErrors({});
    setFormError(null);
    const body: Record<string, unknown> = {};
    if (domain === null) body.host = v.host.trim();
    for (const r of REDIRECTS) {
      const url = v[r.name].trim();
      if (url !== '') body[r.name] = url;
      else if (domain !== null) body[r.name] = null;
    }
    try {
      await onSubmit(body);
      if (domain === null) setV(valuesOf(null));
    } catch (err) {
      showSubmitError(err, {
        fields: v,
        codeFields: CODE_FIELDS,
        idOf: id,
        setFieldError: (field, message) => setErrors({ [field]: message }),
        setFormError,
      });
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="domain-form" onSubmit={submit} noValidate>
      {domain === null && (
        <Field id={id('host')} label="Host" error={errors.host} hint="A host name such as go.example.com">
          {(a) => (
            <input
              {...a}
              name="host"
              required
              autoComplete="off"
              autoCapitalize="none"
              spellcheck={false}
              value={v.host}
              onInput={set('host')}
            />
          )}
        </Field>
      )}
      <div class="grid">
        {REDIRECTS.map((r) => (
          <Field key={r.name} id={id(r.name)} label={r.label} error={errors[r.name]} hint={r.hint}>
            {(a) => (
              <input
                {...a}
                type="url"
                name={r.name}
                autoComplete="off"
                value={v[r.name]}
                onInput={set(r.name)}
              />
            )}
          </Field>
        ))}
      </div>
      <FormActions formError={formError} busy={busy} submitLabel={submitLabel} onCancel={onCancel} />
    </form>
  );
}
