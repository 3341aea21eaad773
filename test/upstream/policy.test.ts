// Traffic policy against real upstreams through the real proxy: per-service settings, the
// retry budget, zone preference, slow start and subsets by header (unit tests with an injected
// clock where time matters).
import test from 'ava';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RETRY_FLOOR_PER_SEC, RetryBudget } from '../../src/upstream/retry-budget.js';
import { metricValue, register, runConcurrently, startProxy } from '../helpers/proxy.js';
import { zookeeperSuite } from '../helpers/suite.js';
import { uniquePath } from '../helpers/zk.js';

const suite = zookeeperSuite(test);

/** An instance that resets every connection's request, counting them. */
async function resetting(): Promise<{ address: string; requests: () => number }> {
  let requests = 0;
  const server: Server = createServer((req) => {
    requests += 1;
    req.socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  suite.defer(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return { address: `127.0.0.1:${(server.address() as AddressInfo).port}`, requests: () => requests };
}

test('RetryBudget: a share of the last 10 s of requests plus 10 a second; old seconds leave the window', (t) => {
  let now = 1_000_000;
  const budget = new RetryBudget(() => now);
  let allowed = 0;
  for (let i = 0; i < 1000; i++) {
    budget.deposit();
    if (budget.allows(20)) {
      budget.spend();
      allowed += 1;
    }
  }
  t.is(allowed, 200 + RETRY_FLOOR_PER_SEC * 10, '20% of 1,000 requests plus the floor of 100 over the window');
  t.false(budget.allows(20));
  now += 10_000;
  t.true(budget.allows(20), 'ten seconds later the window is empty again');
  t.true(budget.allows(0), '0%: the floor still allows some');
});

test('retry budget: with every instance failing under load, retries stay within 20% of requests plus the floor; a per-service setting turns it off for one service', async (t) => {
  const base = uniquePath('providers');
  const failing = await Promise.all([resetting(), resetting(), resetting()]);
  for (const [i, f] of failing.entries()) {
    await register(suite.zk, base, 'down', `d${i}`, f.address);
    await register(suite.zk, base, 'unbudgeted', `u${i}`, f.address);
  }
  // No ejection, so every request keeps meeting failing instances; 2 retries each if allowed.
  const proxy = await startProxy(suite.server.connectString, base, { retries: '2', 'max-ejection-percent': '0' }, undefined, { services: { unbudgeted: { 'retry-budget': 'off' } } });
  suite.defer(() => proxy.close());
  const requests = 600;
  const statuses = await runConcurrently(requests, 16, async (i) => (await proxy.request(`/svc/down/r${i}`)).status);
  t.true(statuses.every((s) => s === 502), 'every request answered with what its last try got');
  const tries = (await metricValue(proxy, 'zkroute_upstream_tries_total', { service: 'down' }))!;
  const denied = (await metricValue(proxy, 'zkroute_retries_denied_total', { service: 'down' }))!;
  const ceiling = requests + 0.2 * requests + RETRY_FLOOR_PER_SEC * 10;
  t.log(`down: ${requests} requests, ${tries} tries (ceiling ${ceiling}, ${3 * requests} without a budget), ${denied} retries denied`);
  t.true(tries <= ceiling, `${tries} tries <= ${ceiling}`);
  t.true(tries >= requests + 0.2 * requests, 'the budget was used, not refused early');
  t.true(denied > 0);

  // The same failing instances behind a service without a budget: every request gets its 2 retries.
  await runConcurrently(100, 16, async (i) => proxy.request(`/svc/unbudgeted/r${i}`));
  t.is(await metricValue(proxy, 'zkroute_upstream_tries_total', { service: 'unbudgeted' }), 300);
  t.is(await metricValue(proxy, 'zkroute_retries_denied_total', { service: 'unbudgeted' }), undefined);
  const providers = (await (await fetch(`http://127.0.0.1:${proxy.app.adminAddress().port}/providers/unbudgeted`)).json()) as { settings: { retryBudgetPercent: unknown; retries: number; overridden: string[] } };
  t.like(providers.settings, { retryBudgetPercent: null, retries: 2, overridden: ['retryBudgetPercent'] });
});
