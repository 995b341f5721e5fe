// A headless Chromium (Debian's chromium, driven by playwright-core) for the web UI tests: a fresh
// profile per run, console errors collected, screenshots on request.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = process.env['CHROMIUM_BIN'] ?? '/usr/bin/chromium';

/** The `skip` option of a suite that needs Chromium. */
export function skipWithoutChromium(): false | string {
  return existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium; .ci/run does)`;
}

export interface UiBrowser {
  readonly page: Page;
  /** Console errors and uncaught page errors, as the page logged them. */
  readonly consoleErrors: string[];
  /** MESHPILOT_UI_SCREENSHOTS=DIR saves each page as it was checked, for a person to look at. */
  screenshot(name: string): Promise<void>;
  close(): Promise<void>;
}

export async function launchUiBrowser(): Promise<UiBrowser> {
  const profile = await mkdtemp(join(tmpdir(), 'meshpilot-chromium-'));
  // A fresh profile directory per run (playwright passes it as --user-data-dir).
  const browser: BrowserContext = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1360, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = browser.pages()[0] ?? (await browser.newPage());
  const consoleErrors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => consoleErrors.push(error.message));
  return {
    page,
    consoleErrors,
    async screenshot(name) {
      const dir = process.env['MESHPILOT_UI_SCREENSHOTS'];
      if (dir) await page.screenshot({ path: join(dir, `${name}.png`), fullPage: true });
    },
    async close() {
      await browser.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}
