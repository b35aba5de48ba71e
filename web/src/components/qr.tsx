// The short URL's QR code, drawn by the server (the same picture API users get), with downloads.
import { qrUrl } from '../api.ts';

/** `domainQuery`: '' on the default domain, else `domain=<host>` (domains.ts). */
export function QrCode({ code, domainQuery = '' }: { code: string; domainQuery?: string }) {
  return (
    <figure class="qr">
      <img
        src={qrUrl(code, 'svg', false, domainQuery)}
        width={160}
        height={160}
        alt={`QR code for the short link ${code}`}
      />
      <figcaption>
        Download QR: <a href={qrUrl(code, 'svg', true, domainQuery)}>SVG</a> ·{' '}
        <a href={qrUrl(code, 'png', true, domainQuery)}>PNG</a>
      </figcaption>
    </figure>
  );
}
