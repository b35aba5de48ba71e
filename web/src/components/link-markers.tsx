// Small markers for what a link does beyond redirecting: a password, redirect rules, a fallback
// URL, crawlable. Text, so they read the same to everyone.
import type { Link } from '../api.ts';

export function LinkMarkers({ link }: { link: Link }) {
  const marks = [
    link.passwordProtected ? 'password' : null,
    link.hasRules ? 'rules' : null,
    link.expiredUrl !== null ? 'fallback' : null,
    link.crawlable ? 'crawlable' : null,
  ].filter((m): m is string => m !== null);
  if (marks.length === 0) return null;
  return (
    <ul class="markers" aria-label="Features">
      {marks.map((m) => (
        <li key={m} class={`marker marker-${m}`}>
          {m}
        </li>
      ))}
    </ul>
  );
}
