// Clicks for one link (?code=) or all links: a chart over a chosen range, top referrers,
// countries, browsers, OSes and devices, and a live feed from the server's event stream.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from '../api.ts';
import { TimeChart, TopList } from '../components/charts.tsx';
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
  topLinks?: { code: string; clicks: number }[];
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

export function AnalyticsPage({ code }: { code: string | null }) {
  const today = Date.now();
  const [from, setFrom] = useState(dateInput(today - 6 * DAY));
  const [to, setTo] = useState(dateInput(today));
  const [interval, setIntervalChoice] = useState<'auto' | 'hour' | 'day'>('auto');
  const [bots, setBots] = useState(false);
  const [codeInput, setCodeInput] = useState(code ?? '');
  const [stats, setStats] = useState<Stats | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [refresh, setRefresh] = useState(0);
  const asked = useRef(0);

  useEffect(() => setCodeInput(code ?? ''), [code]);

  useEffect(() => {
    const mine = ++asked.current;
    const p = new URLSearchParams({
      from: new Date(`${from}T00:00:00`).toISOString(),
      // Through the end of the chosen day.
      to: new Date(new Date(`${to}T00:00:00`).getTime() + DAY).toISOString(),
      includeBots: String(bots),
    });
    if (interval !== 'auto') p.set('interval', interval);
    const path = code === null ? `/stats?${p}` : `/links/${encodeURIComponent(code)}/stats?${p}`;
    api<Stats>('GET', path).then(
      (s) => {
        if (mine !== asked.current) return;
        setStats(s);
        setError(null);
      },
      (err: Error) => {
        if (mine === asked.current) setError(err.message);
      },
    );
  }, [code, from, to, interval, bots, refresh]);

  const title = code === null ? 'Analytics: all links' : `Analytics: ${code}`;
  return (
    <main id="main">
      <h1 tabIndex={-1}>{title}</h1>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          const c = codeInput.trim();
          navigate(c === '' ? '/analytics' : `/analytics?code=${encodeURIComponent(c)}`);
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
          <div class="toplists">
            {stats.topLinks !== undefined && (
              <TopList
                title="Top links"
                rows={stats.topLinks.map((l) => ({ key: l.code, clicks: l.clicks }))}
                link={(c) => (
                  <a href={`/analytics?code=${encodeURIComponent(c)}`} onClick={onLinkClick}>
                    {c}
                  </a>
                )}
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
      <LiveFeed code={code} onClick={() => setRefresh((n) => n + 1)} />
    </main>
  );
}

function LiveFeed({ code, onClick }: { code: string | null; onClick: () => void }) {
  const [events, setEvents] = useState<ClickEvent[]>([]);
  const [state, setState] = useState<'connecting' | 'live' | 'down'>('connecting');
  const later = useRef<ReturnType<typeof setTimeout> | null>(null);
  useEffect(() => {
    setEvents([]);
    setState('connecting');
    const url = code === null ? '/api/v1/events' : `/api/v1/links/${encodeURIComponent(code)}/events`;
    const source = new EventSource(url, { withCredentials: true });
    source.onopen = () => setState('live');
    source.onerror = () => setState(source.readyState === EventSource.CLOSED ? 'down' : 'connecting');
    source.addEventListener('click', (e) => {
      const click = JSON.parse((e as MessageEvent<string>).data) as ClickEvent;
      setEvents((old) => [click, ...old].slice(0, FEED_MAX));
      // The rollups take one flush to include the click: refresh the figures shortly after.
      if (later.current === null) {
        later.current = setTimeout(() => {
          later.current = null;
          onClick();
        }, 1200);
      }
    });
    return () => {
      source.close();
      if (later.current !== null) clearTimeout(later.current);
      later.current = null;
    };
  }, [code]);

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
            <a href={`/analytics?code=${encodeURIComponent(c.code)}`} onClick={onLinkClick} class="code">
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
