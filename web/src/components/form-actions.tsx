// The end of a form: its error (if any), the submit button (busy while saving) and Cancel; and
// where a failed submit's error is shown.
import { ApiError } from '../api.ts';

interface FormActionsProps {
  formError: string | null;
  busy: boolean;
  submitLabel: string;
  onCancel?: (() => void) | undefined;
}

export function FormActions({ formError, busy, submitLabel, onCancel }: FormActionsProps) {
  return (
    <>
      {formError !== null && (
        <p class="error form-error" role="alert">
          {formError}
        </p>
      )}
      <div class="actions">
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Saving…' : submitLabel}
        </button>
        {onCancel !== undefined && (
          <button type="button" onClick={onCancel}>
            Cancel
          </button>
        )}
      </div>
    </>
  );
}

/**
 * A failed submit, shown next to the field it names (or a problem code stands for), focused;
 * otherwise as the form's own error.
 */
export function showSubmitError(
  err: unknown,
  form: {
    fields: object;
    codeFields: Record<string, string>;
    idOf: (field: string) => string;
    setFieldError: (field: string, message: string) => void;
    setFormError: (message: string) => void;
  },
): void {
  const message = err instanceof Error ? err.message : String(err);
  const field = err instanceof ApiError ? (err.field ?? form.codeFields[err.code]) : undefined;
  if (field !== undefined && field in form.fields) {
    form.setFieldError(field, message);
    document.getElementById(form.idOf(field))?.focus();
  } else form.setFormError(message);
}
