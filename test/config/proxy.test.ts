import test from 'ava';
import { envName, parseBytes, parseDurationMs, parseListen } from '../../src/config/options.js';
import { buildProxyConfig, PROXY_OPTIONS } from '../../src/config/proxy.js';

test('defaults match the documented ones', (t) => {
  const c = buildProxyConfig({ zookeeper: '127.0.0.1:2181' }, {});
  t.like(c, {
    listen: { host: '127.0.0.1', port: 4700 }, prefix: '/svc', basePath: '/providers', layout: 'nested', balancer: 'random',
    preserveHost: false, keepLastOnEmpty: true, connectTimeoutMs: 1000, tryTimeoutMs: 15_000, deadlineMs: 30_000, retries: 2,
    retryBufferBytes: 65_536, consecutive5xx: 5, ejectionBaseMs: 10_000, ejectionMaxMs: 300_000, maxEjectionPercent: 50,
    poolIdleTimeoutMs: 4000, logLevel: 'info', resyncJitterMs: 'auto',
  });
  t.true(c.poolIdleTimeoutMs < 5000, 'below the common 5 s server keep-alive');
  t.true(Object.isFrozen(c));
});

test('every option has an environment variable; a flag wins over it', (t) => {
  const env: NodeJS.ProcessEnv = { ZKROUTE_ZOOKEEPER: 'zk1:2181,zk2:2181', ZKROUTE_RETRIES: '4', ZKROUTE_PRESERVE_HOST: 'true', ZKROUTE_EJECTION_BASE: '2m', ZKROUTE_KEEP_LAST_ON_EMPTY: 'false' };
  const c = buildProxyConfig({ retries: '1' }, env);
  t.like(c, { zookeeper: 'zk1:2181,zk2:2181', retries: 1, preserveHost: true, ejectionBaseMs: 120_000, keepLastOnEmpty: false });
  for (const o of PROXY_OPTIONS) t.regex(envName(o.flag), /^ZKROUTE_[A-Z0-9_]+$/);
  t.is(envName('consecutive-5xx'), 'ZKROUTE_CONSECUTIVE_5XX');
});

test('durations, sizes and listen addresses', (t) => {
  t.is(parseDurationMs('250ms'), 250);
  t.is(parseDurationMs('1.5s'), 1500);
  t.is(parseDurationMs('5m'), 300_000);
  t.is(parseDurationMs('750'), 750);
  t.regex((parseDurationMs('-1s') as { problem: string }).problem, /expected a duration/);
  t.regex((parseDurationMs('0') as { problem: string }).problem, /above zero/);
  t.is(parseBytes('64KiB'), 65_536);
  t.is(parseBytes('1m'), 1_048_576);
  t.is(parseBytes('100'), 100);
  t.deepEqual(parseListen('[::1]:80'), { host: '::1', port: 80 });
  t.deepEqual(parseListen(':4700'), { host: '127.0.0.1', port: 4700 });
  t.deepEqual(parseListen('localhost:0'), { host: 'localhost', port: 0 });
});

test('errors name the source and the value', (t) => {
  t.throws(() => buildProxyConfig({ zookeeper: 'zk:2181', layout: 'flat' }, {}), { message: '--layout "flat": expected one of nested, sequential' });
  t.throws(() => buildProxyConfig({ zookeeper: 'zk:2181' }, { ZKROUTE_DEADLINE: 'soon' }), { message: /^ZKROUTE_DEADLINE "soon": expected a duration/ });
  t.throws(() => buildProxyConfig({}, {}), { message: /--zookeeper is required/ });
  t.throws(() => buildProxyConfig({ zookeeper: 'zk:2181', 'base-path': 'providers' }, {}), { message: /^--base-path "providers"/ });
  t.throws(() => buildProxyConfig({ zookeeper: 'zk:2181', 'ejection-base': '10m', 'ejection-max': '1m' }, {}), { message: /--ejection-base 600000ms is longer than --ejection-max/ });
});

test('--resync-jitter: auto, a duration, or 0', (t) => {
  const jitter = (value: string) => buildProxyConfig({ zookeeper: 'zk:2181', 'resync-jitter': value }, {}).resyncJitterMs;
  t.is(jitter('auto'), 'auto');
  t.is(jitter('30s'), 30_000);
  t.is(jitter('0'), 0);
  t.throws(() => jitter('soon'), { message: /^--resync-jitter "soon": expected a duration/ });
  t.throws(() => jitter('-2s'), { message: /^--resync-jitter "-2s": expected a duration/ });
});
