// The row under a table's row that holds what the row opened: its edit form, a confirmation, or
// the error of what was tried. Shared by the links and domains tables.
import type { ComponentChildren } from 'preact';

export function RowPanel(props: { colSpan: number; error: string | null; children: ComponentChildren }) {
  return (
    <tr class="row-panel">
      <td colSpan={props.colSpan}>
        {props.error !== null && (
          <p class="error" role="alert">
            {props.error}
          </p>
        )}
        {props.children}
      </td>
    </tr>
  );
}
