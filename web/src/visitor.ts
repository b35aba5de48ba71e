// A described visitor for the rules preview: a few browsers to pretend to be, and the sentence that
// says where such a visitor goes ("A French iPhone visitor from ?utm_source=x goes to … (rule 2)").

export const AGENT_PRESETS = [
  { id: 'none', label: 'Not given', who: '', userAgent: '' },
  {
    id: 'iphone',
    label: 'iPhone Safari',
    who: 'iPhone',
    userAgent:
      'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  },
  {
    id: 'android',
    label: 'Android Chrome',
    who: 'Android',
    userAgent:
      'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36',
  },
  {
    id: 'windows',
    label: 'Windows Chrome',
    who: 'Windows',
    userAgent:
      'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36',
  },
  {
    id: 'mac',
    label: 'Mac Safari',
    who: 'Mac',
    userAgent:
      'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15',
  },
  {
    id: 'linux',
    label: 'Linux Firefox',
    who: 'Linux',
    userAgent: 'Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0',
  },
] as const;

export type AgentPreset = (typeof AGENT_PRESETS)[number];

export interface VisitorForm {
  agent: AgentPreset['id'];
  language: string;
  country: string;
  query: string;
  ip: string;
  bucket: string;
}

export const emptyVisitor: VisitorForm = {
  agent: 'iphone',
  language: '',
  country: '',
  query: '',
  ip: '',
  bucket: '',
};

const presetOf = (id: string): AgentPreset => AGENT_PRESETS.find((p) => p.id === id) ?? AGENT_PRESETS[0];

/** The preview request's `visitor`: only what is given. */
export function visitorBody(v: VisitorForm): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const ua = presetOf(v.agent).userAgent;
  if (ua !== '') out.userAgent = ua;
  if (v.language.trim() !== '') out.acceptLanguage = v.language.trim();
  if (v.country.trim() !== '') out.country = v.country.trim();
  if (v.query.trim() !== '') out.query = v.query.trim().replace(/^\?/, '');
  if (v.ip.trim() !== '') out.ip = v.ip.trim();
  if (v.bucket.trim() !== '') out.bucket = Number(v.bucket);
  return out;
}

function displayName(type: 'language' | 'region', code: string): string {
  try {
    return new Intl.DisplayNames(['en'], { type }).of(code) ?? code;
  } catch {
    return code;
  }
}

/** "A French iPhone visitor in France at 203.0.113.9 from ?utm_source=x goes to https://… (rule 2)." */
export function describeOutcome(v: VisitorForm, url: string, rule: number): string {
  const lang = v.language.trim().split(/[,;]/)[0]?.split('-')[0] ?? '';
  const words = [lang === '' ? '' : displayName('language', lang), presetOf(v.agent).who, 'visitor']
    .filter((w) => w !== '')
    .join(' ');
  const article = /^[aeiou]/i.test(words) ? 'An' : 'A';
  const country = v.country.trim().toUpperCase();
  const query = v.query.trim().replace(/^\?/, '');
  const parts = [
    `${article} ${words}`,
    country === '' ? '' : ` in ${displayName('region', country)}`,
    v.ip.trim() === '' ? '' : ` at ${v.ip.trim()}`,
    query === '' ? '' : ` from ?${query}`,
    v.bucket.trim() === '' ? '' : ` in sample bucket ${Number(v.bucket)}`,
    ` goes to ${url}`,
    rule === 0 ? " (no rule matched: the link's own URL)." : ` (rule ${rule}).`,
  ];
  return parts.join('');
}
