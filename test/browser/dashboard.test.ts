// The dashboard end to end in Debian's Chromium: sign in, shorten, search, follow the short
// link, watch the click arrive, edit, delete; domains, links on them with a password, a fallback
// URL and crawlable, redirect rules (edit, preview, save), clicks by rule and orphan visits — plus
// escaping, CSP, accessibility (axe) and screenshots at desktop and phone widths (written to
// test-artifacts/).
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { ensureWebBuilt } from '../../scripts/build-web.ts';
import { ARTIFACTS, type LiveHop, launchBrowser, startLiveHop, startTargetSite } from './browser-support.ts';

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const ALIAS = 'docs-e2e';
const HOSTILE = '<img src=x onerror=alert(1)>';
const DOMAIN = 'go.e2e.test';
const RULES_ALIAS = 'ab-rules';
/** A person's desktop browser: the default fetch user agent may count as a bot, and stats leave bots out. */
const DESKTOP_UA =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36';
const ANDROID_UA =
  'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36';

let hop: LiveHop;
let target: Awaited<ReturnType<typeof startTargetSite>>;
let browser: Awaited<ReturnType<typeof launchBrowser>>;
let context: BrowserContext;
let page: Page;
const cspViolations: string[] = [];
const dialogs: string[] = [];

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function heading(p: Page = page): Promise<string> {
  return (await p.locator('main h1').first().textContent({ timeout: 5000 })) ?? '';
}

async function goToPage(label: string) {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: label }).click();
}

async function searchLinks(text: string) {
  if (new URL(page.url()).pathname !== '/links') await goToPage('Links');
  await page.getByLabel('Search', { exact: true }).fill(text);
}

function watch(p: Page) {
  p.on('console', (m) => {
    if (/Content.Security.Policy/i.test(m.text())) cspViolations.push(m.text());
  });
  p.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
}

/** The API as the test's key sees it (not the browser's session). */
async function apiJson<T = Record<string, unknown>>(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: T }> {
  const res = await fetch(`${hop.url}/api/v1${path}`, {
    method,
    headers: {
      authorization: `Bearer ${hop.key}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, json: (res.status === 204 ? null : await res.json()) as T };
}

/** axe's violations on the page as it stands ("rule: targets"). */
async function axeViolations(p: Page = page): Promise<string[]> {
  // Evaluated through the DevTools protocol, so the page's CSP (no inline script) still holds.
  await p.evaluate(AXE_SOURCE);
  return (await p.evaluate(
    `axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'wcag21aa', 'best-practice'] }).then(r => r.violations.map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', ')))`,
  )) as string[];
}

async function openInNewPage(url: string): Promise<Page> {
  const p = await context.newPage();
  watch(p);
  await p.goto(url);
  return p;
}

describe('the dashboard in a browser', { timeout: 180_000 }, () => {
  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    await ensureWebBuilt();
    target = await startTargetSite();
    hop = await startLiveHop();
    browser = await launchBrowser();
    context = browser.context;
    page = context.pages()[0] ?? (await context.newPage());
    watch(page);
  });
  after(async () => {
    await browser?.close();
    await hop?.close();
    await target?.close();
  });

  test('signs in with an API key from the keyboard; the key is kept nowhere in the browser', async () => {
    await page.goto(`${hop.url}/`);
    assert.equal(await heading(), 'Sign in to Hop');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate('document.activeElement.textContent'), 'Skip to content');
    await page.getByLabel('API key').focus();
    await page.keyboard.type(hop.key);
    await page.keyboard.press('Enter');
    await until('the shorten page', async () => (await heading()) === 'Shorten a link');
    const storage = await page.evaluate(
      'JSON.stringify([localStorage.length, sessionStorage.length, document.cookie])',
    );
    assert.equal(storage, JSON.stringify([0, 0, '']), 'nothing readable by scripts');
    const [cookie] = await context.cookies(hop.url);
    assert.equal(cookie?.name, 'hop_session');
    assert.equal(cookie?.httpOnly, true);
    assert.equal(cookie?.sameSite, 'Strict');
    assert.ok((cookie?.expires ?? 0) > Date.now() / 1000, 'the cookie expires');
    assert.ok(!cookie?.value.includes(hop.key));
  });

  test('shows an API validation error next to the field it concerns', async () => {
    await page.getByLabel('Long URL').fill(`${target.url}/a`);
    await page.getByLabel('Alias (optional)').fill('api');
    await page.getByRole('button', { name: 'Shorten' }).click();
    const error = page.locator('[data-field-error="new-alias"]');
    await error.waitFor({ timeout: 5000 });
    assert.match((await error.textContent()) ?? '', /reserved/);
    assert.equal(await page.getByLabel('Alias (optional)').getAttribute('aria-invalid'), 'true');
  });

  test('creates a link with an alias and tags, with its short URL and QR code', async () => {
    await page.getByLabel('Alias (optional)').fill(ALIAS);
    await page.getByLabel('Tags (optional)').fill('e2e, docs');
    await page.getByLabel('Title (optional)').fill('End-to-end docs');
    await page.getByRole('button', { name: 'Shorten' }).click();
    const short = page.getByTestId('short-url');
    await short.waitFor({ timeout: 5000 });
    assert.equal(await short.textContent(), `${hop.url}/${ALIAS}`);
    assert.equal(await page.locator('[data-field-error]').count(), 0, 'the error is gone');
    await page.getByRole('button', { name: `Copy ${hop.url}/${ALIAS}` }).waitFor();
    const qr = page.getByRole('img', { name: `QR code for the short link ${ALIAS}` });
    await qr.waitFor();
    await until(
      'the QR code to load',
      async () => (await page.evaluate("document.querySelector('.qr img').naturalWidth")) === 256,
    );
    assert.equal(
      await page.getByRole('link', { name: 'PNG' }).getAttribute('href'),
      `/api/v1/links/${ALIAS}/qr?format=png&download=true`,
    );
  });

  test('finds it by search, with its tags, clicks and status', async () => {
    await searchLinks('e2e');
    const row = page.locator(`tr[data-code="${ALIAS}"]`);
    await row.waitFor({ timeout: 5000 });
    const text = (await row.textContent()) ?? '';
    for (const part of ['e2e', 'docs', 'End-to-end docs', `${target.url}/a`, 'Active'])
      assert.ok(text.includes(part), part);
    await searchLinks('no-such-link-anywhere');
    await page.getByText('No links match.').waitFor({ timeout: 5000 });
  });

  test('the short URL lands on the target; the click shows on the analytics page and live feed within 3 s', async (t) => {
    await searchLinks(ALIAS);
    await page.getByRole('link', { name: `Analytics for ${ALIAS}` }).click();
    await until('the analytics page', async () => (await heading()) === `Analytics: ${ALIAS}`);
    await page.locator('.pill-live').waitFor({ timeout: 5000 });

    const clickedAt = Date.now();
    const visitor = await openInNewPage(`${hop.url}/${ALIAS}`);
    assert.equal(visitor.url(), `${target.url}/a`);
    assert.equal(await visitor.locator('h1').textContent(), 'Target a');
    await visitor.close();

    await page.locator('[data-testid="feed"] li', { hasText: ALIAS }).first().waitFor({ timeout: 3000 });
    const feedMs = Date.now() - clickedAt;
    await until(
      'the click in the totals',
      async () => (await page.getByTestId('total-clicks').textContent()) === '1',
      3000 - feedMs,
    );
    t.diagnostic(`live feed after ${feedMs} ms, totals after ${Date.now() - clickedAt} ms`);
  });

  test('editing its target changes where the short URL goes', async () => {
    await searchLinks(ALIAS);
    const row = page.locator(`tr[data-code="${ALIAS}"]`);
    await row.getByRole('button', { name: `Edit ${ALIAS}` }).click();
    const url = page.locator(`#edit-${ALIAS}-url`);
    await url.fill(`${target.url}/b`);
    await page.getByRole('button', { name: 'Save changes' }).click();
    await until('the row to show the new target', async () =>
      ((await row.textContent()) ?? '').includes(`${target.url}/b`),
    );
    const visitor = await openInNewPage(`${hop.url}/${ALIAS}`);
    assert.equal(visitor.url(), `${target.url}/b`);
    await visitor.close();
  });

  test('disables and enables it in place', async () => {
    const row = page.locator(`tr[data-code="${ALIAS}"]`);
    await row.getByRole('button', { name: `Disable ${ALIAS}` }).click();
    await until(
      'the Disabled status',
      async () => ((await row.locator('.status').textContent()) ?? '') === 'Disabled',
    );
    assert.equal((await fetch(`${hop.url}/${ALIAS}`, { redirect: 'manual' })).status, 410);
    await row.getByRole('button', { name: `Enable ${ALIAS}` }).click();
    await until(
      'the Active status',
      async () => ((await row.locator('.status').textContent()) ?? '') === 'Active',
    );
  });

  test('filters by tag and loads more pages on request', async () => {
    for (let i = 0; i < 30; i++) {
      const res = await fetch(`${hop.url}/api/v1/links`, {
        method: 'POST',
        headers: { authorization: `Bearer ${hop.key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ url: `${target.url}/bulk-${i}`, tags: ['bulk'] }),
      });
      assert.equal(res.status, 201);
    }
    await searchLinks('');
    await page.getByLabel('Tag', { exact: true }).fill('bulk');
    await until('the first page of 25', async () => (await page.locator('tr[data-code]').count()) === 25);
    await page.getByRole('button', { name: 'Load more' }).click();
    await until('all 30 bulk links', async () => (await page.locator('tr[data-code]').count()) === 30);
    assert.equal(await page.getByRole('button', { name: 'Load more' }).count(), 0, 'nothing more to load');
    await page.getByLabel('Tag', { exact: true }).fill('');
  });

  test('a hostile title renders as text, never as markup', async () => {
    const res = await fetch(`${hop.url}/api/v1/links`, {
      method: 'POST',
      headers: { authorization: `Bearer ${hop.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        url: `${target.url}/x`,
        alias: 'hostile-title',
        title: HOSTILE,
        tags: [HOSTILE],
      }),
    });
    assert.equal(res.status, 201);
    await searchLinks('hostile');
    const row = page.locator('tr[data-code="hostile-title"]');
    await row.waitFor({ timeout: 5000 });
    assert.equal(await row.locator('.title').textContent(), HOSTILE);
    assert.equal(await row.locator('img').count(), 0);
    assert.deepEqual(dialogs, []);
  });

  test('deletes it after a confirmation; the short URL then answers 404', async () => {
    await searchLinks(ALIAS);
    const row = page.locator(`tr[data-code="${ALIAS}"]`);
    await row.getByRole('button', { name: `Delete ${ALIAS}` }).click();
    const confirm = page.getByRole('button', { name: `Yes, delete ${ALIAS}` });
    await until(
      'focus on the confirmation',
      async () => (await page.evaluate('document.activeElement.textContent')) === `Yes, delete ${ALIAS}`,
      2000,
    );
    await confirm.click();
    await row.waitFor({ state: 'detached', timeout: 5000 });
    assert.equal((await fetch(`${hop.url}/${ALIAS}`, { redirect: 'manual' })).status, 404);
  });

  test('the Domains page adds a domain, lists it, edits its redirects and shows errors by their field', async () => {
    await goToPage('Domains');
    await until('the domains page', async () => (await heading()) === 'Domains');
    const defaultRow = page.locator('tr[data-host="127.0.0.1"]');
    await defaultRow.waitFor({ timeout: 5000 });
    assert.match((await defaultRow.textContent()) ?? '', /Default/);
    assert.equal(await defaultRow.getByRole('button', { name: /^Delete/ }).count(), 0, 'the default stays');

    await page.getByLabel('Host', { exact: true }).fill('not a host');
    await page.getByRole('button', { name: 'Add domain' }).click();
    const hostError = page.locator('[data-field-error="new-domain-host"]');
    await hostError.waitFor({ timeout: 5000 });
    assert.match((await hostError.textContent()) ?? '', /host name/);

    await page.getByLabel('Host', { exact: true }).fill(DOMAIN);
    await page.getByLabel('Root redirect (optional)').fill('not a url');
    await page.getByRole('button', { name: 'Add domain' }).click();
    const rootError = page.locator('[data-field-error="new-domain-rootRedirect"]');
    await rootError.waitFor({ timeout: 5000 });
    assert.equal(await page.getByLabel('Root redirect (optional)').getAttribute('aria-invalid'), 'true');

    await page.getByLabel('Root redirect (optional)').fill(`${target.url}/welcome`);
    await page.getByRole('button', { name: 'Add domain' }).click();
    const row = page.locator(`tr[data-host="${DOMAIN}"]`);
    await row.waitFor({ timeout: 5000 });
    assert.match((await row.textContent()) ?? '', new RegExp(`${target.url}/welcome`));
    assert.equal(await page.getByLabel('Host', { exact: true }).inputValue(), '', 'the form is cleared');

    await page.getByLabel('Host', { exact: true }).fill(DOMAIN);
    await page.getByRole('button', { name: 'Add domain' }).click();
    await until('the domain_exists error by the host', async () =>
      /registered already/.test((await hostError.textContent({ timeout: 500 }).catch(() => '')) ?? ''),
    );
    await page.getByLabel('Host', { exact: true }).fill('');

    await row.getByRole('button', { name: `Edit ${DOMAIN}` }).click();
    const idBase = DOMAIN.replaceAll('.', '_');
    await page.locator(`#edit-domain-${idBase}-notFoundRedirect`).fill(`${target.url}/missing`);
    await page.locator(`#edit-domain-${idBase}-rootRedirect`).fill('');
    await page.getByRole('button', { name: 'Save redirects' }).click();
    await until('the row to show the new redirect', async () =>
      ((await row.textContent()) ?? '').includes(`${target.url}/missing`),
    );
    const { json } = await apiJson<{ items: Record<string, unknown>[] }>('GET', '/domains');
    const saved = json.items.find((d) => d.host === DOMAIN);
    assert.equal(saved?.notFoundRedirect, `${target.url}/missing`);
    assert.equal(saved?.rootRedirect, null, 'an emptied redirect is cleared');
    assert.deepEqual(
      json.items.map((d) => d.host),
      ['127.0.0.1', DOMAIN],
    );
  });

  test('the shorten form makes a link on that domain with a password, a fallback URL and crawlable', async () => {
    await goToPage('Shorten');
    await until('the shorten page', async () => (await heading()) === 'Shorten a link');
    const domainSelect = page.getByLabel('Domain', { exact: true });
    await until('the domain choices', async () => (await domainSelect.locator('option').count()) === 2);
    assert.equal(await domainSelect.inputValue(), '', 'the default domain is preselected');
    await domainSelect.selectOption(DOMAIN);
    await page.getByLabel('Long URL').fill(`${target.url}/members`);
    await page.getByLabel('Alias (optional)').fill('on-domain');
    await page.getByLabel('Password (optional)').fill('open sesame');
    await page.getByLabel('Fallback URL (optional)').fill(`${target.url}/over`);
    await page.getByLabel('Let search engines follow it (listed in robots.txt)').check();
    await page.getByRole('button', { name: 'Shorten' }).click();
    const short = page.getByTestId('short-url');
    await until(
      'the new short URL',
      async () =>
        (await short.textContent({ timeout: 500 }).catch(() => '')) === `http://${DOMAIN}/on-domain`,
    );
    assert.equal(
      await page.getByRole('link', { name: 'PNG' }).getAttribute('href'),
      `/api/v1/links/on-domain/qr?format=png&download=true&domain=${DOMAIN}`,
    );
    assert.equal(
      await page.getByRole('link', { name: 'See its clicks' }).getAttribute('href'),
      `/analytics?code=on-domain&domain=${DOMAIN}`,
    );

    const { status, json: link } = await apiJson('GET', `/links/on-domain?domain=${DOMAIN}`);
    assert.equal(status, 200);
    assert.equal(link.domain, DOMAIN);
    assert.equal(link.passwordProtected, true);
    assert.equal(link.expiredUrl, `${target.url}/over`);
    assert.equal(link.crawlable, true);
    assert.equal('password' in link, false, 'the password is never shown');
    assert.equal((await apiJson('GET', '/links/on-domain')).status, 404, 'not on the default domain');

    // In the list: its host and a password marker; editing it names its domain to the API.
    await searchLinks('on-domain');
    const row = page.locator(`tr[data-code="on-domain"][data-domain="${DOMAIN}"]`);
    await row.waitFor({ timeout: 5000 });
    assert.match((await row.textContent()) ?? '', new RegExp(DOMAIN.replaceAll('.', '\\.')));
    assert.equal(await row.locator('.marker-password').textContent(), 'password');
    await row.getByRole('button', { name: 'Edit on-domain' }).click();
    const prefix = `#edit-${DOMAIN.replaceAll('.', '_')}-on-domain`;
    assert.equal(await page.locator(`${prefix}-expiredUrl`).inputValue(), `${target.url}/over`);
    assert.equal(await page.locator(`${prefix}-crawlable`).isChecked(), true);
    await page.getByLabel('Remove the password').check();
    await page.getByRole('button', { name: 'Save changes' }).click();
    await until(
      'the password marker to go',
      async () => (await row.locator('.marker-password').count()) === 0,
    );
    assert.equal((await apiJson('GET', `/links/on-domain?domain=${DOMAIN}`)).json.passwordProtected, false);

    // A domain with links cannot be removed: the problem's detail says why.
    await goToPage('Domains');
    const domainRow = page.locator(`tr[data-host="${DOMAIN}"]`);
    await domainRow.getByRole('button', { name: `Delete ${DOMAIN}` }).click();
    await page.getByRole('button', { name: `Yes, remove ${DOMAIN}` }).click();
    const alert = page.locator('.row-panel [role="alert"]');
    await alert.waitFor({ timeout: 5000 });
    assert.match((await alert.textContent()) ?? '', /still has links/);
  });

  test('the rules editor adds, checks, previews, reorders and saves redirect rules', async () => {
    assert.equal(
      (await apiJson('POST', '/links', { url: `${target.url}/own`, alias: RULES_ALIAS })).status,
      201,
    );
    await searchLinks(RULES_ALIAS);
    const row = page.locator(`tr[data-code="${RULES_ALIAS}"]`);
    await row.getByRole('button', { name: `Rules for ${RULES_ALIAS}` }).click();
    await page.getByText("No rules: every visitor goes to the link's URL.").waitFor({ timeout: 5000 });
    const id = (part: string) => page.locator(`#rules-${RULES_ALIAS}-${part}`);

    await page.getByRole('button', { name: 'Add rule' }).click();
    await until(
      'focus on the new rule',
      async () => (await page.evaluate('document.activeElement.id')) === `rules-${RULES_ALIAS}-r0-url`,
    );
    await id('r0-url').fill(`${target.url}/android`);
    await id('r0-c0-value').selectOption('android');

    await page.getByRole('button', { name: 'Add rule' }).click();
    await id('r1-url').fill(`${target.url}/fr`);
    await id('r1-c0-type').selectOption('language');
    await id('r1-c0-value').fill('fr!');
    await page.getByRole('button', { name: 'Add condition to rule 2' }).click();
    await id('r1-c1-type').selectOption('query');
    await id('r1-c1-key').fill('utm_source');

    // The API's error lands by the condition it names.
    await page.getByRole('button', { name: 'Save rules' }).click();
    const valueError = page.locator(`[data-field-error="rules-${RULES_ALIAS}-r1-c0-value"]`);
    await valueError.waitFor({ timeout: 5000 });
    assert.match((await valueError.textContent()) ?? '', /language tag/);
    assert.equal(await id('r1-c0-value').getAttribute('aria-invalid'), 'true');
    await id('r1-c0-value').fill('fr');

    // The preview tries the unsaved rules on a described visitor.
    const outcome = page.getByTestId('preview-outcome');
    await id('pv-agent').selectOption({ label: 'iPhone Safari' });
    await id('pv-language').fill('fr');
    await id('pv-query').fill('?utm_source=x');
    await page.getByRole('button', { name: 'Preview' }).click();
    await until('the preview sentence', async () => ((await outcome.textContent()) ?? '') !== '');
    assert.equal(
      await outcome.textContent(),
      `A French iPhone visitor from ?utm_source=x goes to ${target.url}/fr (rule 2).`,
    );
    await id('pv-agent').selectOption({ label: 'Android Chrome' });
    await page.getByRole('button', { name: 'Preview' }).click();
    await until('the Android sentence', async () => /rule 1\)\.$/.test((await outcome.textContent()) ?? ''));
    assert.equal(
      await outcome.textContent(),
      `A French Android visitor from ?utm_source=x goes to ${target.url}/android (rule 1).`,
    );

    // Reordered: the French rule first; the Android visitor now matches it.
    await page.getByRole('button', { name: 'Move up rule 2' }).click();
    assert.equal(await id('r0-url').inputValue(), `${target.url}/fr`);
    await page.getByRole('button', { name: 'Preview' }).click();
    await until('the reordered sentence', async () =>
      ((await outcome.textContent()) ?? '').endsWith(`goes to ${target.url}/fr (rule 1).`),
    );

    // No axe findings in the open editor either.
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-rules-editor-desktop.png'), fullPage: true });
    assert.deepEqual(await axeViolations(), []);

    await page.getByRole('button', { name: 'Save rules' }).click();
    await page.getByText('Saved 2 rules.').waitFor({ timeout: 5000 });
    assert.equal(await row.locator('.marker-rules').textContent(), 'rules');
    const { json } = await apiJson('GET', `/links/${RULES_ALIAS}/rules`);
    assert.deepEqual(json.rules, [
      {
        url: `${target.url}/fr`,
        conditions: [
          { type: 'language', value: 'fr' },
          { type: 'query', key: 'utm_source' },
        ],
      },
      { url: `${target.url}/android`, conditions: [{ type: 'device', value: 'android' }] },
    ]);
    await page.getByRole('button', { name: 'Close' }).click();
  });

  test("a link's analytics page shows its clicks by rule, each rule with its target", async () => {
    const visit = async (headers: Record<string, string>, query = '') => {
      const res = await fetch(`${hop.url}/${RULES_ALIAS}${query}`, { redirect: 'manual', headers });
      return new URL(res.headers.get('location') ?? '').pathname;
    };
    assert.equal(
      await visit({ 'user-agent': DESKTOP_UA, 'accept-language': 'fr-FR,fr;q=0.9' }, '?utm_source=x'),
      '/fr',
    );
    assert.equal(await visit({ 'user-agent': ANDROID_UA }), '/android');
    assert.equal(await visit({ 'user-agent': ANDROID_UA }), '/android');
    assert.equal(await visit({ 'user-agent': DESKTOP_UA }), '/own');
    await until(
      'the clicks by rule in the stats',
      async () => {
        const { json } = await apiJson<{ rules?: { clicks: number }[] }>(
          'GET',
          `/links/${RULES_ALIAS}/stats`,
        );
        return (json.rules ?? []).reduce((n, r) => n + r.clicks, 0) === 4;
      },
      5000,
    );
    await searchLinks(RULES_ALIAS);
    await page.getByRole('link', { name: `Analytics for ${RULES_ALIAS}` }).click();
    await until('the analytics page', async () => (await heading()) === `Analytics: ${RULES_ALIAS}`);
    const byRule = page.getByRole('region', { name: 'Clicks by rule' });
    await byRule.waitFor({ timeout: 5000 });
    await until('the rule targets', async () =>
      ((await byRule.textContent()) ?? '').includes(`Rule 1: ${target.url}/fr`),
    );
    const items = (await byRule.locator('li').allTextContents()).map((t) => t.replace(/\s+/g, ' '));
    assert.deepEqual(items, [
      `Rule 1: ${target.url}/fr1`,
      `Rule 2: ${target.url}/android2`,
      `No rule matched: ${target.url}/own1`,
    ]);
    assert.equal(await page.getByTestId('orphans').count(), 0, 'orphans are for all links');
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-analytics-rules-desktop.png'), fullPage: true });
  });

  test('the all-links analytics page shows the visits that found no link', async () => {
    for (const path of ['/no-such-code-1', '/no-such-code-1', '/no-such-code-2', '/no/such/page']) {
      const res = await fetch(`${hop.url}${path}`, {
        redirect: 'manual',
        headers: { 'user-agent': DESKTOP_UA },
      });
      assert.equal(res.status, 404, path);
    }
    await goToPage('Analytics');
    await until('the all-links page', async () => (await heading()) === 'Analytics: all links');
    assert.equal(await page.getByRole('region', { name: 'Clicks by rule' }).count(), 0);
    const orphans = page.getByTestId('orphans');
    await orphans.getByRole('heading', { name: 'Visits that found no link' }).waitFor({ timeout: 5000 });
    await until(
      'the orphan total',
      async () => (await page.getByTestId('orphan-total').textContent()) === '4',
    );
    const kinds = orphans.getByRole('region', { name: 'By kind' });
    assert.match((await kinds.textContent()) ?? '', /Unknown code3/);
    assert.match((await kinds.textContent()) ?? '', /Other paths1/);
    const paths = (
      await orphans.getByRole('region', { name: 'Top paths' }).locator('li').allTextContents()
    ).join(' | ');
    assert.match(paths, /\/no-such-code-12/);
    assert.match(paths, /\/no\/such\/page1/);
    // One domain's: none arrived on the other domain.
    await orphans.getByLabel('Domain').selectOption(DOMAIN);
    await until(
      'the domain filter',
      async () => (await page.getByTestId('orphan-total').textContent()) === '0',
    );
    await orphans.getByLabel('Domain').selectOption('');
    await until(
      'all domains again',
      async () => (await page.getByTestId('orphan-total').textContent()) === '4',
    );
  });

  test('the system page draws request rate, p99, cache and click queue as named charts', async () => {
    await goToPage('System');
    await until('the system page', async () => (await heading()) === 'System');
    // Redirects meanwhile, so there is a rate, cache lookups and clicks to draw.
    const traffic = setInterval(() => {
      fetch(`${hop.url}/hostile-title`, { redirect: 'manual' }).catch(() => {});
    }, 100);
    try {
      const rate = page.getByRole('img', { name: /^Requests per second/ });
      await rate.waitFor({ timeout: 5000 });
      await until(
        'three samples on the request-rate line',
        async () => {
          const d = await rate
            .locator('path.line')
            .getAttribute('d', { timeout: 500 })
            .catch(() => null);
          return (d ?? '').split('L').length >= 3;
        },
        8000,
      );
      assert.match((await rate.getAttribute('aria-label')) ?? '', /requests per second now \d/);
      for (const name of [/^API latency p99/, /^Cache hit ratio/, /^Clicks waiting/, /^Clicks written/])
        await page.getByRole('img', { name }).waitFor({ timeout: 1000 });
      for (const part of ['Store pool', 'Replica lag', 'Shards'])
        assert.match(
          (await page.getByRole('region', { name: part, exact: true }).textContent()) ?? '',
          /Not in use/,
        );
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-system-charts-desktop.png'), fullPage: true });
      await page.setViewportSize({ width: 390, height: 844 });
      await page.waitForTimeout(300); // the charts redraw for the new width on the next frame
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-system-charts-phone.png'), fullPage: true });
    } finally {
      clearInterval(traffic);
      await page.setViewportSize({ width: 1280, height: 800 });
    }
  });

  test('every page passes axe at desktop and phone widths; screenshots are written', async () => {
    const pages = [
      { name: 'shorten', nav: 'Shorten', title: 'Shorten a link' },
      { name: 'links', nav: 'Links', title: 'Links' },
      { name: 'analytics', nav: 'Analytics', title: 'Analytics: all links' },
      { name: 'domains', nav: 'Domains', title: 'Domains' },
      { name: 'system', nav: 'System', title: 'System' },
    ];
    const problems: string[] = [];
    for (const size of [
      { label: 'desktop', width: 1280, height: 800 },
      { label: 'phone', width: 390, height: 844 },
    ]) {
      await page.setViewportSize({ width: size.width, height: size.height });
      for (const p of pages) {
        await goToPage(p.nav);
        await until(`the ${p.name} page`, async () => (await heading()) === p.title);
        await page.waitForLoadState('networkidle').catch(() => {});
        if (p.name === 'links') await page.locator('tr[data-code]').first().waitFor({ timeout: 5000 });
        if (p.name === 'analytics') await page.getByTestId('orphan-total').waitFor({ timeout: 5000 });
        if (p.name === 'domains') await page.locator(`tr[data-host="${DOMAIN}"]`).waitFor({ timeout: 5000 });
        if (p.name === 'system') {
          await page.locator('.tile').first().waitFor({ timeout: 5000 });
          await until(
            'a request rate',
            async () => (await page.locator('.tile .big').first().textContent()) !== '…',
          );
        }
        await page.screenshot({
          path: join(ARTIFACTS, `dashboard-${p.name}-${size.label}.png`),
          fullPage: true,
        });
        for (const v of await axeViolations()) problems.push(`${p.name} (${size.label}) ${v}`);
      }
    }
    assert.deepEqual(problems, []);
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  test('signs out: the cookie is gone and the API refuses the old session', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await until('the sign-in page', async () => (await heading()) === 'Sign in to Hop');
    assert.deepEqual(await context.cookies(hop.url), []);
    assert.equal(await page.evaluate("fetch('/api/v1/links').then(r => r.status)"), 401);
  });

  test('the sign-in page passes axe too (screenshot at phone width)', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${hop.url}/`);
    assert.equal(await heading(), 'Sign in to Hop');
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-signin-phone.png'), fullPage: true });
    await page.evaluate(AXE_SOURCE);
    assert.deepEqual(await page.evaluate('axe.run().then(r => r.violations.map(v => v.id))'), []);
  });

  test('the pages raised no Content-Security-Policy violation', () => {
    assert.deepEqual(cspViolations, []);
  });
});
