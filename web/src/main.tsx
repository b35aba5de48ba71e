// The dashboard: checks the session, then shows the page the path names. Everything shown is
// rendered as text by Preact (never as HTML), so stored titles and URLs cannot inject markup.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, type Session, SIGNED_OUT_EVENT, setCsrfToken } from './api.ts';
import { AnalyticsPage } from './pages/analytics.tsx';
import { DomainsPage } from './pages/domains.tsx';
import { LinksPage } from './pages/links.tsx';
import { ShortenPage } from './pages/shorten.tsx';
import { SignInPage } from './pages/signin.tsx';
import { SystemPage } from './pages/system.tsx';
import { navigate, onLinkClick, useLocation } from './router.ts';
import './styles.css';

const NAV = [
  { href: '/', label: 'Shorten' },
  { href: '/links', label: 'Links' },
  { href: '/analytics', label: 'Analytics' },
  { href: '/settings', label: 'Domains' },
  { href: '/system', label: 'System' },
] as const;

function App() {
  const [session, setSession] = useState<Session | null | 'checking'>('checking');
  const { path, query } = useLocation();

  useEffect(() => {
    api<Session>('GET', '/session').then(
      (s) => {
        setCsrfToken(s.csrfToken);
        setSession(s);
      },
      () => setSession(null),
    );
    const signedOut = () => {
      setCsrfToken(null);
      setSession(null);
    };
    window.addEventListener(SIGNED_OUT_EVENT, signedOut);
    return () => window.removeEventListener(SIGNED_OUT_EVENT, signedOut);
  }, []);

  useEffect(() => {
    const name = path === '/' ? 'Shorten' : (NAV.find((n) => n.href === path)?.label ?? 'Sign in');
    document.title = `${session === null ? 'Sign in' : name} · Hop`;
  }, [path, session]);

  if (session === 'checking') return <p class="boot">Loading Hop…</p>;
  if (session === null) {
    return (
      <>
        <Header session={null} path={path} />
        <SignInPage
          onSignedIn={(s) => {
            setCsrfToken(s.csrfToken);
            setSession(s);
            if (path === '/signin') navigate('/', true);
          }}
        />
      </>
    );
  }

  let page = <ShortenPage />;
  if (path === '/links') page = <LinksPage />;
  else if (path === '/analytics')
    page = <AnalyticsPage code={query.get('code')} domain={query.get('domain')} />;
  else if (path === '/settings') page = <DomainsPage />;
  else if (path === '/system') page = <SystemPage />;
  return (
    <>
      <Header session={session} path={path} onSignOut={() => setSession(null)} />
      {page}
    </>
  );
}

function Header({
  session,
  path,
  onSignOut,
}: {
  session: Session | null;
  path: string;
  onSignOut?: () => void;
}) {
  const signOut = async () => {
    try {
      await api('DELETE', '/session');
    } finally {
      setCsrfToken(null);
      onSignOut?.();
    }
  };
  return (
    <header class="top">
      <a class="skip" href="#main">
        Skip to content
      </a>
      <a class="brand" href="/" onClick={onLinkClick}>
        Hop
      </a>
      {session !== null && (
        <>
          <nav aria-label="Main">
            <ul>
              {NAV.map((n) => (
                <li key={n.href}>
                  <a href={n.href} onClick={onLinkClick} aria-current={path === n.href ? 'page' : undefined}>
                    {n.label}
                  </a>
                </li>
              ))}
            </ul>
          </nav>
          <div class="who">
            <span class="muted">{session.keyName}</span>
            <button type="button" onClick={signOut}>
              Sign out
            </button>
          </div>
        </>
      )}
    </header>
  );
}

const root = document.getElementById('app');
if (root !== null) {
  root.textContent = '';
  render(<App />, root);
}
