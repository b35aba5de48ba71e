// The rules scenario: hot redirects of links with five redirect rules (the last one matching) against
// the same links without rules, two Hops alternating closed-loop probes in one run (target 0.9x), and
// what one password check costs (scrypt, the work a wrong or right guess makes the server do).
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hashPassword, verifyPassword } from '../../src/links/link-password.ts';
import { importLinks } from '../lib/hop-process.ts';
import { linkUrl, randomApiKey } from '../lib/links.ts';
import { fmtInt, fmtRatio, newReport, runsTable, type ScenarioReport } from '../lib/report.ts';
import {
  alternateProbes,
  type BenchContext,
  best,
  Cleanup,
  checkRedirect,
  type Sut,
  seedLinksFile,
  startHopSut,
  touchEveryLink,
  warmServer,
} from './common.ts';
import { redirectRequests } from './redirect.ts';

export interface RulesOptions {
  links: number;
  probeS: number;
  rounds: number;
}

// Four rules that ask something of the request and do not match, then one that does.
const FIVE_RULES = [
  { url: 'https://example.org/ios', conditions: [{ type: 'device', value: 'ios' }] },
  { url: 'https://example.org/fr', conditions: [{ type: 'language', value: 'fr' }] },
  { url: 'https://example.org/campaign', conditions: [{ type: 'query', key: 'utm_source', value: 'x' }] },
  { url: 'https://example.org/office', conditions: [{ type: 'ip', value: '10.0.0.0/8' }] },
  { url: 'https://example.org/ruled', conditions: [{ type: 'after', value: '2000-01-01T00:00:00Z' }] },
];

export async function runRules(ctx: BenchContext, o: RulesOptions): Promise<ScenarioReport> {
  const report = newReport('rules', { links: o.links, dist: 'zipf', probeS: o.probeS, rounds: o.rounds });
  const cleanup = new Cleanup();
  try {
    const { dir, codes, linksFile } = await seedLinksFile(cleanup, o.links);
    const ruledFile = join(dir, 'ruled.jsonl');
    await writeFile(
      ruledFile,
      codes.map((code, i) => `${JSON.stringify({ code, url: linkUrl(i), rules: FIVE_RULES })}\n`).join(''),
    );
    const apiKey = randomApiKey();
    const suts: Sut[] = [];
    for (const [name, file] of [
      ['hop, links without rules', linksFile],
      ['hop, links with 5 rules', ruledFile],
    ] as const) {
      const setup = {
        dataDir: join(dir, name.replace(/\W+/g, '-')),
        apiKey,
        env: ctx.hopEnv,
        verbose: ctx.verbose,
      };
      ctx.log(`importing ${fmtInt(o.links)} links for ${name}`);
      await importLinks(setup, file, o.links);
      const hop = await startHopSut(setup);
      cleanup.add(() => hop.stop());
      suts.push({ ...hop, name });
    }
    const request = redirectRequests(codes, 'zipf');
    for (const [i, sut] of suts.entries()) {
      const problem = await checkRedirect(sut, codes[0]!, i === 0 ? linkUrl(0) : 'https://example.org/ruled');
      if (problem !== null) throw new Error(`${sut.name}: ${problem}`);
      await touchEveryLink(ctx, sut, codes);
      await warmServer(ctx, sut, request);
    }
    const probes = await alternateProbes(ctx, suts, request, o, report);
    const [plain, ruled] = suts.map((s) => best(probes.get(s.name) ?? [])?.achievedRate ?? null);
    const cost = await passwordCost();
    report.tables.push({
      title: 'Hot redirects with and without rules, closed-loop, alternating in one run',
      head: ['links', 'redirects/s (best)', 'ratio'],
      rows: [
        [suts[0]!.name, fmtInt(plain ?? 0), '1.00x'],
        [suts[1]!.name, fmtInt(ruled ?? 0), plain && ruled ? fmtRatio(ruled, plain) : '-'],
      ],
      align: 'lrr',
      note:
        'Zipf over the links, every link in the in-process cache, click recording on. Each rule link has ' +
        'five rules (device, language, query, ip, after) and only the fifth matches, so every redirect ' +
        'evaluates all five. Target: with rules >= 0.9x without.',
    });
    report.tables.push({
      title: 'One password check (scrypt N=2^14, r=8, p=1), on this machine',
      head: ['checks', 'mean ms', 'checks/s on one core'],
      rows: [[fmtInt(cost.n), cost.meanMs.toFixed(1), fmtInt(1000 / cost.meanMs)]],
      align: 'rrr',
      note:
        'What a right or wrong X-Link-Password or form post costs the server (on libuv threads, off the ' +
        'event loop); attempts are limited to 5 at once and one per 10 s per client address and link.',
    });
    report.tables.push(runsTable(report.runs));
    report.data = { plain, ruled, ratio: plain && ruled ? ruled / plain : null, passwordMs: cost.meanMs };
  } finally {
    await cleanup.run();
  }
  return report;
}

async function passwordCost(): Promise<{ n: number; meanMs: number }> {
  const hash = await hashPassword('correct horse battery staple');
  const n = 20;
  const t0 = performance.now();
  for (let i = 0; i < n; i++)
    await verifyPassword(i % 2 === 0 ? 'wrong guess' : 'correct horse battery staple', hash);
  return { n, meanMs: (performance.now() - t0) / n };
}
