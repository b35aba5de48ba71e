// Visits that found no link over the analytics window: a domain's root, an unknown code or any other
// path, with the most visited paths; for all domains or one.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, type Domain } from '../api.ts';
import { formatNumber } from '../format.ts';
import { TopList } from './charts.tsx';
import { DomainFilter } from './domain-filter.tsx';

interface Orphans {
  totals: { clicks: number };
  types: { key: 'root' | 'unknown_code' | 'other'; clicks: number }[];
  paths: { key: string; clicks: number }[];
}

const TYPE_LABELS: Record<string, string> = {
  root: 'Domain root (/)',
  unknown_code: 'Unknown code',
  other: 'Other paths',
};

interface Props {
  /** from, to, interval and includeBots, as the page's filters set them. */
  windowQuery: string;
  domains: Domain[] | null;
  refresh: number;
}

export function OrphanVisits({ windowQuery, domains, refresh }: Props) {
  const [domain, setDomain] = useState('');
  const [data, setData] = useState<Orphans | null>(null);
  const [error, setError] = useState<string | null>(null);
  const asked = useRef(0);

  useEffect(() => {
    const mine = ++asked.current;
    const p = new URLSearchParams(windowQuery);
    if (domain !== '') p.set('domain', domain);
    api<Orphans>('GET', `/stats/orphans?${p}`).then(
      (o) => {
        if (mine !== asked.current) return;
        setData(o);
        setError(null);
      },
      (err: Error) => {
        if (mine === asked.current) setError(err.message);
      },
    );
  }, [windowQuery, domain, refresh]);

  return (
    <section class="card orphans" aria-labelledby="orphans-title" data-testid="orphans">
      <h2 id="orphans-title">Visits that found no link</h2>
      <DomainFilter
        id="orphans-domain"
        domains={domains}
        value={domain}
        onChange={setDomain}
        wrapClass="field narrow"
      />
      {error !== null && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {data !== null && (
        <>
          <p>
            <span class="big" data-testid="orphan-total">
              {formatNumber(data.totals.clicks)}
            </span>{' '}
            visits to a domain's root, an unknown code or another path
          </p>
          <div class="toplists">
            <TopList title="By kind" rows={data.types} link={(key) => TYPE_LABELS[key] ?? key} />
            <TopList
              title="Top paths"
              rows={data.paths}
              link={(key) => (key === '' ? 'Other paths (not kept one by one)' : key)}
            />
          </div>
        </>
      )}
    </section>
  );
}
