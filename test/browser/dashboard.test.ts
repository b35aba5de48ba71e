// The dashboard end to end in Debian's Chromium: sign in, shorten, search, follow the short
// link, watch the click arrive, edit, delete — plus escaping, CSP, accessibility (axe) and
// screenshots at desktop and phone widths (written to test-artifacts/).
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
        // Evaluated through the DevTools protocol, so the page's CSP (no inline script) still holds.
        await page.evaluate(AXE_SOURCE);
        const violations = (await page.evaluate(
          `axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'wcag21aa', 'best-practice'] }).then(r => r.violations.map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', ')))`,
        )) as string[];
        for (const v of violations) problems.push(`${p.name} (${size.label}) ${v}`);
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
