// A "which domain" filter, shown only when there is more than one domain ('' = all domains).
import type { Domain } from '../api.ts';

interface DomainFilterProps {
  id: string;
  domains: readonly Domain[] | null;
  value: string;
  onChange: (host: string) => void;
  wrapClass?: string;
}

export function DomainFilter({ id, domains, value, onChange, wrapClass = 'field' }: DomainFilterProps) {
  if (domains === null || domains.length < 2) return null;
  return (
    <div class={wrapClass}>
      <label for={id}>Domain</label>
      <select id={id} value={value} onChange={(e) => onChange(e.currentTarget.value)}>
        <option value="">All domains</option>
        {domains.map((d) => (
          <option key={d.host} value={d.host}>
            {d.host}
          </option>
        ))}
      </select>
    </div>
  );
}
