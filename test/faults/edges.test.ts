// The fault matrix's security rows (RELIABILITY.md 22-24) and the admin token, through the
// real proxy with live traffic. Forbidden addresses are never sent a request: they are
// checked through /providers, the metric and the log.
import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError } from '../../src/config/options.js';
import { captureLogger, nodeRequest, register, startProxy } from '../helpers/proxy.js';
import { rawExchange } from '../helpers/raw.js';
import { zookeeperSuite } from '../helpers/suite.js';
import { Upstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/wait.js';
import { freePorts } from '../helpers/zookeeper-server.js';
import { uniquePath } from '../helpers/zk.js';
import { logRow, Traffic } from './harness.js';

const suite = zookeeperSuite(test);

const metricsOf = async (port: number, headers: Record<string, string> = {}) => (await fetch(`http://127.0.0.1:${port}/metrics`, { headers })).text();

test.serial('row 22: znodes pointing at a link-local address and at the proxy itself are never used: skipped, counted, logged once', async (t) => {
  const base = uniquePath('edges');
  const good = await Upstream.start('good');
  const { logger, lines } = captureLogger('info');
  const proxy = await startProxy(suite.server.connectString, base, { services: 'api' }, logger);
  try {
    const admin = proxy.app.adminAddress();
    const own = proxy.app.address();
    await register(suite.zk, base, 'api', 'good', good.address);
    await waitFor('the good instance', () => proxy.app.discovery.instances('api')?.length === 1);
    await register(suite.zk, base, 'api', 'metadata', '169.254.169.254:80');
    await register(suite.zk, base, 'api', 'admin', `127.0.0.1:${admin.port}`);
    await register(suite.zk, base, 'api', 'self', `127.0.0.1:${own.port}`);
    // No traffic until all three are refused: a broken policy must fail here, not send a
    // request off loopback.
    await waitFor('the three refused', () => lines.filter((l) => l['reason'] === 'forbidden_address').length === 3);
    t.is(proxy.app.discovery.instances('api')?.length, 1, 'only the good instance in the table before any traffic');
    const traffic = new Traffic(proxy.origin, 'api');
    await traffic.more(300);
    const report = await traffic.stop();
    const providers = (await (await fetch(`http://127.0.0.1:${admin.port}/providers/api`)).json()) as { instances: { id: string }[] };
    const metrics = await metricsOf(admin.port);
    const refusals = lines.filter((l) => l['reason'] === 'forbidden_address');
    logRow(t, 22, report, { refused: refusals.map((l) => String(l['path']).split('/').pop()).join('/') });
    t.deepEqual(providers.instances.map((i) => i.id), ['good']);
    t.regex(metrics, /zkroute_znodes_malformed_total\{reason="forbidden_address"\} 3/);
    t.is(refusals.length, 3, 'logged once each');
    t.regex(String(refusals.find((l) => String(l['path']).endsWith('/metadata'))?.['detail']), /169\.254\.169\.254 is link-local/);
    t.regex(String(refusals.find((l) => String(l['path']).endsWith('/admin'))?.['detail']), /own listen or admin/);
    t.is(good.count('/work'), report.ok, 'every request went to the good instance');
    t.deepEqual([...report.failedIdempotent, ...report.failedPosts], []);
  } finally {
    await proxy.close();
    await good.close();
  }
});

test.serial('row 22: --allow-upstream 127.0.0.2/32 refuses a 127.0.0.1 instance (503 no_providers); a host name is checked at connect', async (t) => {
  const base = uniquePath('edges');
  const upstream = await Upstream.start('u');
  const proxy = await startProxy(suite.server.connectString, base, { services: 'api,named', 'allow-upstream': '127.0.0.2/32' });
  try {
    await register(suite.zk, base, 'api', 'u', upstream.address);
    // A name resolving to 127.0.0.1 passes the table and is refused when connecting.
    await register(suite.zk, base, 'named', 'n', `localhost:${upstream.port}`);
    await waitFor('the named instance', () => proxy.app.discovery.instances('named')?.length === 1);
    const refused = await proxy.request('/svc/api/x');
    t.is(refused.status, 503);
    t.is(JSON.parse(refused.body).error, 'no_providers');
    const named = await proxy.request('/svc/named/x');
    t.is(named.status, 502);
    t.regex(JSON.parse(named.body).message, /FORBIDDEN_ADDRESS/);
    t.is(upstream.seen.length, 0, 'nothing reached the refused address');
    t.regex(await metricsOf(proxy.app.adminAddress().port), /zkroute_znodes_malformed_total\{reason="forbidden_address"\} 1/);
  } finally {
    await proxy.close();
    await upstream.close();
  }
});

test.serial('row 23: a loop between two proxies is stopped at the second pass: 508 loop_detected, no storm', async (t) => {
  const baseA = uniquePath('edges');
  const baseB = uniquePath('edges');
  const a = await startProxy(suite.server.connectString, baseA, { services: 'loop' });
  const b = await startProxy(suite.server.connectString, baseB, { services: 'loop' });
  try {
    // A's instance of `loop` is B, and B's is A.
    await register(suite.zk, baseA, 'loop', 'b', `127.0.0.1:${b.app.address().port}`);
    await register(suite.zk, baseB, 'loop', 'a', `127.0.0.1:${a.app.address().port}`);
    await waitFor('both tables', () => a.app.discovery.instances('loop')?.length === 1 && b.app.discovery.instances('loop')?.length === 1);
    // Each pass strips one route prefix (a plain loop ends in 404 not_routed): with three, A
    // sends to B, B back to A, and A recognises its own Via entry.
    const res = await nodeRequest(`${a.origin}/svc/loop/svc/loop/svc/loop/x`);
    t.is(res.status, 508);
    t.is(JSON.parse(res.body).error, 'loop_detected');
    const requestsOf = async (proxy: typeof a) => Number(/zkroute_requests_total\{[^}]*service="loop"[^}]*\} (\d+)/.exec(await metricsOf(proxy.app.adminAddress().port))?.[1] ?? 0);
    t.log(`row 23: A counted ${await requestsOf(a)} loop requests, B ${await requestsOf(b)}`);
    t.is(await requestsOf(b), 1, 'B forwarded it once');
    t.regex(String(res.headers['via'] ?? ''), /^$/, 'no Via sent back to the caller');
  } finally {
    await a.close();
    await b.close();
  }
});

test.serial('row 24: dot segments are resolved inside the service; --no-normalize-path forwards them as sent', async (t) => {
  const base = uniquePath('edges');
  const upstream = await Upstream.start('u');
  await register(suite.zk, base, 'api', 'u', upstream.address);
  const proxy = await startProxy(suite.server.connectString, base, { services: 'api' });
  const raw = await startProxy(suite.server.connectString, base, { services: 'api', 'no-normalize-path': true });
  try {
    const traffic = new Traffic(proxy.origin, 'api');
    await traffic.more(100);
    // Raw request lines: a URL-parsing client would resolve the dots itself.
    const get = async (port: number, target: string) => (await rawExchange(port, `GET ${target} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`)).text.slice(9, 12);
    t.is(await get(proxy.app.address().port, '/svc/api/../../admin'), '200');
    t.is(await get(proxy.app.address().port, '/svc/api/public/%2e%2e/%2E%2E/secret?x=../y'), '200');
    t.is(await get(raw.app.address().port, '/svc/api/../../admin'), '200');
    const report = await traffic.stop();
    logRow(t, 24, report);
    const urls = upstream.seen.map((s) => s.url).filter((u) => !u.startsWith('/work'));
    t.deepEqual(urls, ['/admin', '/secret?x=../y', '/../../admin']);
    t.deepEqual([...report.failedIdempotent, ...report.failedPosts], []);
  } finally {
    await proxy.close();
    await raw.close();
    await upstream.close();
  }
});

test.serial('--admin-token-file: /providers and /metrics need the bearer token, /healthz and /readyz stay open', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'zkroute-token-'));
  const file = path.join(dir, 'token');
  writeFileSync(file, 'f3a9c2e8d1b04a6f9e7c5d3b1a2f4e6d\n');
  const proxy = await startProxy(suite.server.connectString, uniquePath('edges'), { 'admin-token-file': file });
  try {
    const port = proxy.app.adminAddress().port;
    const get = (p: string, headers: Record<string, string> = {}) => fetch(`http://127.0.0.1:${port}${p}`, { headers });
    for (const p of ['/providers', '/providers/api', '/metrics']) {
      const denied = await get(p);
      t.is(denied.status, 401, p);
      t.is(denied.headers.get('www-authenticate'), 'Bearer realm="zkroute admin"');
      t.is(((await denied.json()) as { error: string }).error, 'unauthorized');
      t.is((await get(p, { authorization: 'Bearer wrong-token-of-some-length' })).status, 401, `${p} with a wrong token`);
    }
    t.is((await get('/providers', { authorization: 'Bearer f3a9c2e8d1b04a6f9e7c5d3b1a2f4e6d' })).status, 200);
    t.is((await get('/metrics', { authorization: 'bearer f3a9c2e8d1b04a6f9e7c5d3b1a2f4e6d' })).status, 200);
    t.is((await get('/healthz')).status, 200);
    t.not((await get('/readyz')).status, 401);
  } finally {
    await proxy.close();
  }
  writeFileSync(file, 'short\n');
  const error = await t.throwsAsync(startProxy(suite.server.connectString, '/x', { 'admin-token-file': file }), { instanceOf: ConfigError });
  t.regex(error!.message, /--admin-token-file ".*token": expected one token of at least 16 characters/);
  await t.throwsAsync(startProxy(suite.server.connectString, '/x', { 'admin-token-file': path.join(dir, 'missing') }), { message: /--admin-token-file ".*missing": cannot be read \(ENOENT\)/ });
});

test.serial('closing while ZooKeeper is unreachable at start returns at once (the retry wait is cancelled)', async (t) => {
  const [port] = await freePorts(1);
  const proxy = await startProxy(`127.0.0.1:${port}`, '/x', { 'zookeeper-connect-timeout': '200ms' });
  await waitFor('the first attempt failed', () => {
    const r = proxy.app.readiness();
    return !r.ready && r.reason === 'zookeeper_unreachable';
  }, 5000, 5);
  // The next attempt is 500 ms away: closing must not wait for it.
  const startedAt = Date.now();
  await proxy.close();
  const ms = Date.now() - startedAt;
  t.log(`closed in ${ms} ms`);
  t.true(ms < 250, `closed in ${ms} ms`);
});
