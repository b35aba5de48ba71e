// The page the Shlink web component test serves: Shlink's own web UI (its React component) talking
// to Hop across origins through Shlink's JS SDK, as shlink-web-client does. Written with
// createElement, not JSX, so the project's tsconfig checks it as it is.
import * as sdk from '@shlinkio/shlink-js-sdk';
import * as sdkFetch from '@shlinkio/shlink-js-sdk/fetch';
import {
  ShlinkWebComponent,
  type ShlinkWebComponentProps,
  type TagColorsStorage,
} from '@shlinkio/shlink-web-component';
import type { Settings } from '@shlinkio/shlink-web-component/settings';
import { createElement, StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { BrowserRouter, Route, Routes } from 'react-router';

/** Where the component lives on the page, as shlink-web-client mounts a server's section. */
const ROUTES_PREFIX = '/server/hop';

/**
 * The browser globals the page touches. The project's tsconfig has no DOM library (its code runs in
 * Node), so the page names the little it uses instead of pulling DOM types into every file.
 */
interface PageGlobals {
  document: { getElementById(id: string): unknown };
}

// The bundler writes Hop's URL and key in (esbuild `define`), so the page needs no config request.
const hopUrl = process.env.HOP_URL ?? '';
const apiKey = process.env.HOP_API_KEY ?? '';

/**
 * The SDK's classes, typed here: its .d.ts files use extension-less relative imports, which the
 * project's NodeNext resolution cannot follow (test/support/shlink-sdk.ts does the same).
 */
type ApiClient = ShlinkWebComponentProps['apiClient'] & { health(): Promise<{ version: string }> };
const { ShlinkApiClient } = sdk as unknown as {
  ShlinkApiClient: new (http: unknown, server: { baseUrl: string; apiKey: string }) => ApiClient;
};
const { FetchHttpClient } = sdkFetch as unknown as { FetchHttpClient: new () => unknown };

const apiClient = new ShlinkApiClient(new FetchHttpClient(), { baseUrl: hopUrl, apiKey });

/** Tag colors for this page's life only; the test needs none kept. */
const tagColors: Record<string, string> = {};
const tagColorsStorage: TagColorsStorage = {
  getTagColors: () => ({ ...tagColors }),
  storeTagColors: (colors) => void Object.assign(tagColors, colors),
};

const settings: Settings = {
  // Hop has no Mercure hub (mercure-info answers 501, as Shlink's does without one); each section
  // loads its data when opened.
  realTimeUpdates: { enabled: false },
  shortUrlsList: { confirmDeletions: true },
  visits: { defaultInterval: 'last30Days', excludeBots: false },
};

// The server's version decides which features the component offers, so it is asked, like the
// web client asks it, rather than assumed.
const { version } = await apiClient.health();
const serverVersion = (
  /^\d+\.\d+\.\d+$/.test(version) ? version : 'latest'
) as ShlinkWebComponentProps['serverVersion'];

const root = (globalThis as unknown as PageGlobals).document.getElementById('root');
createRoot(root as Element).render(
  createElement(
    StrictMode,
    null,
    createElement(
      BrowserRouter,
      null,
      createElement(
        Routes,
        null,
        createElement(Route, {
          path: `${ROUTES_PREFIX}/*`,
          element: createElement(ShlinkWebComponent, {
            serverVersion,
            apiClient,
            tagColorsStorage,
            settings,
            routesPrefix: ROUTES_PREFIX,
          }),
        }),
      ),
    ),
  ),
);
