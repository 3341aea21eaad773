import test from 'ava';
import { createApp } from '../../src/app.js';
import { buildProxyConfig } from '../../src/config/proxy.js';
import { silentLogger } from '../../src/log.js';
import { register, startProxy } from '../helpers/proxy.js';
import { Upstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/wait.js';
import { uniquePath } from '../helpers/zk.js';
import { zookeeperSuite } from '../helpers/suite.js';
import { freePorts, ZooKeeperServer } from '../helpers/zookeeper-server.js';

const suite = zookeeperSuite(test);

async function getJson(url: string): Promise<{ status: number; body: Record<string, any> }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

test('/healthz, /providers with an ejection, unknown paths and methods', async (t) => {
  const base = uniquePath('providers');
  const live = await Upstream.start('live');
  suite.defer(() => live.close());
  const [deadPort] = await freePorts(1);
  await register(suite.zk, base, 'svc', 'live', live.address, { zone: 'a' });
  await register(suite.zk, base, 'svc', 'dead', `127.0.0.1:${deadPort}`);
  const proxy = await startProxy(suite.server.connectString, base, { 'ejection-base': '30s' });
  suite.defer(() => proxy.close());
  const admin = `http://127.0.0.1:${proxy.app.adminAddress().port}`;

  t.like((await getJson(`${admin}/healthz`)), { status: 200, body: { status: 'ok', zookeeper: 'connected' } });
  for (let i = 0; i < 6; i++) t.is((await proxy.request('/svc/svc/x')).status, 200);

  const one = await getJson(`${admin}/providers/svc`);
  t.is(one.status, 200);
  t.is(one.body['staleSeconds'], 0);
  const byId = Object.fromEntries((one.body['instances'] as any[]).map((i) => [i.id, i]));
  t.like(byId['dead'].health, { status: 'ejected', ejectionReason: 'connect-failed', ejections: 1, lastFailure: { outcome: 'connect-failed' } });
  t.true(Date.parse(byId['dead'].health.ejectedUntil) > Date.now() + 20_000);
  t.like(byId['live'], { host: '127.0.0.1', port: live.port, metadata: { zone: 'a' }, path: `${base}/svc/live`, health: { status: 'healthy', ejectedUntil: null, inFlight: 0 } });

  const all = await getJson(`${admin}/providers`);
  t.deepEqual(Object.keys(all.body['services']), ['svc']);
  t.is(all.body['zookeeper'].state, 'connected');
  t.like(await getJson(`${admin}/providers/nope`), { status: 404, body: { error: 'unknown_service' } });
  t.like(await getJson(`${admin}/nothing`), { status: 404, body: { error: 'not_found' } });
  t.is((await fetch(`${admin}/providers`, { method: 'POST' })).status, 405);
});

test('/metrics: Prometheus text that counts the requests just made', async (t) => {
  const base = uniquePath('providers');
  const up = await Upstream.start('m');
  suite.defer(() => up.close());
  await register(suite.zk, base, 'metered', 'm', up.address);
  const proxy = await startProxy(suite.server.connectString, base);
  suite.defer(() => proxy.close());
  for (let i = 0; i < 7; i++) await proxy.request('/svc/metered/ok');
  await proxy.request('/svc/metered/status/503');
  await proxy.request('/svc/nope/x');
  await proxy.request('/elsewhere');

  const res = await fetch(`http://127.0.0.1:${proxy.app.adminAddress().port}/metrics`);
  t.is(res.status, 200);
  t.regex(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/.exec(line);
    if (!m) return t.fail(`not Prometheus text: ${line}`);
    samples.set(m[1]!, Number(m[2]));
  }
  t.is(samples.get('zkroute_requests_total{service="metered",code_class="2xx",outcome="ok"}'), 7);
  t.is(samples.get('zkroute_requests_total{service="metered",code_class="5xx",outcome="upstream-5xx"}'), 1);
  t.is(samples.get('zkroute_requests_total{service="",code_class="4xx",outcome="unknown_service"}'), 1);
  t.is(samples.get('zkroute_requests_total{service="",code_class="4xx",outcome="not_routed"}'), 1);
  t.is(samples.get('zkroute_request_duration_seconds_count{service="metered"}'), 8);
  t.is(samples.get('zkroute_upstream_tries_total{service="metered"}'), 8);
  t.is(samples.get('zkroute_instances{service="metered",state="total"}'), 1);
  t.is(samples.get('zkroute_instances{service="metered",state="healthy"}'), 1);
  t.is(samples.get('zkroute_zookeeper_session_state{state="connected"}'), 1);
  t.is(samples.get('zkroute_table_stale_seconds'), 0);
  t.true(samples.has('process_cpu_user_seconds_total'), 'default process metrics');
});

test('/readyz: 503 starting before the first load, 200 after, still 200 (stale) while ZooKeeper is down', async (t) => {
  const own = await ZooKeeperServer.start();
  suite.defer(() => own.close());
  own.pause();
  const config = buildProxyConfig({ zookeeper: own.connectString, listen: '127.0.0.1:0', admin: '127.0.0.1:0', 'zookeeper-session-timeout': '2s', 'zookeeper-connect-timeout': '20s' }, {});
  const app = createApp(config, { logger: silentLogger() });
  suite.defer(() => app.close(0));
  const starting = app.start();
  await waitFor('the admin port', () => app.adminAddress().port !== 0);
  const admin = `http://127.0.0.1:${app.adminAddress().port}`;
  t.like(await getJson(`${admin}/readyz`), { status: 503, body: { status: 'not_ready', reason: 'starting' } });
  own.resume();
  await starting;
  t.like(await getJson(`${admin}/readyz`), { status: 200, body: { status: 'ready', staleSeconds: 0 } });

  await own.stop();
  const stale = await waitFor('staleness reported', async () => {
    const r = await getJson(`${admin}/readyz`);
    return r.body['staleSeconds'] > 0 ? r : undefined;
  }, 10_000, 50);
  t.is(stale.status, 200, 'a ZooKeeper outage does not take a working sidecar out of service');
  t.like(await getJson(`${admin}/healthz`), { status: 200 });
});
