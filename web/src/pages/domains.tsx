// The domains Hop serves links on (/settings): add one, change where each sends visitors that find
// no live link, and remove one that has no links (the default domain stays).
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, type Domain } from '../api.ts';
import { DomainForm } from '../components/domain-form.tsx';
import { RowPanel } from '../components/row-panel.tsx';
import { forgetDomains } from '../domains.ts';
import { formatDate } from '../format.ts';

export function DomainsPage() {
  const [items, setItems] = useState<Domain[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState('');

  const load = async () => {
    try {
      setItems((await api<{ items: Domain[] }>('GET', '/domains')).items);
      setError(null);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  };
  useEffect(() => void load(), []);

  /** After a change: this list and every other page's copy are read again. */
  const changed = async (message: string) => {
    forgetDomains();
    setNotice(message);
    await load();
  };

  return (
    <main id="main">
      <h1 tabIndex={-1}>Domains</h1>
      <p class="muted">
        Short links answer on the default domain (the host of HOP_PUBLIC_URL) and on any domain added here.
        Point a domain's DNS at Hop before adding it.
      </p>
      <section class="card" aria-labelledby="add-domain-title">
        <h2 id="add-domain-title">Add a domain</h2>
        <DomainForm
          idPrefix="new-domain"
          domain={null}
          submitLabel="Add domain"
          onSubmit={async (body) => {
            const d = await api<Domain>('POST', '/domains', body);
            await changed(`Added ${d.host}.`);
          }}
        />
      </section>
      <p class="visually-hidden" role="status">
        {notice}
      </p>
      {error !== null && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {items === null && error === null && <p class="muted">Loading domains…</p>}
      {items !== null && (
        <table class="links domains">
          <caption class="visually-hidden">Domains, the default one first</caption>
          <thead>
            <tr>
              <th scope="col">Host</th>
              <th scope="col">Root</th>
              <th scope="col">Unknown code</th>
              <th scope="col">Dead link</th>
              <th scope="col">Other 404</th>
              <th scope="col">Added</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {items.map((d) => (
              <DomainRow key={d.host} domain={d} onChanged={changed} />
            ))}
          </tbody>
        </table>
      )}
    </main>
  );
}

function Redirect({ url, otherwise }: { url: string | null; otherwise: string }) {
  return url === null ? <span class="muted">{otherwise}</span> : <span class="url">{url}</span>;
}

function DomainRow({
  domain: d,
  onChanged,
}: {
  domain: Domain;
  onChanged: (message: string) => Promise<void>;
}) {
  const [mode, setMode] = useState<'view' | 'edit' | 'confirm'>('view');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const confirm = useRef<HTMLButtonElement>(null);
  const path = `/domains/${encodeURIComponent(d.host)}`;
  const idBase = d.host.replaceAll('.', '_');

  // Focus moves to the question's answer, so a keyboard user confirms or cancels at once.
  useEffect(() => {
    if (mode === 'confirm') confirm.current?.focus();
  }, [mode]);

  const remove = async () => {
    setBusy(true);
    setError(null);
    try {
      await api('DELETE', path);
      await onChanged(`Removed ${d.host}.`);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
      setMode('view');
    } finally {
      setBusy(false);
    }
  };

  return (
    <>
      <tr data-host={d.host} class={mode === 'view' ? '' : 'open'}>
        <td data-label="Host">
          <span class="code">{d.host}</span>{' '}
          {d.isDefault && <span class="status status-active">Default</span>}
        </td>
        <td data-label="Root" class="url">
          <Redirect url={d.rootRedirect} otherwise={d.isDefault ? 'The dashboard' : 'Not found (404)'} />
        </td>
        <td data-label="Unknown code" class="url">
          <Redirect url={d.notFoundRedirect} otherwise="Not found (404)" />
        </td>
        <td data-label="Dead link" class="url">
          <Redirect url={d.expiredRedirect} otherwise="Gone (410)" />
        </td>
        <td data-label="Other 404" class="url">
          <Redirect url={d.otherNotFoundRedirect} otherwise="Not found (404)" />
        </td>
        <td data-label="Added">
          {d.isDefault ? <span class="muted">Always there</span> : formatDate(d.createdAt)}
        </td>
        <td data-label="Actions" class="row-actions">
          <button
            type="button"
            onClick={() => {
              setError(null);
              setMode(mode === 'edit' ? 'view' : 'edit');
            }}
            aria-expanded={mode === 'edit'}
          >
            Edit<span class="visually-hidden"> {d.host}</span>
          </button>
          {!d.isDefault && (
            <button
              type="button"
              class="danger"
              onClick={() => {
                setError(null);
                setMode('confirm');
              }}
            >
              Delete<span class="visually-hidden"> {d.host}</span>
            </button>
          )}
        </td>
      </tr>
      {(mode !== 'view' || error !== null) && (
        <RowPanel colSpan={7} error={error}>
          {mode === 'edit' && (
            <DomainForm
              idPrefix={`edit-domain-${idBase}`}
              domain={d}
              submitLabel="Save redirects"
              onCancel={() => setMode('view')}
              onSubmit={async (body) => {
                const saved = await api<Domain>('PATCH', path, body);
                setMode('view');
                await onChanged(`Saved the redirects of ${saved.host}.`);
              }}
            />
          )}
          {mode === 'confirm' && (
            <div class="confirm">
              <p>
                Remove <strong>{d.host}</strong>? Hop stops answering on it. A domain that still has links
                cannot be removed.
              </p>
              <button type="button" class="danger" ref={confirm} disabled={busy} onClick={remove}>
                Yes, remove {d.host}
              </button>
              <button type="button" onClick={() => setMode('view')}>
                Keep it
              </button>
            </div>
          )}
        </RowPanel>
      )}
    </>
  );
}
