// Clicks for one link (?code=, and &domain= off the default domain) or all links: a chart over a
// chosen range, top referrers, countries, browsers, OSes and devices, clicks by redirect rule (one
// link) or visits that found no link (all links), and a live feed from the server's event stream.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from '../api.ts';
import { TimeChart, TopList } from '../components/charts.tsx';
import { OrphanVisits } from '../components/orphan-visits.tsx';
import { RuleClicks } from '../components/rule-clicks.tsx';
import { analyticsHref, defaultHostOf, linkPath, useDomains } from '../domains.ts';
import { formatNumber } from '../format.ts';
import { navigate, onLinkClick } from '../router.ts';

interface Row {
  key: string;
  clicks: number;
}

interface Stats {
  from: string;
  to: string;
  interval: 'hour' | 'day';
  totals: { clicks: number; visitors: number };
  series: { t: string; clicks: number }[];
  referrers: Row[];
  countries: Row[];
  browsers: Row[];
  oses: Row[];
  devices: Row[];
  /** One link's clicks by the rule that sent them ('0': none matched). */
  rules?: Row[];
  topLinks?: { code: string; domain: string; clicks: number }[];
}

interface ClickEvent {
  code: string;
  at: string;
  referrerHost: string | null;
  country: string | null;
  browser: string | null;
  os: string | null;
  device: string | null;
  bot: boolean;
}

const DAY = 86_400_000;
const dateInput = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const FEED_MAX = 50;

export function AnalyticsPage({ code, domain }: { code: string | null; domain: string | null }) {
  const today = Date.now();
  const [from, setFrom] = useState(dateInput(today - 6 * DAY));
  const [to, setTo] = useState(dateInput(today));
  const [interval, setIntervalChoice] = useState<'auto' | 'hour' | 'day'>('auto');
  const [bots, setBots] = useState(false);
  const [codeInput, setCodeInput] = useState(code ?? '');
  const [domainInput, setDomainInput] = useState(domain ?? '');
  const { domains } = useDomains();
  const defaultHost = domains === null ? undefined : defaultHostOf(domains);
  const [stats, setStats] = useState<Stats | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [refresh, setRefresh] = useState(0);
  const asked = useRef(0);

  useEffect(() => setCodeInput(code ?? ''), [code]);
  useEffect(() => setDomainInput(domain ?? ''), [domain]);

  const p = new URLSearchParams({
    from: new Date(`${from}T00:00:00`).toISOString(),
    // Through the end of the chosen day.
    to: new Date(new Date(`${to}T00:00:00`).getTime() + DAY).toISOString(),
    includeBots: String(bots),
  });
  if (interval !== 'auto') p.set('interval', interval);
  const windowQuery = p.toString();

  useEffect(() => {
    const mine = ++asked.current;
    const path =
      code === null
        ? Promise.resolve(`/stats?${windowQuery}`)
        : linkPath(code, domain, '/stats', new URLSearchParams(windowQuery));
    path
      .then((at) => api<Stats>('GET', at))
      .then(
        (s) => {
          if (mine !== asked.current) return;
          setStats(s);
          setError(null);
        },
        (err: Error) => {
          if (mine === asked.current) setError(err.message);
        },
      );
  }, [code, domain, windowQuery, refresh]);

  const title =
    code === null ? 'Analytics: all links' : `Analytics: ${code}${domain === null ? '' : ` on ${domain}`}`;
  return (
    <main id="main">
      <h1 tabIndex={-1}>{title}</h1>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          const c = codeInput.trim();
          if (c === '') navigate('/analytics');
          else if (domainInput === '') navigate(`/analytics?code=${encodeURIComponent(c)}`);
          else navigate(analyticsHref(c, domainInput, defaultHost));
        }}
      >
        <div class="field">
          <label for="an-code">Link code (empty: all links)</label>
          <input
            id="an-code"
            name="code"
            value={codeInput}
            onInput={(e) => setCodeInput(e.currentTarget.value)}
          />
        </div>
        {domains !== null && domains.length > 1 && (
          <div class="field">
            <label for="an-domain">Its domain</label>
            <select
              id="an-domain"
              value={domainInput}
              onChange={(e) => setDomainInput(e.currentTarget.value)}
            >
              {domains.map((d) => (
                <option key={d.host} value={d.isDefault ? '' : d.host}>
                  {d.host}
                </option>
              ))}
            </select>
          </div>
        )}
        <button type="submit">Show</button>
        <div class="field">
          <label for="an-from">From</label>
          <input
            id="an-from"
            type="date"
            value={from}
            max={to}
            onChange={(e) => setFrom(e.currentTarget.value)}
          />
        </div>
        <div class="field">
          <label for="an-to">To</label>
          <input
            id="an-to"
            type="date"
            value={to}
            min={from}
            onChange={(e) => setTo(e.currentTarget.value)}
          />
        </div>
        <div class="field">
          <label for="an-interval">Interval</label>
          <select
            id="an-interval"
            value={interval}
            onChange={(e) => setIntervalChoice(e.currentTarget.value as 'auto' | 'hour' | 'day')}
          >
            <option value="auto">Automatic</option>
            <option value="hour">Hour</option>
            <option value="day">Day</option>
          </select>
        </div>
        <div class="check">
          <input
            id="an-bots"
            type="checkbox"
            checked={bots}
            onChange={(e) => setBots(e.currentTarget.checked)}
          />
          <label for="an-bots">Include bots</label>
        </div>
      </form>
      {error !== null && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {stats !== null && (
        <>
          <section class="totals" aria-label="Totals">
            <div class="card stat">
              <span class="big" data-testid="total-clicks">
                {formatNumber(stats.totals.clicks)}
              </span>
              <span>clicks</span>
            </div>
            <div class="card stat">
              <span class="big">{formatNumber(stats.totals.visitors)}</span>
              <span>visitors</span>
            </div>
          </section>
          <section class="card" aria-labelledby="series-title">
            <h2 id="series-title">Clicks per {stats.interval}</h2>
            <TimeChart
              points={stats.series.map((s) => ({ t: s.t, v: s.clicks }))}
              label={`Clicks per ${stats.interval}`}
              unit="clicks"
              interval={stats.interval}
            />
          </section>
          {code !== null && stats.rules !== undefined && stats.rules.length > 0 && (
            <RuleClicks code={code} domain={domain} rows={stats.rules} />
          )}
          <div class="toplists">
            {stats.topLinks !== undefined && (
              <TopList
                title="Top links"
                rows={stats.topLinks.map((l) => ({ key: `${l.domain}/${l.code}`, clicks: l.clicks }))}
                link={(key) => {
                  const slash = key.lastIndexOf('/');
                  const [host, c] = [key.slice(0, slash), key.slice(slash + 1)];
                  return (
                    <a href={analyticsHref(c, host, defaultHost)} onClick={onLinkClick}>
                      {host === defaultHost ? c : `${host}/${c}`}
                    </a>
                  );
                }}
              />
            )}
            <TopList title="Referrers" rows={stats.referrers} />
            <TopList title="Countries" rows={stats.countries} />
            <TopList title="Browsers" rows={stats.browsers} />
            <TopList title="Operating systems" rows={stats.oses} />
            <TopList title="Devices" rows={stats.devices} />
          </div>
        </>
      )}
      {code === null && <OrphanVisits windowQuery={windowQuery} domains={domains} refresh={refresh} />}
      <LiveFeed code={code} domain={domain} onClick={() => setRefresh((n) => n + 1)} />
    </main>
  );
}

function LiveFeed({
  code,
  domain,
  onClick,
}: {
  code: string | null;
  domain: string | null;
  onClick: () => void;
}) {
  const [events, setEvents] = useState<ClickEvent[]>([]);
  const [state, setState] = useState<'connecting' | 'live' | 'down'>('connecting');
  const later = useRef<ReturnType<typeof setTimeout> | null>(null);
  useEffect(() => {
    setEvents([]);
    setState('connecting');
    const onEvent = (e: Event) => {
      const click = JSON.parse((e as MessageEvent<string>).data) as ClickEvent;
      setEvents((old) => [click, ...old].slice(0, FEED_MAX));
      // The rollups take one flush to include the click: refresh the figures shortly after.
      if (later.current === null) {
        later.current = setTimeout(() => {
          later.current = null;
          onClick();
        }, 1200);
      }
    };
    let source: EventSource | null = null;
    let closed = false;
    const path = code === null ? Promise.resolve('/events') : linkPath(code, domain, '/events');
    path.then(
      (at) => {
        if (closed) return;
        const s = new EventSource(`/api/v1${at}`, { withCredentials: true });
        s.onopen = () => setState('live');
        s.onerror = () => setState(s.readyState === EventSource.CLOSED ? 'down' : 'connecting');
        s.addEventListener('click', onEvent);
        source = s;
      },
      () => setState('down'),
    );
    return () => {
      closed = true;
      source?.close();
      if (later.current !== null) clearTimeout(later.current);
      later.current = null;
    };
  }, [code, domain]);

  return (
    <section class="card feed" aria-labelledby="feed-title">
      <h2 id="feed-title">
        Live clicks{' '}
        <span class={`pill pill-${state}`}>
          {state === 'live' ? 'live' : state === 'connecting' ? 'connecting…' : 'not connected'}
        </span>
      </h2>
      {events.length === 0 && <p class="muted">Clicks appear here as they happen.</p>}
      <ol aria-live="polite" data-testid="feed" class="feed-list">
        {events.map((c, i) => (
          <li key={`${c.at}-${events.length - i}`}>
            <time dateTime={c.at}>{new Date(c.at).toLocaleTimeString()}</time>{' '}
            <a href={feedHref(c.code)} onClick={onLinkClick} class="code">
              {c.code}
            </a>{' '}
            <span class="muted">
              {[c.referrerHost ?? 'direct', c.country, c.browser, c.os, c.device]
                .filter((x) => x !== null && x !== '')
                .join(' · ')}
              {c.bot ? ' · bot' : ''}
            </span>
          </li>
        ))}
      </ol>
    </section>
  );
}

/** A feed click names its link by key: the code on the default domain, `host/code` elsewhere. */
function feedHref(key: string): string {
  const slash = key.lastIndexOf('/');
  if (slash === -1) return `/analytics?code=${encodeURIComponent(key)}`;
  return `/analytics?code=${encodeURIComponent(key.slice(slash + 1))}&domain=${encodeURIComponent(key.slice(0, slash))}`;
}
