// Shlink's own web UI against Hop, in Debian's Chromium: the React component shlink-web-client is
// built from (@shlinkio/shlink-web-component), on a page served from another origin, talking to
// Hop's Shlink API through Shlink's JS SDK. It lists, creates, edits and deletes short URLs,
// renames a tag and shows a short URL's visits; each effect is checked through Hop's API too.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Locator, Page } from 'playwright-core';
import { type LiveHop, launchBrowser, startLiveHop } from './browser-support.ts';
import { serveShlinkPage } from './shlink-page/serve-page.ts';

/** Where main.ts mounts the component. */
const PREFIX = '/server/hop';
/** A person's desktop browser, so Hop counts the visits as people's, not bots'. */
const DESKTOP_UA =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36';
/** Every wait on the page is bounded by this, far below node:test's timeout. */
const UI_TIMEOUT = 10_000;

interface ShortUrl {
  shortCode: string;
  shortUrl: string;
  longUrl: string;
  title: string | null;
  tags: string[];
}

let hop: LiveHop;
let site: Awaited<ReturnType<typeof serveShlinkPage>>;
let browser: Awaited<ReturnType<typeof launchBrowser>>;
let page: Page;
const pageErrors: string[] = [];

/** Shlink's API as the test's key sees it, from Node (not through the page). */
async function shlinkApi<T>(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: T }> {
  const res = await fetch(`${hop.url}/rest/v3${path}`, {
    method,
    headers: {
      'x-api-key': hop.key,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, json: (text === '' ? null : JSON.parse(text)) as T };
}

async function shortUrl(code: string): Promise<{ status: number; json: ShortUrl }> {
  return shlinkApi<ShortUrl>('GET', `/short-urls/${code}`);
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = UI_TIMEOUT): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits for a locator to show, and on failure says what the page showed instead. */
async function visible(locator: Locator): Promise<void> {
  try {
    await locator.first().waitFor({ state: 'visible', timeout: UI_TIMEOUT });
  } catch (err) {
    const snapshot = await page
      .locator('body')
      .ariaSnapshot({ timeout: 1000 })
      .catch(() => '');
    throw new Error(`${(err as Error).message}\npage errors: ${pageErrors.join(' | ')}\n${snapshot}`);
  }
}

/** A section of the component, reached through its own menu like a user would. */
async function openSection(name: string): Promise<void> {
  await page.getByRole('complementary').getByRole('link', { name, exact: true }).click();
}

/** A short URL's row in the list (its short URL link is in the row). */
const row = (code: string) =>
  page.getByRole('row').filter({ has: page.getByRole('link', { name: `${hop.url}/${code}`, exact: true }) });

async function rowMenu(code: string, item: string): Promise<void> {
  await row(code).getByRole('button', { name: 'Options' }).click();
  await page.getByRole('menuitem', { name: item, exact: true }).click();
}

describe("Shlink's web component on Hop", { timeout: 90_000 }, () => {
  before(async () => {
    hop = await startLiveHop();
    // The page is built for this Hop (its URL and key go in the bundle) while Chromium starts.
    [site, browser] = await Promise.all([serveShlinkPage(hop), launchBrowser()]);
    page = browser.context.pages()[0] ?? (await browser.context.newPage());
    // Playwright's own default (30 s per action) would outlast a broken step by far.
    page.setDefaultTimeout(UI_TIMEOUT);
    page.on('pageerror', (err) => pageErrors.push(err.message));
    // The page may reach only the two local servers (the component names no CDN, but map tiles or
    // fonts must never be fetched from the internet by a test).
    await browser.context.route(
      (url) => url.hostname !== '127.0.0.1',
      (route) => route.abort(),
    );
    for (const [code, tags] of [
      ['alpha', ['docs']],
      ['beta', ['docs', 'blog']],
      ['gamma', []],
    ] as const) {
      const made = await shlinkApi('POST', '/short-urls', {
        longUrl: `https://example.com/${code}`,
        customSlug: code,
        title: `Title ${code}`,
        tags,
      });
      assert.equal(made.status, 200, JSON.stringify(made.json));
    }
  });
  after(async () => {
    await browser?.close();
    await site?.close();
    await hop?.close();
  });

  test('lists the short URLs Hop has, with titles, tags and the total', async () => {
    await page.goto(`${site.url}${PREFIX}/list-short-urls/1`);
    for (const code of ['alpha', 'beta', 'gamma']) {
      await visible(row(code));
      await visible(row(code).getByRole('link', { name: `Title ${code}` }));
    }
    assert.deepEqual(await row('beta').getByRole('cell').nth(3).getByRole('button').allTextContents(), [
      'docs',
      'blog',
    ]);
    // The export button counts the list's total, which comes from Hop's pagination.
    const listed = await shlinkApi<{ shortUrls: { pagination: { totalItems: number } } }>(
      'GET',
      '/short-urls',
    );
    assert.equal(listed.json.shortUrls.pagination.totalItems, 3);
    await visible(page.getByRole('button', { name: 'Export (3)' }));
    assert.deepEqual(pageErrors, []);
  });

  test('creates a short URL through the form', async () => {
    await openSection('Create short URL');
    await page.getByRole('textbox', { name: 'URL to be shortened' }).fill('https://example.com/made-in-ui');
    await page.getByRole('textbox', { name: 'Title' }).fill('Made in Shlink');
    await page.getByRole('textbox', { name: 'Custom slug' }).fill('made-in-ui');
    await page.getByRole('combobox', { name: 'Add tags to the URL' }).fill('ui');
    await page.keyboard.press('Enter');
    await page.getByRole('button', { name: 'Save' }).click();
    // The result card shows the new short URL, on Hop's host.
    await visible(page.getByText(`${hop.url}/made-in-ui`));
    const made = await shortUrl('made-in-ui');
    assert.equal(made.status, 200);
    assert.equal(made.json.longUrl, 'https://example.com/made-in-ui');
    assert.equal(made.json.title, 'Made in Shlink');
    assert.deepEqual(made.json.tags, ['ui']);
  });

  test('edits a short URL: its long URL and title', async () => {
    await openSection('List short URLs');
    await rowMenu('beta', 'Edit short URL');
    const longUrl = page.getByRole('textbox', { name: 'URL to be shortened' });
    await visible(longUrl);
    // The form is filled from Hop's answer before it is changed.
    await until(
      'the edit form to load beta',
      async () => (await longUrl.inputValue()) === 'https://example.com/beta',
    );
    await longUrl.fill('https://example.com/beta-v2');
    await page.getByRole('textbox', { name: 'Title' }).fill('Beta, edited');
    await page.getByRole('button', { name: 'Save' }).click();
    await visible(page.getByText('Short URL properly edited.'));
    const edited = await shortUrl('beta');
    assert.equal(edited.json.longUrl, 'https://example.com/beta-v2');
    assert.equal(edited.json.title, 'Beta, edited');
    assert.deepEqual(edited.json.tags, ['docs', 'blog'], 'tags the form did not touch stay');
  });

  test('deletes a short URL through its confirmation dialog', async () => {
    await openSection('List short URLs');
    await visible(row('gamma'));
    await rowMenu('gamma', 'Delete short URL');
    const dialog = page.getByRole('dialog');
    await visible(dialog.getByRole('heading', { name: 'Delete short URL' }));
    const confirm = dialog.getByRole('button', { name: 'Delete', exact: true });
    assert.equal(await confirm.isDisabled(), true, 'nothing typed yet');
    // Shlink's dialog asks for a word to be typed (its placeholder) before it deletes.
    const word = (await dialog.getByRole('textbox').getAttribute('placeholder')) ?? 'delete';
    await dialog.getByRole('textbox').fill(word);
    await confirm.click();
    await row('gamma').waitFor({ state: 'detached', timeout: UI_TIMEOUT });
    const gone = await shlinkApi<{ type: string; status: number }>('GET', '/short-urls/gamma');
    assert.equal(gone.status, 404);
    assert.equal(gone.json.type, 'https://shlink.io/api/error/short-url-not-found');
  });

  test('renames a tag on the tags page', async () => {
    await openSection('Manage tags');
    const docs = page.getByRole('row').filter({ has: page.getByRole('cell', { name: 'docs', exact: true }) });
    await visible(docs);
    await docs.getByRole('button', { name: 'Options' }).click();
    await page.getByRole('menuitem', { name: 'Edit', exact: true }).click();
    const dialog = page.getByRole('dialog');
    await visible(dialog.getByRole('heading', { name: 'Edit tag' }));
    await dialog.getByRole('textbox', { name: 'Tag', exact: true }).fill('guides');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await visible(page.getByRole('cell', { name: 'guides', exact: true }));
    await page
      .getByRole('cell', { name: 'docs', exact: true })
      .waitFor({ state: 'detached', timeout: UI_TIMEOUT });
    const tags = await shlinkApi<{ tags: { data: string[] } }>('GET', '/tags');
    assert.deepEqual([...tags.json.tags.data].sort(), ['blog', 'guides', 'ui']);
    assert.deepEqual((await shortUrl('alpha')).json.tags, ['guides']);
    assert.deepEqual((await shortUrl('beta')).json.tags, ['guides', 'blog']);
  });

  test("shows a short URL's visits: the count, the chart and the list", async () => {
    // Three visits from a person's browser, one of them from a search page.
    for (const referer of ['https://search.example/?q=alpha', '', '']) {
      const res = await fetch(`${hop.url}/alpha`, {
        redirect: 'manual',
        headers: { 'user-agent': DESKTOP_UA, ...(referer === '' ? {} : { referer }) },
      });
      assert.equal(res.status, 302);
    }
    // Clicks are written in batches (HOP_CLICK_FLUSH_MS=200); the visit list shows them once written.
    let lastStatus = 0;
    await until('Hop to list the three visits', async () => {
      const visits = await shlinkApi<{ visits?: { data: unknown[] } }>('GET', '/short-urls/alpha/visits');
      lastStatus = visits.status;
      if (visits.status === 404 || visits.status === 501) return true;
      return visits.json.visits?.data.length === 3;
    });
    assert.equal(lastStatus, 200, 'GET /rest/v3/short-urls/{shortCode}/visits answers');

    await openSection('List short URLs');
    // The list counts the visits (Hop's visitsSummary) and links to the visits page.
    const count = row('alpha').getByRole('link', { name: '3', exact: true });
    await visible(count);
    await count.click();
    // The header counts the visits the page loaded (it reads 0 until they arrive).
    await visible(
      page.getByRole('banner').getByRole('heading', { name: /Visits for \S+\/alpha\s*Visits: 3$/ }),
    );
    // "By time" is the first tab: a line chart whose legend counts the visits it drew.
    await visible(page.getByRole('menuitem', { name: 'By time' }));
    await visible(page.getByText('Visits (3)', { exact: true }));
    assert.ok((await page.locator('.recharts-line').count()) > 0, 'a line is drawn');

    await page.getByRole('menuitem', { name: 'List', exact: true }).click();
    const visitRows = page
      .getByRole('table')
      .getByRole('row')
      .filter({ has: page.getByRole('cell', { name: `${hop.url}/alpha`, exact: true }) });
    await visible(visitRows);
    assert.equal(await visitRows.count(), 3);
    // The component reads browser and OS from the user agent Hop kept, and the referrer's host.
    assert.equal(await visitRows.getByRole('cell', { name: 'Chrome', exact: true }).count(), 3);
    assert.equal(await visitRows.getByRole('cell', { name: 'Linux', exact: true }).count(), 3);
    await visible(visitRows.getByRole('cell', { name: 'search.example', exact: true }));
    assert.deepEqual(pageErrors, []);
  });
});
