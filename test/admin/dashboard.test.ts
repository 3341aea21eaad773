// The dashboard in a real browser: Debian's Chromium (puppeteer-core) against a real proxy on a
// real ZooKeeper, alone and as --workers 2.
import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Page } from 'puppeteer-core';
import { startBrowser, type RunningBrowser } from '../helpers/browser.js';
import { spawnCli, stopAll } from '../helpers/cli.js';
import { register, runConcurrently, startProxy } from '../helpers/proxy.js';
import { zookeeperSuite } from '../helpers/suite.js';
import { Upstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/wait.js';
import { uniquePath } from '../helpers/zk.js';

// The functions page.evaluate runs are the page's: its DOM, not typed here (no DOM lib in this project).
declare const document: any;

const suite = zookeeperSuite(test);
let browser: RunningBrowser | undefined;
test.before(async () => {
  browser = await startBrowser();
});
test.after.always(async () => {
  await browser?.close();
  await stopAll();
});

/** What the page shows of one instance row. */
function row(page: Page, service: string, address: string) {
  return page.evaluate((s, a) => {
    const tr = [...document.querySelectorAll('section.service')].find((e: any) => e.dataset['service'] === s)
      ?.querySelector(`tr[data-instance="${a}"]`);
    if (!tr) return undefined;
    return { state: tr.dataset['state'] ?? '', text: tr.innerText, rps: Number(tr.querySelector('.rps')?.textContent ?? 'NaN') };
  }, service, address);
}

const pageText = (page: Page) => page.evaluate(() => document.body.innerText);

test('the dashboard shows a real proxy\'s services, a burst within 3 s, an ejection with its reason; no console errors', async (t) => {
  const base = uniquePath('providers');
  const a = await Upstream.start('a');
  const b = await Upstream.start('b');
  suite.defer(() => a.close());
  suite.defer(() => b.close());
  await register(suite.zk, base, 'orders', 'a', a.address, { zone: 'eu-1' });
  await register(suite.zk, base, 'orders', 'b', b.address, { zone: 'eu-2' });
  await register(suite.zk, base, 'billing', 'x', a.address);
  const proxy = await startProxy(suite.server.connectString, base, { services: 'orders,billing', 'ejection-base': '30s' });
  suite.defer(() => proxy.close());
  const admin = `http://127.0.0.1:${proxy.app.adminAddress().port}`;

  const { page, problems } = await browser!.page();
  await page.setViewport({ width: 1100, height: 700 });
  await page.goto(`${admin}/`, { waitUntil: 'load' });
  await page.waitForSelector('body[data-loaded="true"]', { timeout: 5000 });
  await page.waitForSelector('section.service[data-service="orders"] tr[data-instance]', { timeout: 5000 });
  t.like(await row(page, 'orders', a.address), { state: 'healthy' });
  t.regex((await row(page, 'orders', b.address))!.text, /eu-2/);
  t.regex(await page.$eval('#session', (e) => e.textContent ?? ''), /connected/);
  t.truthy(await page.$('section.service[data-service="billing"]'));
  t.is(await page.$eval('#auth', (e: any) => e.offsetParent), null, 'no token asked for: the admin port has none');

  // A burst: it shows in the page's rates within 3 s.
  const burstAt = Date.now();
  await runConcurrently(400, 16, () => proxy.request('/svc/orders/x'));
  await waitFor('the burst in the page', async () => ((await row(page, 'orders', a.address))?.rps ?? 0) > 0 && ((await row(page, 'orders', b.address))?.rps ?? 0) > 0, 3000);
  t.log(`burst visible ${Date.now() - burstAt} ms after it began`);
  const serviceFigures = await page.$eval('section.service[data-service="orders"] h2', (e: any) => e.innerText);
  t.regex(serviceFigures, /2\/2 healthy/);
  t.notRegex(serviceFigures, /p99 –/, 'a p99 once requests were made');

  // b stops accepting connections: one failed try ejects it, and the page says why.
  await b.close();
  await runConcurrently(20, 4, () => proxy.request('/svc/orders/y'));
  await waitFor('the ejection in the page', async () => (await row(page, 'orders', b.address))?.state === 'ejected', 3000);
  t.regex((await row(page, 'orders', b.address))!.text, /connect-failed until/);
  await waitFor('the event', async () => /ejected orders 127\.0\.0\.1:\d+: connect-failed/.test(await pageText(page)), 3000);
  t.regex(await pageText(page), /joined orders/);

  // A phone: the page fits its width (the instance tables scroll inside their own box).
  await page.setViewport({ width: 390, height: 844, isMobile: true });
  t.true(await page.evaluate(() => document.documentElement.scrollWidth <= 390), 'no page-wide horizontal scroll at 390 px');
  await page.setViewport({ width: 1100, height: 700 });

  const screenshot = process.env['ZKROUTE_DASHBOARD_SCREENSHOT'] ?? path.join(await mkdtemp(path.join(tmpdir(), 'zkroute-dashboard-')), 'dashboard.png');
  const png = await page.screenshot({ fullPage: true });
  await writeFile(screenshot, png);
  t.true(png.subarray(1, 4).toString() === 'PNG' && png.length > 10_000, `a screenshot saved at ${screenshot}`);
  t.deepEqual(problems, [], 'no console errors, page errors or failed requests');
  await page.close();
});

test('with --admin-token-file the page asks for the token once and sends it as a bearer header', async (t) => {
  const base = uniquePath('providers');
  const a = await Upstream.start('a');
  suite.defer(() => a.close());
  await register(suite.zk, base, 'orders', 'a', a.address);
  const dir = await mkdtemp(path.join(tmpdir(), 'zkroute-token-'));
  const tokenFile = path.join(dir, 'token');
  const token = 'dashboard-token-0123456789abcdef';
  await writeFile(tokenFile, `${token}\n`);
  const proxy = await startProxy(suite.server.connectString, base, { services: 'orders', 'admin-token-file': tokenFile });
  suite.defer(() => proxy.close());
  const admin = `http://127.0.0.1:${proxy.app.adminAddress().port}`;
  t.is((await fetch(`${admin}/stats`)).status, 401, '/stats needs the token');

  const { page, problems } = await browser!.page();
  const authorizations: (string | undefined)[] = [];
  page.on('request', (request) => {
    if (request.url().endsWith('/stats')) authorizations.push(request.headers()['authorization']);
  });
  await page.goto(`${admin}/`, { waitUntil: 'load' });
  await page.waitForSelector('#auth:not([hidden])', { timeout: 5000 });
  t.false(await page.$eval('body', (e: any) => e.dataset['loaded'] === 'true'), 'nothing shown before the token');
  await page.type('#token', token);
  await page.click('#auth button');
  await page.waitForSelector('section.service[data-service="orders"] tr[data-instance]', { timeout: 5000 });
  // Loaded again in the same tab: the token is remembered, not asked for again.
  await page.reload({ waitUntil: 'load' });
  await page.waitForSelector('section.service[data-service="orders"] tr[data-instance]', { timeout: 5000 });
  t.true(await page.$eval('#auth', (e: any) => e.hidden));
  t.true(authorizations.length >= 2);
  t.true(authorizations.every((h) => h === `Bearer ${token}`), 'every /stats request carried the bearer token');
  t.deepEqual(problems, []);
  await page.close();
});

test('--workers 2: the page shows the whole cluster\'s traffic, added up by the primary', async (t) => {
  const base = uniquePath('providers');
  const a = await Upstream.start('a');
  suite.defer(() => a.close());
  await register(suite.zk, base, 'orders', 'a', a.address);
  const run = spawnCli(['proxy', '--workers', '2', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--base-path', base, '--services', 'orders'], { ZKROUTE_ZOOKEEPER: suite.server.connectString });
  const started = await waitFor('the start-up log line', () => run.logs().find((l) => l['msg'] === 'zkroute proxy started'), 30_000);
  const proxy = String(started['listen']);
  const admin = String(started['admin']);

  const { page, problems } = await browser!.page();
  await page.goto(`http://${admin}/`, { waitUntil: 'load' });
  await page.waitForSelector(`tr[data-instance="${a.address}"]`, { timeout: 5000 });
  t.is(await page.$eval('#workers', (e) => e.textContent), '2');
  // One connection per request: the cluster hands them to both workers.
  await runConcurrently(200, 8, async () => (await fetch(`http://${proxy}/svc/orders/x`, { headers: { connection: 'close' } })).text());
  await waitFor('the burst in the page', async () => ((await row(page, 'orders', a.address))?.rps ?? 0) > 0, 3000);
  // Both workers' counts, added up: all 200 requests are in the last minute.
  const stats = await waitFor('every request counted', async () => {
    const body = (await (await fetch(`http://${admin}/stats`)).json()) as { services: { name: string; requestsLastMinute: number }[] };
    const orders = body.services.find((s) => s.name === 'orders')!;
    return orders.requestsLastMinute === 200 ? orders : undefined;
  }, 5000);
  t.is(stats.requestsLastMinute, 200);
  t.deepEqual(problems, []);
  await page.close();
  run.child.kill('SIGTERM');
  t.is(await run.exited, 0);
});
