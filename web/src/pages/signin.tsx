// Sign in: the API key goes to the server once, which answers with an HttpOnly session cookie;
// the key is never written to browser storage.
import { useState } from 'preact/hooks';
import { ApiError, api, type Session } from '../api.ts';
import { Field } from '../components/field.tsx';

export function SignInPage({ onSignedIn }: { onSignedIn: (s: Session) => void }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const session = await api<Session>('POST', '/session', { key: key.trim() });
      setKey('');
      onSignedIn(session);
    } catch (err) {
      setError(err instanceof ApiError || err instanceof Error ? err.message : String(err));
      document.getElementById('signin-key')?.focus();
    } finally {
      setBusy(false);
    }
  };
  return (
    <main id="main" class="signin">
      <h1 tabIndex={-1}>Sign in to Hop</h1>
      <p>
        Use an API key. Hop prints one on its first start; <code>hop keys create</code> makes more. The key is
        exchanged for a session cookie and not kept in this browser.
      </p>
      <form onSubmit={submit} class="card" noValidate>
        <Field id="signin-key" label="API key" error={error}>
          {(a) => (
            <input
              {...a}
              type="password"
              name="key"
              autoComplete="current-password"
              required
              value={key}
              onInput={(e) => setKey(e.currentTarget.value)}
            />
          )}
        </Field>
        <div class="actions">
          <button type="submit" class="primary" disabled={busy || key.trim() === ''}>
            {busy ? 'Signing in…' : 'Sign in'}
          </button>
        </div>
      </form>
    </main>
  );
}
