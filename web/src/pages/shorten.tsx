// Shorten a URL: the result shows the short link, a copy button and its QR code.
import { useState } from 'preact/hooks';
import { api, type Link } from '../api.ts';
import { CopyButton } from '../components/copy-button.tsx';
import { emptyValues, LinkForm } from '../components/link-form.tsx';
import { QrCode } from '../components/qr.tsx';
import { onLinkClick } from '../router.ts';

export function ShortenPage() {
  const [created, setCreated] = useState<Link | null>(null);
  return (
    <main id="main">
      <h1 tabIndex={-1}>Shorten a link</h1>
      <section class="card" aria-label="New link">
        <LinkForm
          idPrefix="new"
          mode="create"
          initial={emptyValues}
          submitLabel="Shorten"
          onSubmit={async (body) => {
            setCreated(await api<Link>('POST', '/links', body));
          }}
        />
      </section>
      {created !== null && (
        <section class="card result" aria-labelledby="result-title" data-testid="result">
          <h2 id="result-title">Your short link</h2>
          <p class="short-url">
            <a href={created.shortUrl} data-testid="short-url" target="_blank" rel="noopener noreferrer">
              {created.shortUrl}
            </a>{' '}
            <CopyButton text={created.shortUrl} label={`Copy ${created.shortUrl}`} />
          </p>
          <p class="muted target">
            Goes to <span class="url">{created.url}</span>
          </p>
          <QrCode code={created.code} />
          <p>
            <a href={`/analytics?code=${encodeURIComponent(created.code)}`} onClick={onLinkClick}>
              See its clicks
            </a>
          </p>
        </section>
      )}
    </main>
  );
}
