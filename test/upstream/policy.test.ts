// Traffic policy against real upstreams through the real proxy: per-service settings, the
// retry budget, zone preference, slow start and subsets by header (unit tests with an injected
// clock where time matters).
import test from 'ava';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { silentLogger } from '../../src/log.js';
import { createUpstreamCore } from '../../src/upstream/core.js';
import { RETRY_FLOOR_PER_SEC, RetryBudget } from '../../src/upstream/retry-budget.js';
import { metadataValue, ZonePreference } from '../../src/upstream/zones.js';
import { FakeSource } from '../helpers/fake-source.js';
import { fakeInstance, seededRandom } from '../helpers/instances.js';
import { metricValue, register, runConcurrently, startProxy } from '../helpers/proxy.js';
import { zookeeperSuite } from '../helpers/suite.js';
import { waitFor } from '../helpers/wait.js';
import { Upstream } from '../helpers/upstream.js';
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

const TRAFFIC = { balancer: 'random', retries: 2, connectTimeoutMs: 1000, tryTimeoutMs: 1000, deadlineMs: 5000, consecutive5xx: 5, ejectionBaseMs: 30_000, ejectionMaxMs: 300_000, maxEjectionPercent: 50, jitterFraction: 0, retryBudgetPercent: 20, slowStartMs: 0, zoneAware: false } as const;

/** The share of `picks` picks that go to `port`. */
function shareOf(core: ReturnType<typeof createUpstreamCore>, port: number, picks = 20_000): number {
  let n = 0;
  for (let i = 0; i < picks; i++) {
    const instance = core.provider.getInstance('svc')!;
    core.provider.noteOutcome(instance, { kind: 'ok', status: 200 });
    if (instance.port === port) n += 1;
  }
  return n / picks;
}

for (const balancer of ['random', 'round-robin', 'p2c'] as const) {
  test(`slow start (${balancer}): a new instance's share ramps from 10% of its weight to all of it over the window; the first set does not ramp`, (t) => {
    let now = 5_000_000;
    const source = new FakeSource();
    const core = createUpstreamCore({ ...TRAFFIC, balancer, slowStartMs: 30_000 }, { source, logger: silentLogger(), random: seededRandom(11), now: () => now });
    source.set('svc', [fakeInstance(1), fakeInstance(2)]);
    t.true(Math.abs(shareOf(core, 1) - 0.5) < 0.03, 'the first set: even shares');
    source.set('svc', [fakeInstance(1), fakeInstance(2), fakeInstance(3)]);
    const at = (ms: number) => {
      now = 5_000_000 + ms;
      return shareOf(core, 3);
    };
    const shares = [at(0), at(10_000), at(20_000), at(30_000)];
    t.log(`${balancer}: new instance's share at 0, 10, 20, 30 s: ${shares.map((s) => s.toFixed(3)).join(', ')}`);
    // Weights 1, 1 and 0.1 + 0.9 * t/30: shares 0.048, 0.2, 0.275 ... 0.333.
    const expected = [0.1 / 2.1, 0.4 / 2.4, 0.7 / 2.7, 1 / 3];
    shares.forEach((s, i) => t.true(Math.abs(s - expected[i]!) < 0.03, `at ${i * 10} s: ${s.toFixed(3)} ~ ${expected[i]!.toFixed(3)}`));
    core.close();
  });
}

test('slow start: an instance back from an ejection ramps too', async (t) => {
  let now = 7_000_000;
  const source = new FakeSource();
  const core = createUpstreamCore({ ...TRAFFIC, slowStartMs: 30_000, ejectionBaseMs: 200, ejectionMaxMs: 200, maxEjectionPercent: 50 }, { source, logger: silentLogger(), random: seededRandom(3), now: () => now });
  const [a, b] = [fakeInstance(1), fakeInstance(2)];
  source.set('svc', [a, b]);
  core.provider.noteOutcome(core.provider.getInstance('svc', [b])!, { kind: 'connect-failed', code: 'ECONNREFUSED' });
  t.true(core.health.isEjected(a));
  // The ejection's end (200 ms, the detector's own timer) is when the ramp starts.
  await waitFor('the re-admission', () => core.health.candidates('svc', [a, b]).instances.length === 2, 3000);
  t.true(Math.abs(shareOf(core, 1) - 0.1 / 1.1) < 0.03, 'back at 10% of its weight');
  now += 15_000;
  t.true(Math.abs(shareOf(core, 1) - 0.55 / 1.55) < 0.03, 'half way');
  now += 15_000;
  t.true(Math.abs(shareOf(core, 1) - 0.5) < 0.03, 'all of it after the window');
  core.close();
});

test('ZonePreference: local while the zone keeps 70% healthy; spill in proportion below; all zones when the zone is empty', (t) => {
  const zoned = (port: number, zone: string, where: 'top' | 'payload' | 'metadata' = 'top') => {
    const metadata = where === 'top' ? { zone } : where === 'payload' ? { payload: { zone } } : { metadata: { zone } };
    return { ...fakeInstance(port), metadata };
  };
  const all = [zoned(1, 'a'), zoned(2, 'a', 'payload'), zoned(3, 'a', 'metadata'), zoned(4, 'b'), zoned(5, 'c')];
  t.is(metadataValue(all[1]!, 'zone'), 'a', 'a Curator payload');
  t.is(metadataValue(all[2]!, 'zone'), 'a', 'a serverset metadata map');
  const zones = new ZonePreference({ name: 'a', key: 'zone', minHealthyPercent: 70 }, seededRandom(5));
  t.deepEqual(zones.choose(all, all), { candidates: all.slice(0, 3), local: true });
  // One of three local instances ejected: 67% < 70%, so 67/70 of picks stay local.
  const healthy = all.filter((i) => i.port !== 1);
  let local = 0;
  for (let i = 0; i < 10_000; i++) if (zones.choose(all, healthy).local) local += 1;
  t.true(Math.abs(local / 10_000 - (200 / 3) / 70) < 0.02, `local share ${local / 10_000}`);
  t.deepEqual(zones.choose(all, all.slice(3)), { candidates: all.slice(3), local: false }, 'every local instance ejected: the others');
  const elsewhere = all.slice(3);
  t.deepEqual(zones.choose(elsewhere, elsewhere), { candidates: elsewhere, local: false }, 'none in the zone: all zones');
});

test('--zone a: three zones; requests stay local, spill when local instances are ejected, and go everywhere when the zone is empty', async (t) => {
  const base = uniquePath('providers');
  const names = ['a1', 'a2', 'a3', 'b1', 'b2', 'c1'];
  const ups = await Promise.all(names.map((n) => Upstream.start(n)));
  for (const u of ups) suite.defer(() => u.close());
  const paths = new Map<string, string>();
  for (const [i, n] of names.entries()) paths.set(n, await register(suite.zk, base, 'geo', n, ups[i]!.address, { zone: n[0] }));
  const proxy = await startProxy(suite.server.connectString, base, { zone: 'a', 'ejection-base': '60s', 'ejection-max': '60s', 'max-ejection-percent': '50' });
  suite.defer(() => proxy.close());
  const served = async (n: number) => {
    const by = new Map<string, number>();
    const results = await runConcurrently(n, 8, async (i) => proxy.request(`/svc/geo/z${i}`));
    for (const r of results) {
      t.is(r.status, 200);
      const name = (JSON.parse(r.body) as { upstream: string }).upstream;
      by.set(name[0]!, (by.get(name[0]!) ?? 0) + 1);
    }
    return by;
  };
  t.deepEqual([...(await served(90)).keys()], ['a'], 'every request in zone a');

  // a2 and a3 stop: their first failed tries eject them (retried elsewhere), leaving 1 of 3 healthy.
  await ups[1]!.close();
  await ups[2]!.close();
  await waitFor('a2 and a3 ejected', async () => {
    await proxy.request('/svc/geo/probe');
    const view = (await (await fetch(`http://127.0.0.1:${proxy.app.adminAddress().port}/providers/geo`)).json()) as { instances: { id: string; health: { status: string } }[] };
    return view.instances.filter((i) => i.health.status === 'ejected').map((i) => i.id).sort().join() === 'a2,a3';
  }, 5000);
  const spill = await served(600);
  const localShare = (spill.get('a') ?? 0) / 600;
  t.log(`1 of 3 local instances healthy: ${JSON.stringify(Object.fromEntries(spill))} (local share ${localShare.toFixed(2)}, expected ${(100 / 3 / 70).toFixed(2)})`);
  t.true(Math.abs(localShare - 100 / 3 / 70) < 0.08, 'local in proportion to its healthy share over the 70% threshold');
  t.true((spill.get('b') ?? 0) > 0 && (spill.get('c') ?? 0) > 0, 'the rest spread over the other zones');
  t.true((await metricValue(proxy, 'zkroute_zone_requests_total', { service: 'geo', zone: 'remote' }))! > 0);

  // Zone a leaves ZooKeeper: every zone serves.
  for (const n of ['a1', 'a2', 'a3']) await suite.zk.delete(paths.get(n)!);
  await waitFor('zone a gone from the table', () => proxy.app.discovery.instances('geo')?.length === 3, 5000);
  const everywhere = await served(90);
  t.deepEqual([...everywhere.keys()].sort(), ['b', 'c']);
  t.true((await metricValue(proxy, 'zkroute_zone_requests_total', { service: 'geo', zone: 'local' }))! >= 90);
});

test('subsets by header: version=canary routes to the canary; the header is removed unless forwarded; no match falls back to any, or 503 with fail', async (t) => {
  const base = uniquePath('providers');
  const ups = await Promise.all(['v1a', 'v1b', 'canary'].map((n) => Upstream.start(n)));
  for (const u of ups) suite.defer(() => u.close());
  await register(suite.zk, base, 'app', 'v1a', ups[0]!.address, { version: 'v1', region: 'eu' });
  await register(suite.zk, base, 'app', 'v1b', ups[1]!.address, { version: 'v1', region: 'us' });
  await register(suite.zk, base, 'app', 'canary', ups[2]!.address, { version: 'canary', region: 'eu' });
  const any = await startProxy(suite.server.connectString, base);
  const fail = await startProxy(suite.server.connectString, base, { 'subset-fallback': 'fail', 'subset-header-forward': true });
  suite.defer(() => any.close());
  suite.defer(() => fail.close());
  const who = async (proxy: typeof any, value?: string) => {
    const r = await proxy.request('/svc/app/x', value === undefined ? {} : { headers: { 'x-zkroute-subset': value } });
    return { status: r.status, body: JSON.parse(r.body) as { upstream?: string; error?: string; headers?: Record<string, string> } };
  };

  for (let i = 0; i < 12; i++) t.is((await who(any, 'version=canary')).body.upstream, 'canary');
  const twoKeys = new Set<string>();
  for (let i = 0; i < 12; i++) twoKeys.add((await who(any, 'version=v1, region=us')).body.upstream!);
  t.deepEqual([...twoKeys], ['v1b'], 'every pair must match');
  t.is((await who(any, 'version=canary')).body.headers?.['x-zkroute-subset'], undefined, 'removed before forwarding');
  t.is((await who(fail, 'version=canary')).body.headers?.['x-zkroute-subset'], 'version=canary', '--subset-header-forward');

  const fallback = new Set<string>();
  for (let i = 0; i < 30; i++) fallback.add((await who(any, 'version=v9')).body.upstream!);
  t.is(fallback.size, 3, 'no match, --subset-fallback any: every instance');
  t.like(await who(fail, 'version=v9'), { status: 503, body: { error: 'no_matching_instances' } });
  t.like(await who(any, 'version'), { status: 400, body: { error: 'bad_request' } });
  const plain = new Set<string>();
  for (let i = 0; i < 30; i++) plain.add((await who(any)).body.upstream!);
  t.is(plain.size, 3, 'no header: every instance');
});

test('per-service base-path and layout: one proxy serves nested /providers services and sequential /services ones side by side', async (t) => {
  const nested = uniquePath('providers');
  const sequential = uniquePath('services');
  const ups = await Promise.all(['flask', 'thrifty1', 'thrifty2', 'decoy'].map((n) => Upstream.start(n)));
  for (const u of ups) suite.defer(() => u.close());
  await register(suite.zk, nested, 'flask', 'f1', ups[0]!.address);
  // The same name under the default base path is not where `legacy` lives: never used.
  await register(suite.zk, nested, 'legacy', 'decoy', ups[3]!.address);
  await suite.zk.mkdirp(sequential);
  const first = await suite.zk.create(`${sequential}/legacy`, ups[1]!.address, { ephemeral: true, sequential: true });
  await suite.zk.create(`${sequential}/unrelated`, ups[3]!.address, { ephemeral: true, sequential: true });
  const proxy = await startProxy(suite.server.connectString, nested, {}, undefined, { services: { legacy: { 'base-path': sequential, layout: 'sequential', retries: 0 } } });
  suite.defer(() => proxy.close());
  const upstream = async (service: string) => {
    const r = await proxy.request(`/svc/${service}/x`);
    return r.status === 200 ? (JSON.parse(r.body) as { upstream: string }).upstream : `status ${r.status}`;
  };
  t.is(await upstream('flask'), 'flask');
  for (let i = 0; i < 6; i++) t.is(await upstream('legacy'), 'thrifty1');
  t.is(await upstream('unrelated'), 'status 404', 'a sequential service not configured is not looked for under the nested base path');

  // The sequential set is followed: a second instance joins, the first leaves.
  await suite.zk.create(`${sequential}/legacy`, ups[2]!.address, { ephemeral: true, sequential: true });
  await waitFor('two legacy instances', () => proxy.app.discovery.instances('legacy')?.length === 2, 5000);
  await suite.zk.delete(first);
  await waitFor('one legacy instance', () => proxy.app.discovery.instances('legacy')?.length === 1, 5000);
  for (let i = 0; i < 4; i++) t.is(await upstream('legacy'), 'thrifty2');
  const view = (await (await fetch(`http://127.0.0.1:${proxy.app.adminAddress().port}/providers/legacy`)).json()) as { settings: Record<string, unknown>; instances: { path: string }[] };
  t.like(view.settings, { basePath: sequential, layout: 'sequential', retries: 0 });
  t.true(view.instances[0]!.path.startsWith(`${sequential}/legacy`));
});
