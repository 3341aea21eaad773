import test from 'ava';
import { readConfigFile } from '../../src/config/options.js';
import { buildProxyConfig, effectiveServiceSettings, PROXY_OPTIONS } from '../../src/config/proxy.js';
import { planReload } from '../../src/config/reload.js';
import { Settings } from '../../src/upstream/settings.js';

const file = (body: unknown) => readConfigFile('zkroute.json', PROXY_OPTIONS, () => JSON.stringify(body));
const build = (body: unknown, flags: Record<string, unknown> = {}) => buildProxyConfig({ zookeeper: '127.0.0.1:2181', ...flags }, {}, file(body));

test('"services" as an object: per-service settings over the defaults; the services are watched from the start', (t) => {
  const config = build({ retries: 1, services: { orders: { retries: 0, balancer: 'p2c', 'try-timeout': '2s', 'retry-budget': '50%', 'slow-start': '30s', 'zone-aware': false, 'base-path': '/services', layout: 'sequential' }, billing: { 'consecutive-5xx': 2 } } });
  t.deepEqual(config.services, ['orders', 'billing']);
  t.deepEqual(config.serviceSettings['orders'], { retries: 0, balancer: 'p2c', tryTimeoutMs: 2000, retryBudgetPercent: 50, slowStartMs: 30_000, zoneAware: false, basePath: '/services', layout: 'sequential' });
  t.like(effectiveServiceSettings(config, 'billing'), { retries: 1, consecutive5xx: 2, balancer: 'random', basePath: '/providers', overridden: ['consecutive5xx'] });
  t.like(effectiveServiceSettings(config, 'other'), { retries: 1, consecutive5xx: 5, overridden: [] });
  const settings = new Settings(config, config.serviceSettings);
  t.is(settings.for('orders').retries, 0);
  t.is(settings.for('orders').tryTimeoutMs, 2000);
  t.is(settings.for('billing').retries, 1);
  t.is(settings.for('billing').consecutive5xx, 2);
  t.is(settings.for('other'), settings.for('another'), 'services without settings share the defaults');
  // A list is still a list of names.
  t.deepEqual(build({ services: ['a', 'b'] }).serviceSettings, {});
});

test('bad per-service settings name the path, the value and what is expected', (t) => {
  t.throws(() => build({ services: { orders: { retries: -1 } } }), { message: 'zkroute.json: services.orders.retries: "-1": expected a whole number from 0 to 10' });
  t.throws(() => build({ services: { orders: { listen: '127.0.0.1:1' } } }), { message: /services\.orders\.listen: not a per-service setting/ });
  t.throws(() => build({ services: { orders: { retries: [1] } } }), { message: /services\.orders\.retries: expected a string, number or boolean/ });
  t.throws(() => build({ services: { 'no/slash': { retries: 1 } } }), { message: /key "services" "no\/slash": may hold only/ });
  t.throws(() => build({ services: { orders: { 'try-timeout': '40s' } } }), { message: /services\.orders: try-timeout 40000ms is longer than its deadline 30000ms/ });
  t.throws(() => build({ 'retry-budget': 'lots' }), { message: /"lots": expected a percentage/ });
});

test('a reload applies per-service settings but keeps a service\'s base path and layout', (t) => {
  const current = build({ services: { orders: { retries: 0, 'base-path': '/services', layout: 'sequential' } } });
  const next = build({ services: { orders: { retries: 2, 'base-path': '/elsewhere' }, billing: { balancer: 'p2c' } } });
  const plan = planReload(current, next);
  t.deepEqual(plan.restartOnly, ['services.orders.base-path', 'services.orders.layout']);
  t.deepEqual(plan.config.serviceSettings, { orders: { retries: 2, basePath: '/services', layout: 'sequential' }, billing: { balancer: 'p2c' } });
  t.true(plan.changed.some((c) => c.flag === '--services'), 'billing is watched from the start now');
});

test('examples/traffic-policy.json (the README\'s example) is a valid configuration', (t) => {
  const config = buildProxyConfig({}, {}, readConfigFile(new URL('../../examples/traffic-policy.json', import.meta.url).pathname, PROXY_OPTIONS));
  t.is(config.zone, 'eu-west-1a');
  t.true(config.zoneAware);
  t.like(effectiveServiceSettings(config, 'payments'), { retries: 0, retryBudgetPercent: null, zoneAware: false });
  t.like(effectiveServiceSettings(config, 'example-service'), { basePath: '/services', layout: 'sequential', slowStartMs: 0 });
});
