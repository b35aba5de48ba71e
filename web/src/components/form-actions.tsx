// The end of a form: its error (if any), the submit button (busy while saving) and Cancel.
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
