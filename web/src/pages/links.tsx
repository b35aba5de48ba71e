// Every link: search, tag and domain filters, "load more" over the API's keyset cursor, and
// in-place edit, redirect rules, disable/enable and delete (after an explicit confirmation).
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, api, type Link } from '../api.ts';
import { DomainFilter } from '../components/domain-filter.tsx';
import { LinkForm, valuesOf } from '../components/link-form.tsx';
import { LinkMarkers } from '../components/link-markers.tsx';
import { RowPanel } from '../components/row-panel.tsx';
import { RulesEditor } from '../components/rules-editor.tsx';
import { analyticsHref, defaultHostOf, linkPath, useDomains } from '../domains.ts';
import { formatDate, formatNumber, STATUS_LABELS } from '../format.ts';
import { onLinkClick } from '../router.ts';

interface Page {
  items: Link[];
  nextCursor: string | null;
}

/** A link's key in this page: one code may exist on several domains. */
const keyOf = (l: Link) => `${l.domain}/${l.code}`;

function listPath(q: string, tag: string, domain: string, cursor: string | null): string {
  const p = new URLSearchParams({ limit: '25' });
  if (q.trim() !== '') p.set('q', q.trim());
  if (tag.trim() !== '') p.set('tag', tag.trim());
  if (domain !== '') p.set('domain', domain);
  if (cursor !== null) p.set('cursor', cursor);
  return `/links?${p}`;
}

export function LinksPage() {
  const [q, setQ] = useState('');
  const [tag, setTag] = useState('');
  const [domain, setDomain] = useState('');
  const { domains } = useDomains();
  const [items, setItems] = useState<Link[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState('');
  const query = useRef(0);

  const load = async (cursor: string | null) => {
    const mine = ++query.current;
    setLoading(true);
    setError(null);
    try {
      const page = await api<Page>('GET', listPath(q, tag, domain, cursor));
      if (mine !== query.current) return; // a newer search answered first
      setItems((old) => (cursor === null ? page.items : [...old, ...page.items]));
      setNext(page.nextCursor);
      setNotice(
        cursor === null
          ? `${page.items.length}${page.nextCursor ? '+' : ''} links found`
          : 'More links loaded',
      );
    } catch (err) {
      if (mine === query.current) setError(err instanceof Error ? err.message : String(err));
    } finally {
      if (mine === query.current) setLoading(false);
    }
  };

  // Search as you type, a moment after the last keystroke.
  useEffect(() => {
    const t = setTimeout(() => void load(null), 250);
    return () => clearTimeout(t);
  }, [q, tag, domain]);

  const replace = (link: Link) => setItems((old) => old.map((l) => (keyOf(l) === keyOf(link) ? link : l)));
  const remove = (link: Link) => setItems((old) => old.filter((l) => keyOf(l) !== keyOf(link)));
  const defaultHost = domains === null ? undefined : defaultHostOf(domains);

  return (
    <main id="main">
      <h1 tabIndex={-1}>Links</h1>
      <form
        class="filters"
        aria-label="Search links"
        onSubmit={(e) => {
          e.preventDefault();
          void load(null);
        }}
      >
        <div class="field">
          <label for="links-q">Search</label>
          <input
            id="links-q"
            type="search"
            name="q"
            placeholder="Code, URL or title"
            value={q}
            onInput={(e) => setQ(e.currentTarget.value)}
          />
        </div>
        <div class="field">
          <label for="links-tag">Tag</label>
          <input id="links-tag" name="tag" value={tag} onInput={(e) => setTag(e.currentTarget.value)} />
        </div>
        <DomainFilter id="links-domain" domains={domains} value={domain} onChange={setDomain} />
        <button type="submit">Search</button>
      </form>
      <p class="visually-hidden" role="status">
        {notice}
      </p>
      {error !== null && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {items.length === 0 && !loading && error === null && <p class="empty">No links match.</p>}
      {items.length > 0 && (
        <table class="links">
          <caption class="visually-hidden">Links, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Code</th>
              <th scope="col">Target</th>
              <th scope="col">Clicks</th>
              <th scope="col">Created</th>
              <th scope="col">Status</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {items.map((link) => (
              <LinkRow
                key={keyOf(link)}
                link={link}
                defaultHost={defaultHost}
                onChange={replace}
                onDelete={remove}
              />
            ))}
          </tbody>
        </table>
      )}
      <div class="actions">
        {next !== null && (
          <button type="button" onClick={() => void load(next)} disabled={loading}>
            {loading ? 'Loading…' : 'Load more'}
          </button>
        )}
        {loading && next === null && <span class="muted">Loading…</span>}
      </div>
    </main>
  );
}

function LinkRow({
  link,
  defaultHost,
  onChange,
  onDelete,
}: {
  link: Link;
  defaultHost: string | undefined;
  onChange: (l: Link) => void;
  onDelete: (l: Link) => void;
}) {
  const [mode, setMode] = useState<'view' | 'edit' | 'rules' | 'confirm'>('view');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const code = link.code;
  const onDefault = defaultHost === undefined || link.domain === defaultHost;
  // Ids stay as they were for the default domain's links; others carry their host.
  const idBase = onDefault ? code : `${link.domain.replaceAll('.', '_')}-${code}`;
  const path = (suffix = '') => linkPath(code, link.domain, suffix);

  const act = async (work: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await work();
    } catch (err) {
      setError(err instanceof ApiError || err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <>
      <tr data-code={code} data-domain={link.domain} class={mode === 'view' ? '' : 'open'}>
        <td data-label="Code">
          <a href={link.shortUrl} target="_blank" rel="noopener noreferrer" class="code">
            {code}
          </a>
          <div class="host">{link.domain}</div>
          {link.title !== null && <div class="title">{link.title}</div>}
          <LinkMarkers link={link} />
          {link.tags.length > 0 && (
            <ul class="tags" aria-label="Tags">
              {link.tags.map((t) => (
                <li key={t}>{t}</li>
              ))}
            </ul>
          )}
        </td>
        <td data-label="Target" class="url">
          {link.url}
        </td>
        <td data-label="Clicks" class="num">
          {formatNumber(link.clicks)}
        </td>
        <td data-label="Created">{formatDate(link.createdAt)}</td>
        <td data-label="Status">
          <span class={`status status-${link.status}`}>{STATUS_LABELS[link.status] ?? link.status}</span>
        </td>
        <td data-label="Actions" class="row-actions">
          <button
            type="button"
            onClick={() => setMode(mode === 'edit' ? 'view' : 'edit')}
            aria-expanded={mode === 'edit'}
          >
            Edit<span class="visually-hidden"> {code}</span>
          </button>
          <button
            type="button"
            disabled={busy}
            onClick={() =>
              act(async () => onChange(await api<Link>('PATCH', await path(), { disabled: !link.disabled })))
            }
          >
            {link.disabled ? 'Enable' : 'Disable'}
            <span class="visually-hidden"> {code}</span>
          </button>
          <button
            type="button"
            onClick={() => setMode(mode === 'rules' ? 'view' : 'rules')}
            aria-expanded={mode === 'rules'}
          >
            Rules<span class="visually-hidden"> for {code}</span>
          </button>
          <a href={analyticsHref(code, link.domain, defaultHost)} onClick={onLinkClick} class="button">
            Analytics<span class="visually-hidden"> for {code}</span>
          </a>
          <button type="button" class="danger" onClick={() => setMode('confirm')}>
            Delete<span class="visually-hidden"> {code}</span>
          </button>
        </td>
      </tr>
      {(mode !== 'view' || error !== null) && (
        <RowPanel colSpan={6} error={error}>
          {mode === 'edit' && (
            <LinkForm
              idPrefix={`edit-${idBase}`}
              mode="edit"
              initial={valuesOf(link)}
              passwordProtected={link.passwordProtected}
              submitLabel="Save changes"
              onCancel={() => setMode('view')}
              onSubmit={async (body) => {
                onChange(await api<Link>('PATCH', await path(), body));
                setMode('view');
              }}
            />
          )}
          {mode === 'rules' && (
            <RulesEditor
              idPrefix={`rules-${idBase}`}
              link={link}
              onClose={() => setMode('view')}
              onSaved={(hasRules) => onChange({ ...link, hasRules })}
            />
          )}
          {mode === 'confirm' && (
            <ConfirmDelete
              code={code}
              idBase={idBase}
              busy={busy}
              onCancel={() => setMode('view')}
              onConfirm={() =>
                act(async () => {
                  await api('DELETE', await path());
                  onDelete(link);
                })
              }
            />
          )}
        </RowPanel>
      )}
    </>
  );
}

function ConfirmDelete(props: {
  code: string;
  idBase: string;
  busy: boolean;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  const button = useRef<HTMLButtonElement>(null);
  // Focus moves to the question's answer, so a keyboard user confirms or cancels at once.
  useEffect(() => button.current?.focus(), []);
  return (
    <div class="confirm">
      <p id={`confirm-${props.idBase}`}>
        Delete <strong>{props.code}</strong>? The short link stops working and its code is never reused.
      </p>
      <button type="button" class="danger" ref={button} disabled={props.busy} onClick={props.onConfirm}>
        Yes, delete {props.code}
      </button>
      <button type="button" onClick={props.onCancel}>
        Keep it
      </button>
    </div>
  );
}
