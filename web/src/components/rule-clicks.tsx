// A link's A/B result: its clicks by the redirect rule that sent them, each named by where the
// rule sends visitors now ('0': no rule matched, the link's own URL).
import { useEffect, useState } from 'preact/hooks';
import { api, type Link } from '../api.ts';
import { linkPath } from '../domains.ts';
import type { ApiRule } from '../rules.ts';
import { TopList } from './charts.tsx';

interface Props {
  code: string;
  domain: string | null;
  rows: { key: string; clicks: number }[];
}

export function RuleClicks({ code, domain, rows }: Props) {
  const [targets, setTargets] = useState<{ url: string; rules: ApiRule[] } | null>(null);

  useEffect(() => {
    let live = true;
    Promise.all([
      linkPath(code, domain).then((p) => api<Link>('GET', p)),
      linkPath(code, domain, '/rules').then((p) => api<{ rules: ApiRule[] }>('GET', p)),
    ]).then(
      ([link, r]) => live && setTargets({ url: link.url, rules: r.rules }),
      // Without the targets the rules are still listed, by number.
      () => live && setTargets(null),
    );
    return () => {
      live = false;
    };
  }, [code, domain]);

  const label = (key: string) => {
    if (key === '0') return `No rule matched${targets === null ? '' : `: ${targets.url}`}`;
    const url = targets?.rules[Number(key) - 1]?.url;
    return `Rule ${key}${url === undefined ? '' : `: ${url}`}`;
  };
  // Rules in order, then the visitors no rule took.
  const order = (key: string) => (key === '0' ? Number.MAX_SAFE_INTEGER : Number(key));
  const sorted = [...rows].sort((a, b) => order(a.key) - order(b.key));
  return <TopList title="Clicks by rule" rows={sorted} link={label} />;
}
