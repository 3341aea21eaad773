// Debian's Chromium, headless, driven by puppeteer-core: one browser per test file, its own
// empty profile, no background traffic (this machine's network is loopback only), closed in teardown.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

export const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

export interface RunningBrowser {
  readonly browser: Browser;
  /** A new page whose console errors, page errors and failed requests are collected in `problems`. */
  page(): Promise<{ page: Page; problems: string[] }>;
  close(): Promise<void>;
}

export async function startBrowser(): Promise<RunningBrowser> {
  const profile = await mkdtemp(path.join(tmpdir(), 'zkroute-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: profile,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  return {
    browser,
    async page() {
      const page = await browser.newPage();
      const problems: string[] = [];
      page.on('console', (message) => {
        if (message.type() === 'error' || message.type() === 'warn') problems.push(`console ${message.type()}: ${message.text()}`);
      });
      page.on('pageerror', (err) => problems.push(`page error: ${String(err)}`));
      page.on('requestfailed', (request) => problems.push(`request failed: ${request.url()} ${request.failure()?.errorText ?? ''}`));
      return { page, problems };
    },
    async close() {
      await browser.close().catch(() => {});
      // A browser that did not exit on close is killed: no stray chromium.
      browser.process()?.kill('SIGKILL');
      await rm(profile, { recursive: true, force: true });
    },
  };
}
