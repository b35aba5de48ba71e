// The link fields, for shortening and for editing in place. API validation errors land next to
// the field they name; anything else is shown above the buttons.
import { useState } from 'preact/hooks';
import type { Domain, Link } from '../api.ts';
import { fromLocalInput, parseTags, toLocalInput } from '../format.ts';
import { Field } from './field.tsx';
import { FormActions, showSubmitError } from './form-actions.tsx';

export interface LinkFormValues {
  url: string;
  alias: string;
  title: string;
  tags: string;
  expiresAt: string;
  maxClicks: string;
  redirectType: string;
  forwardQuery: boolean;
  /** Create only: '' for the default domain, else a registered host. */
  domain: string;
  /** Write-only: on edit, empty leaves the password as it is. */
  password: string;
  removePassword: boolean;
  expiredUrl: string;
  crawlable: boolean;
}

export const emptyValues: LinkFormValues = {
  url: '',
  alias: '',
  title: '',
  tags: '',
  expiresAt: '',
  maxClicks: '',
  redirectType: '302',
  forwardQuery: true,
  domain: '',
  password: '',
  removePassword: false,
  expiredUrl: '',
  crawlable: false,
};

export function valuesOf(link: Link): LinkFormValues {
  return {
    url: link.url,
    alias: '',
    title: link.title ?? '',
    tags: link.tags.join(', '),
    expiresAt: toLocalInput(link.expiresAt),
    maxClicks: link.maxClicks === null ? '' : String(link.maxClicks),
    redirectType: String(link.redirectType),
    forwardQuery: link.forwardQuery,
    domain: '',
    password: '',
    removePassword: false,
    expiredUrl: link.expiredUrl ?? '',
    crawlable: link.crawlable,
  };
}

/** The request body: on create, empty optional fields are left out; on edit they clear. */
export function bodyOf(v: LinkFormValues, mode: 'create' | 'edit'): Record<string, unknown> {
  const body: Record<string, unknown> = {
    url: v.url.trim(),
    tags: parseTags(v.tags),
    redirectType: Number(v.redirectType),
    forwardQuery: v.forwardQuery,
    crawlable: v.crawlable,
  };
  const title = v.title.trim();
  const maxClicks = v.maxClicks.trim();
  const expiresAt = fromLocalInput(v.expiresAt);
  const expiredUrl = v.expiredUrl.trim();
  // A password is sent as typed (spaces count); an empty field sends none.
  if (v.password !== '') body.password = v.password;
  if (mode === 'edit') {
    body.title = title === '' ? null : title;
    body.maxClicks = maxClicks === '' ? null : Number(maxClicks);
    body.expiresAt = expiresAt;
    body.expiredUrl = expiredUrl === '' ? null : expiredUrl;
    if (v.removePassword) body.password = null;
  } else {
    if (v.domain !== '') body.domain = v.domain;
    if (v.alias.trim() !== '') body.alias = v.alias.trim();
    if (title !== '') body.title = title;
    if (maxClicks !== '') body.maxClicks = Number(maxClicks);
    if (expiresAt !== null) body.expiresAt = expiresAt;
    if (expiredUrl !== '') body.expiredUrl = expiredUrl;
  }
  return body;
}

// Problem codes that concern one field even when the problem names none.
const CODE_FIELDS: Record<string, keyof LinkFormValues> = {
  invalid_url: 'url',
  invalid_alias: 'alias',
  reserved_alias: 'alias',
  alias_taken: 'alias',
  invalid_expiry: 'expiresAt',
  unknown_domain: 'domain',
};

interface Props {
  idPrefix: string;
  mode: 'create' | 'edit';
  initial: LinkFormValues;
  submitLabel: string;
  onSubmit: (body: Record<string, unknown>) => Promise<void>;
  onCancel?: () => void;
  /** Create: the domains to pick from (null while they load). */
  domains?: Domain[] | null;
  /** Edit: whether the link has a password now. */
  passwordProtected?: boolean;
}

export function LinkForm({
  idPrefix,
  mode,
  initial,
  submitLabel,
  onSubmit,
  onCancel,
  domains,
  passwordProtected = false,
}: Props) {
  const [v, setV] = useState(initial);
  const [errors, setErrors] = useState<Partial<Record<keyof LinkFormValues, string>>>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const id = (f: string) => `${idPrefix}-${f}`;
  const set =
    (f: keyof LinkFormValues) =>
    (e: Event): void => {
      const t = e.currentTarget as HTMLInputElement;
      setV({ ...v, [f]: t.type === 'checkbox' ? t.checked : t.value });
    };

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setErrors({});
    setFormError(null);
    try {
      await onSubmit(bodyOf(v, mode));
      if (mode === 'create') setV(initial);
    } catch (err) {
      showSubmitError(err, {
        fields: initial,
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
    <form class="link-form" onSubmit={submit} noValidate>
      <Field id={id('url')} label="Long URL" error={errors.url}>
        {(a) => (
          <input
            {...a}
            type="url"
            name="url"
            required
            autoComplete="off"
            placeholder="https://example.com/a/long/page"
            value={v.url}
            onInput={set('url')}
          />
        )}
      </Field>
      <div class="grid">
        {mode === 'create' && (
          <Field id={id('domain')} label="Domain" error={errors.domain}>
            {(a) => (
              <select {...a} name="domain" value={v.domain} onChange={set('domain')}>
                {(domains ?? []).map((d) => (
                  <option key={d.host} value={d.isDefault ? '' : d.host}>
                    {d.isDefault ? `${d.host} (default)` : d.host}
                  </option>
                ))}
                {(domains ?? []).length === 0 && <option value="">Default domain</option>}
              </select>
            )}
          </Field>
        )}
        {mode === 'create' && (
          <Field
            id={id('alias')}
            label="Alias (optional)"
            error={errors.alias}
            hint="3–64 of A–Z a–z 0–9 _ -"
          >
            {(a) => <input {...a} name="alias" autoComplete="off" value={v.alias} onInput={set('alias')} />}
          </Field>
        )}
        <Field id={id('title')} label="Title (optional)" error={errors.title}>
          {(a) => <input {...a} name="title" autoComplete="off" value={v.title} onInput={set('title')} />}
        </Field>
        <Field id={id('tags')} label="Tags (optional)" error={errors.tags} hint="Comma-separated">
          {(a) => <input {...a} name="tags" autoComplete="off" value={v.tags} onInput={set('tags')} />}
        </Field>
        <Field id={id('expiresAt')} label="Expires (optional)" error={errors.expiresAt}>
          {(a) => (
            <input
              {...a}
              type="datetime-local"
              name="expiresAt"
              value={v.expiresAt}
              onInput={set('expiresAt')}
            />
          )}
        </Field>
        <Field id={id('maxClicks')} label="Max clicks (optional)" error={errors.maxClicks}>
          {(a) => (
            <input
              {...a}
              type="number"
              min="1"
              step="1"
              inputMode="numeric"
              name="maxClicks"
              value={v.maxClicks}
              onInput={set('maxClicks')}
            />
          )}
        </Field>
        <Field id={id('redirectType')} label="Redirect type" error={errors.redirectType}>
          {(a) => (
            <select {...a} name="redirectType" value={v.redirectType} onChange={set('redirectType')}>
              <option value="302">302 Found (temporary)</option>
              <option value="301">301 Moved permanently</option>
              <option value="307">307 Temporary, keeps method</option>
              <option value="308">308 Permanent, keeps method</option>
            </select>
          )}
        </Field>
      </div>
      <div class="grid">
        <Field
          id={id('password')}
          label={mode === 'edit' && passwordProtected ? 'New password (optional)' : 'Password (optional)'}
          error={errors.password}
          hint={
            mode === 'edit' && passwordProtected
              ? 'Empty: the password stays as it is'
              : 'Visitors must enter it before they are sent on'
          }
        >
          {(a) => (
            <input
              {...a}
              type="password"
              name="password"
              autoComplete="new-password"
              disabled={v.removePassword}
              value={v.password}
              onInput={set('password')}
            />
          )}
        </Field>
        <Field
          id={id('expiredUrl')}
          label="Fallback URL (optional)"
          error={errors.expiredUrl}
          hint="Where visitors go once the link is expired, used up or disabled"
        >
          {(a) => (
            <input
              {...a}
              type="url"
              name="expiredUrl"
              autoComplete="off"
              value={v.expiredUrl}
              onInput={set('expiredUrl')}
            />
          )}
        </Field>
      </div>
      {mode === 'edit' && passwordProtected && (
        <div class="check">
          <input
            id={id('removePassword')}
            type="checkbox"
            name="removePassword"
            checked={v.removePassword}
            onChange={set('removePassword')}
          />
          <label for={id('removePassword')}>Remove the password</label>
        </div>
      )}
      <div class="check">
        <input
          id={id('crawlable')}
          type="checkbox"
          name="crawlable"
          checked={v.crawlable}
          onChange={set('crawlable')}
        />
        <label for={id('crawlable')}>Let search engines follow it (listed in robots.txt)</label>
      </div>
      <div class="check">
        <input
          id={id('forwardQuery')}
          type="checkbox"
          name="forwardQuery"
          checked={v.forwardQuery}
          onChange={set('forwardQuery')}
        />
        <label for={id('forwardQuery')}>Pass the short link's query string on to the target</label>
      </div>
      <FormActions formError={formError} busy={busy} submitLabel={submitLabel} onCancel={onCancel} />
    </form>
  );
}
