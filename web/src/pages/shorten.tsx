// Shorten a URL: the result shows the short link, a copy button and its QR code.
import { useState } from 'preact/hooks';
import { api, type Link } from '../api.ts';
import { CopyButton } from '../components/copy-button.tsx';
import { emptyValues, LinkForm } from '../components/link-form.tsx';
import { LinkMarkers } from '../components/link-markers.tsx';
import { QrCode } from '../components/qr.tsx';
import { analyticsHref, defaultHostOf, domainQuery, useDomains } from '../domains.ts';
import { onLinkClick } from '../router.ts';

export function ShortenPage() {
  const [created, setCreated] = useState<Link | null>(null);
  const { domains } = useDomains();
  // The form sends a domain only for a non-default one, so the answer's domain is the default's otherwise.
  const [defaultHost, setDefaultHost] = useState<string | undefined>(undefined);
  return (
    <main id="main">
      <h1 tabIndex={-1}>Shorten a link</h1>
      <section class="card" aria-label="New link">
        <LinkForm
          idPrefix="new"
          mode="create"
          initial={emptyValues}
          submitLabel="Shorten"
          domains={domains}
          onSubmit={async (body) => {
            const link = await api<Link>('POST', '/links', body);
            setDefaultHost(body.domain === undefined ? link.domain : defaultHostOf(domains ?? []));
            setCreated(link);
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
          <LinkMarkers link={created} />
          <QrCode code={created.code} domainQuery={domainQuery(created.domain, defaultHost)} />
          <p>
            <a href={analyticsHref(created.code, created.domain, defaultHost)} onClick={onLinkClick}>
              See its clicks
            </a>
          </p>
        </section>
      )}
    </main>
  );
}
