// Rewrites the configuration table in README.md from the settings schema (src/config.ts), so the
// two never drift: `node --import tsx scripts/readme-config-table.ts`. A unit test checks them.
import { readFileSync, writeFileSync } from 'node:fs';
import { SETTINGS } from '../src/config.ts';

const file = new URL('../README.md', import.meta.url);
const readme = readFileSync(file, 'utf8');
const header = '| Environment | Flag | Default | Meaning |\n|---|---|---|---|\n';
const rows = SETTINGS.map(
  (s) => `| \`${s.env}\` | \`--${s.flag}\` | ${s.default === '' ? '—' : `\`${s.default}\``} | ${s.help} |`,
).join('\n');
const start = readme.indexOf(header);
const end = readme.indexOf('\n\n', start);
if (start === -1 || end === -1) throw new Error('README has no configuration table to replace');
writeFileSync(file, `${readme.slice(0, start)}${header}${rows}${readme.slice(end)}`);
