// The short URL's QR code, drawn by the server (the same picture API users get), with downloads.
import { qrUrl } from '../api.ts';

export function QrCode({ code }: { code: string }) {
  return (
    <figure class="qr">
      <img src={qrUrl(code, 'svg')} width={160} height={160} alt={`QR code for the short link ${code}`} />
      <figcaption>
        Download QR: <a href={qrUrl(code, 'svg', true)}>SVG</a> · <a href={qrUrl(code, 'png', true)}>PNG</a>
      </figcaption>
    </figure>
  );
}
