import test from 'ava';
import { buildProxyConfig } from '../../src/config/proxy.js';
import { planReload, RELOADABLE } from '../../src/config/reload.js';
import { createOutlierDetector } from '../../src/health/outlier-detector.js';
import { silentLogger } from '../../src/log.js';
import { Settings, trafficSettings } from '../../src/upstream/settings.js';
import { fakeInstance } from '../helpers/instances.js';

const base = { zookeeper: '127.0.0.1:2181' };

test('planReload takes the reloadable options from the new file and keeps every other', (t) => {
  const current = buildProxyConfig({ ...base, listen: '127.0.0.1:4700', retries: '2' }, {});
  const next = buildProxyConfig({ ...base, listen: '127.0.0.1:5800', retries: '0', balancer: 'p2c', 'ejection-base': '1s', 'http-engine': 'node' }, {});
  const plan = planReload(current, next);
  t.deepEqual(plan.changed.map((c) => c.flag), ['--balancer', '--retries', '--ejection-base']);
  t.deepEqual(plan.changed.find((c) => c.flag === '--retries'), { flag: '--retries', from: 2, to: 0 });
  t.deepEqual(plan.restartOnly, ['--listen', '--http-engine']);
  t.like(plan.config, { retries: 0, balancer: 'p2c', ejectionBaseMs: 1000, listen: { host: '127.0.0.1', port: 4700 }, httpEngine: 'zkroute' });
  t.true(Object.isFrozen(plan.config));
  t.deepEqual(planReload(current, current).changed, []);
});

test('every traffic setting is reloadable', (t) => {
  const config = buildProxyConfig(base, {});
  for (const key of Object.keys(trafficSettings(config))) t.true(RELOADABLE.has(key as never), key);
});

test('Settings.replace applies to the next read; health reads its ejection options at each decision', (t) => {
  const traffic = trafficSettings(buildProxyConfig({ ...base, 'consecutive-5xx': '3', 'max-ejection-percent': '100' }, {}));
  const settings = new Settings(traffic, {}, () => 0.5);
  const roundRobin = settings.for('svc').pick;
  const health = createOutlierDetector((service) => settings.for(service), { logger: silentLogger() });
  const [a, b] = [fakeInstance(1), fakeInstance(2)];
  health.record(a, 'upstream-5xx', [a, b]);
  health.record(a, 'upstream-5xx', [a, b]);
  t.false(health.isEjected(a), '2 of 3');
  settings.replace({ ...traffic, consecutive5xx: 2, balancer: 'p2c' });
  t.is(settings.for('svc').consecutive5xx, 2);
  health.record(b, 'upstream-5xx', [a, b]);
  health.record(b, 'upstream-5xx', [a, b]);
  t.true(health.isEjected(b), 'the new threshold: 2 in a row');
  t.not(settings.for('svc').pick, roundRobin);
  settings.replace(traffic);
  t.is(settings.for('svc').pick, roundRobin, 'the same balancer (and its state) when its name comes back');
  health.close();
});
