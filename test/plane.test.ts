// The data plane over a fake instance source: routing, retries and errors end to end through
// real loopback HTTP upstreams and the real HTTP listener, with no ZooKeeper.
import test from 'ava';
import { Registry } from 'prom-client';
import { request, Agent } from 'undici';
import { buildProxyConfig } from '../src/config/proxy.js';
import { silentLogger } from '../src/log.js';
import { createProxyPlane, type ProxyPlane } from '../src/plane.js';
import { FakeSource } from './helpers/fake-source.js';
import { fakeInstance } from './helpers/instances.js';
import { Upstream } from './helpers/upstream.js';

interface Running {
  readonly source: FakeSource;
  readonly plane: ProxyPlane;
  readonly registry: Registry;
  send(path: string, options?: { method?: string; body?: string }): Promise<{ status: number; headers: Record<string, unknown>; body: Record<string, unknown> }>;
}

const portOf = (address: string) => Number(address.slice(address.lastIndexOf(':') + 1));

async function start(t: { teardown(fn: () => Promise<void> | void): void }, flags: Record<string, string> = {}): Promise<Running> {
  const source = new FakeSource();
  const registry = new Registry();
  const config = buildProxyConfig({ zookeeper: 'unused:2181', listen: '127.0.0.1:0', balancer: 'round-robin', ...flags }, {});
  const plane = createProxyPlane(config, { source, logger: silentLogger(), registry });
  await plane.listen();
  const agent = new Agent({ keepAliveTimeout: 1000 });
  t.teardown(async () => {
    await agent.close();
    await plane.close(1000);
  });
  const origin = `http://127.0.0.1:${plane.addresses().http!.port}`;
  return {
    source,
    plane,
    registry,
    async send(path, options = {}) {
      const res = await request(`${origin}${path}`, { dispatcher: agent, method: (options.method ?? 'GET') as 'GET', ...(options.body !== undefined ? { body: options.body } : {}) });
      const text = await res.body.text();
      return { status: res.statusCode, headers: res.headers, body: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : { text } };
    },
  };
}

async function upstream(t: { teardown(fn: () => Promise<void>): void }, name: string, handler?: Parameters<typeof Upstream.start>[1]): Promise<Upstream> {
  const u = await Upstream.start(name, handler);
  t.teardown(() => u.close());
  return u;
}

test('routes <prefix>/<service>/<path> to an instance, path and query intact', async (t) => {
  const a = await upstream(t, 'a');
  const proxy = await start(t);
  proxy.source.set('api', [fakeInstance(portOf(a.address), { service: 'api' })]);
  const res = await proxy.send('/svc/api/orders/7?full=1');
  t.is(res.status, 200);
  t.like(res.body, { upstream: 'a', method: 'GET', url: '/orders/7?full=1' });
  t.like((res.body['headers'] as Record<string, string>), { 'x-forwarded-prefix': '/svc/api', host: a.address });
  const counted = (await proxy.registry.getSingleMetric('zkroute_requests_total')!.get()).values.find((v) => v.labels['service'] === 'api');
  t.is(counted?.value, 1);
});

test('a reset after sending: GET retried on another instance, POST answered 502 and not retried', async (t) => {
  const resetting = await upstream(t, 'resetting', (req) => req.socket.destroy());
  const good = await upstream(t, 'good');
  const proxy = await start(t, { 'max-ejection-percent': '0' });
  proxy.source.set('api', [fakeInstance(portOf(resetting.address), { service: 'api' }), fakeInstance(portOf(good.address), { service: 'api' })]);
  for (let i = 0; i < 4; i++) {
    const res = await proxy.send(`/svc/api/get${i}`);
    t.is(res.status, 200);
    t.is(res.body['upstream'], 'good');
  }
  t.true(resetting.count('/get') >= 1, 'GETs reached the resetting instance and were retried');
  let posts502 = 0;
  for (let i = 0; i < 4; i++) {
    const res = await proxy.send(`/svc/api/post${i}`, { method: 'POST', body: 'x' });
    if (res.status === 502) {
      posts502 += 1;
      t.is(res.body['error'], 'upstream_unavailable');
      t.regex(String(res.body['message']), /1 try, last: reset-before-response/);
    } else t.is(res.body['upstream'], 'good');
  }
  t.is(posts502, resetting.count('/post'), 'each POST that reached the resetting instance failed there, and only there');
  t.true(posts502 > 0);
});

test('lookups: unknown 404, listed but empty 503 with Retry-After, bad names 400, outside the prefix 404', async (t) => {
  const proxy = await start(t);
  proxy.source.listed.add('idle');
  t.like(await proxy.send('/svc/nosuch/x'), { status: 404, body: { error: 'unknown_service', service: 'nosuch' } });
  t.like(await proxy.send('/svc/idle/x'), { status: 503, headers: { 'retry-after': '1' }, body: { error: 'no_providers', service: 'idle' } });
  t.like(await proxy.send('/svc/bad$name/x'), { status: 400, body: { error: 'invalid_service' } });
  t.like(await proxy.send('/elsewhere'), { status: 404, body: { error: 'not_routed' } });
});

test('a hung instance: 504 after the per-try timeout for a POST; a GET goes on to the next instance', async (t) => {
  const hung = await upstream(t, 'hung', () => {});
  const good = await upstream(t, 'good');
  const proxy = await start(t, { 'try-timeout': '200ms', 'max-ejection-percent': '0' });
  proxy.source.set('api', [fakeInstance(portOf(hung.address), { service: 'api' }), fakeInstance(portOf(good.address), { service: 'api' })]);
  const first = await proxy.send('/svc/api/a', { method: 'POST', body: 'x' });
  const second = await proxy.send('/svc/api/b', { method: 'POST', body: 'x' });
  const statuses = [first.status, second.status].sort();
  t.deepEqual(statuses, [200, 504]);
  const timedOut = first.status === 504 ? first : second;
  t.like(timedOut.body, { error: 'upstream_timeout' });
  t.regex(String(timedOut.body['message']), /within 200 ms \(1 try\)/);
  for (let i = 0; i < 2; i++) t.is((await proxy.send(`/svc/api/g${i}`)).status, 200, 'GETs retried past the hung instance');
});

test('an instance that leaves the table gets no more traffic; its health record goes with it', async (t) => {
  const a = await upstream(t, 'a');
  const b = await upstream(t, 'b');
  const proxy = await start(t);
  const ia = fakeInstance(portOf(a.address), { service: 'api' });
  const ib = fakeInstance(portOf(b.address), { service: 'api' });
  proxy.source.set('api', [ia, ib]);
  proxy.plane.provider.noteOutcome(ia, { kind: 'upstream-5xx', status: 500 });
  t.is(proxy.plane.healthView()(ia).consecutiveFailures, 1);
  proxy.source.set('api', [ib]);
  for (let i = 0; i < 4; i++) t.is((await proxy.send(`/svc/api/x${i}`)).body['upstream'], 'b');
  t.is(proxy.plane.healthView()(ia).consecutiveFailures, 0, 'forgotten when it left');
});
