// A labelled form field whose error (from the API's `field`) sits right under it and is tied
// to it for assistive technology.
import type { ComponentChildren } from 'preact';

interface FieldProps {
  id: string;
  label: string;
  error?: string | undefined;
  hint?: string | undefined;
  children: (described: {
    id: string;
    'aria-invalid': boolean;
    'aria-describedby'?: string;
  }) => ComponentChildren;
}

export function Field({ id, label, error, hint, children }: FieldProps) {
  const ids = [hint === undefined ? null : `${id}-hint`, error === undefined ? null : `${id}-error`].filter(
    (x): x is string => x !== null,
  );
  const attrs: { id: string; 'aria-invalid': boolean; 'aria-describedby'?: string } = {
    id,
    'aria-invalid': error !== undefined,
  };
  if (ids.length > 0) attrs['aria-describedby'] = ids.join(' ');
  return (
    <div class={error === undefined ? 'field' : 'field has-error'}>
      <label for={id}>{label}</label>
      {children(attrs)}
      {hint !== undefined && (
        <p class="hint" id={`${id}-hint`}>
          {hint}
        </p>
      )}
      {error !== undefined && (
        <p class="error" id={`${id}-error`} data-field-error={id}>
          {error}
        </p>
      )}
    </div>
  );
}
