import test from 'ava';
import { request as httpRequest } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import type { Instance } from '../../src/discovery/provider-table.js';
import { WebSocket } from 'ws';
import { captureLogger, metricValue, register, runConcurrently, startProxy } from '../helpers/proxy.js';
import { echoHandler, Upstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/wait.js';
import { uniquePath } from '../helpers/zk.js';
import { zookeeperSuite } from '../helpers/suite.js';
import { freePorts } from '../helpers/zookeeper-server.js';

const suite = zookeeperSuite(test);

/** Upstreams registered under a fresh base path as instances of `service`, and a proxy in front. */
async function setup(names: string[], flags: Record<string, string | boolean> = {}, handlers: Record<string, Parameters<typeof Upstream.start>[1]> = {}, logger?: Parameters<typeof startProxy>[3]) {
  const base = uniquePath('providers');
  const upstreams: Record<string, Upstream> = {};
  for (const name of names) {
    const upstream = await Upstream.start(name, handlers[name]);
    suite.defer(() => upstream.close());
    upstreams[name] = upstream;
    await register(suite.zk, base, 'svc1', name, upstream.address);
  }
  const proxy = await startProxy(suite.server.connectString, base, flags, logger);
  suite.defer(() => proxy.close());
  const instanceOf = (name: string): Instance => proxy.app.discovery.instances('svc1')!.find((i) => i.address === upstreams[name]!.address)!;
  return { base, upstreams, proxy, instanceOf };
}

const hang = () => {};

test('an instance whose server died (znode kept): 500 GETs and 100 POSTs at concurrency 16 all succeed; ejected, then re-admitted', async (t) => {
  const { upstreams, proxy, instanceOf } = await setup(['a', 'b', 'c'], { 'ejection-base': '1s', 'ejection-max': '2s' });
  await proxy.request('/svc/svc1/warm');
  await upstreams['b']!.kill();
  const before = upstreams['b']!.seen.length;
  const results = await runConcurrently(600, 16, async (i) => {
    const res = i % 6 === 5
      ? await proxy.request(`/svc/svc1/post?i=${i}`, { method: 'POST', body: `payload-${i}`, headers: { 'content-type': 'text/plain' } })
      : await proxy.request(`/svc/svc1/get?i=${i}`);
    return res.status;
  });
  t.deepEqual(results.filter((s) => s !== 200), [], 'every request succeeded');
  t.log(`600 requests with one dead instance: ${proxy.app.health.stats().ejectionsTotal} ejection(s), 0 failures`);
  t.is(upstreams['b']!.seen.length, before);
  t.true(proxy.app.health.stats().ejectionsTotal >= 1);
  t.true(proxy.app.health.isEjected(instanceOf('b')) || proxy.app.health.stats().readmissionsTotal > 0);

  await upstreams['b']!.listen();
  // Re-admitted when the ejection expires (1-2 s with jitter): b gets traffic again.
  await waitFor('b to be re-admitted and receive traffic', async () => {
    await proxy.request('/svc/svc1/probe');
    return upstreams['b']!.count('/probe') > 0;
  }, 8000, 50);
  t.false(proxy.app.health.isEjected(instanceOf('b')));
});

test('every instance refusing: 502 upstream_unavailable after 1 + --retries tries on distinct instances', async (t) => {
  const base = uniquePath('providers');
  const ports = await freePorts(4);
  for (const port of ports) await register(suite.zk, base, 'down', `d${port}`, `127.0.0.1:${port}`);
  const { logger, lines } = captureLogger();
  const proxy = await startProxy(suite.server.connectString, base, { retries: '2', 'max-ejection-percent': '100' }, logger);
  suite.defer(() => proxy.close());
  const res = await proxy.request('/svc/down/x', { method: 'POST', body: 'x' });
  t.is(res.status, 502);
  const body = JSON.parse(res.body);
  t.like(body, { error: 'upstream_unavailable', service: 'down' });
  t.regex(body.message, /3 tries/);
  t.is(proxy.app.health.stats().ejectionsTotal, 3, 'each refused instance was ejected once');
  const ejections = lines.filter((l) => l['msg'] === 'instance ejected');
  t.is(ejections.length, 3, 'ejections are logged at info');
  t.like(ejections[0], { level: 30, service: 'down', reason: 'connect-failed', component: 'health' });
  t.false(lines.some((l) => l['msg'] === 'request'), 'no per-request line at info');
});

test('the overall --deadline bounds all tries: 504 upstream_timeout', async (t) => {
  const { proxy } = await setup(['h1', 'h2', 'h3'], { 'try-timeout': '300ms', deadline: '450ms', 'max-ejection-percent': '100' }, { h1: hang, h2: hang, h3: hang });
  const started = Date.now();
  const res = await proxy.request('/svc/svc1/slow');
  const elapsed = Date.now() - started;
  t.is(res.status, 504);
  t.like(JSON.parse(res.body), { error: 'upstream_timeout' });
  t.regex(JSON.parse(res.body).message, /450 ms deadline/);
  t.true(elapsed >= 440 && elapsed < 1500, `answered after ${elapsed} ms`);
});

test('a WebSocket to an instance that refuses: 502 and the instance is ejected', async (t) => {
  const base = uniquePath('providers');
  const [port] = await freePorts(1);
  await register(suite.zk, base, 'ws', 'gone', `127.0.0.1:${port}`);
  const proxy = await startProxy(suite.server.connectString, base);
  suite.defer(() => proxy.close());
  const ws = new WebSocket(`ws://127.0.0.1:${proxy.app.address().port}/svc/ws/chat`);
  ws.on('error', () => {});
  const status = await new Promise<number | undefined>((resolve) => ws.once('unexpected-response', (_req, res) => resolve(res.statusCode)));
  t.is(status, 502);
  t.is(proxy.app.health.stats().ejectionsTotal, 1);
  ws.terminate();
});

test('debug level logs one line per request with method, service, instance, status, duration, tries', async (t) => {
  const { logger, lines } = captureLogger('debug');
  const { proxy, upstreams } = await setup(['a'], {}, {}, logger);
  await proxy.request('/svc/svc1/logged', { method: 'PUT', body: 'x' });
  const line = lines.find((l) => l['msg'] === 'request');
  t.like(line, { level: 20, method: 'PUT', service: 'svc1', instance: upstreams['a']!.address, status: 200, tries: 1, outcome: 'ok' });
  t.is(typeof line?.['durationMs'], 'number');
});

test('a hung instance: a GET succeeds via retry after the per-try timeout; a POST gets 504 and reached it once', async (t) => {
  const flags = { 'try-timeout': '300ms', balancer: 'round-robin' };
  const { upstreams, proxy } = await setup(['hung', 'ok'], flags, { hung: hang });
  const started = Date.now();
  const gets = [await proxy.request('/svc/svc1/get1'), await proxy.request('/svc/svc1/get2')];
  t.deepEqual(gets.map((g) => g.status), [200, 200]);
  t.is(upstreams['hung']!.count('/get'), 1, 'one GET went to the hung instance first');
  t.is(upstreams['ok']!.count('/get'), 2, 'and was retried on the healthy one');
  t.true(Date.now() - started >= 300);

  // A fresh proxy (clean health state) so the POST can land on the hung instance.
  const post = await setup(['hung', 'ok'], flags, { hung: hang });
  let answer;
  for (let i = 0; i < 2; i++) {
    answer = await post.proxy.request(`/svc/svc1/order?id=${i}`, { method: 'POST', body: `order ${i}` });
    if (answer.status !== 200) {
      t.is(answer.status, 504);
      t.like(JSON.parse(answer.body), { error: 'upstream_timeout', service: 'svc1' });
      t.is(post.upstreams['hung']!.count(`/order?id=${i}`), 1);
      t.is(post.upstreams['ok']!.count(`/order?id=${i}`), 0, 'a POST is never retried after it was sent');
      return;
    }
  }
  t.fail('no POST reached the hung instance');
});

test('a reset after the request was sent: GET retried elsewhere; POST answered 502 and not retried', async (t) => {
  const reset: Parameters<typeof Upstream.start>[1] = (req) => req.socket.destroy();
  const flags = { balancer: 'round-robin' };
  const { upstreams, proxy } = await setup(['reset', 'ok'], flags, { reset });
  const gets = [await proxy.request('/svc/svc1/g1'), await proxy.request('/svc/svc1/g2')];
  t.deepEqual(gets.map((g) => g.status), [200, 200]);
  t.is(upstreams['reset']!.count('/g'), 1);

  const post = await setup(['reset', 'ok'], flags, { reset });
  for (let i = 0; i < 2; i++) {
    const answer = await post.proxy.request(`/svc/svc1/p?id=${i}`, { method: 'POST', body: 'x' });
    if (answer.status !== 200) {
      t.is(answer.status, 502);
      t.is(JSON.parse(answer.body).error, 'upstream_unavailable');
      t.is(post.upstreams['ok']!.count(`/p?id=${i}`), 0);
      return;
    }
  }
  t.fail('no POST reached the resetting instance');
});

test('a kept-alive connection the instance closes as the request arrives: an idempotent request is sent again on a new connection, not failed or counted against the instance; a POST is not', async (t) => {
  // Each connection serves its first request and is closed when the next one arrives: what a
  // reused connection meets when the instance's keep-alive timeout fired just before (or when
  // the proxy was paused past it, and the close is read only after the request went out).
  const served = new WeakMap<object, number>();
  const closing: Parameters<typeof Upstream.start>[1] = (req, res) => {
    const n = (served.get(req.socket) ?? 0) + 1;
    served.set(req.socket, n);
    if (n > 1) return void req.socket.destroy();
    res.setHeader('connection', 'keep-alive');
    res.end('ok');
  };
  // zkroute's engine (whatever ZKROUTE_HTTP_ENGINE says): the node engine's undici pool does not
  // tell a reused connection from a new one, and fails such a try over to another instance.
  const { upstreams, proxy } = await setup(['closing'], { retries: '0', 'http-engine': 'zkroute' }, { closing });
  const gets = [];
  for (let i = 0; i < 5; i++) gets.push(await proxy.request(`/svc/svc1/g${i}`));
  t.deepEqual(gets.map((g) => g.status), [200, 200, 200, 200, 200], 'every GET answered although only one instance and no retries');
  t.is(upstreams['closing']!.count('/g'), 9, 'each GET after the first met a closing connection once, then a new one');
  t.is(await metricValue(proxy, 'zkroute_ejections_total', { service: 'svc1' }) ?? 0, 0, 'not a failure of the instance');
  const post = await proxy.request('/svc/svc1/p', { method: 'POST', body: 'x' });
  t.is(post.status, 502, 'a POST that may have been read is not sent twice');
  t.is(upstreams['closing']!.count('/p'), 1);
});

test('an instance that closes each connection right after its answer: a waiting POST gets a new connection, not the closed one', async (t) => {
  // The answer says keep-alive, but the close follows it at once: both are in the proxy's socket
  // buffer together (as after a pause). A request queued for the connection (one connection per
  // instance here) must not be written on it before that close is read.
  let requests = 0;
  const server = createNetServer((socket) => {
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      const end = buffered.indexOf('\r\n\r\n');
      if (end === -1) return;
      const length = Number(/content-length: *(\d+)/i.exec(buffered.slice(0, end))?.[1] ?? 0);
      if (buffered.length < end + 4 + length) return;
      requests += 1;
      socket.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  suite.defer(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const base = uniquePath('providers');
  await register(suite.zk, base, 'svc1', 'closer', `127.0.0.1:${(server.address() as AddressInfo).port}`);
  const proxy = await startProxy(suite.server.connectString, base, { retries: '0', 'max-connections-per-instance': '1', 'http-engine': 'zkroute' });
  suite.defer(() => proxy.close());
  const posts = await Promise.all(Array.from({ length: 6 }, (_, i) => proxy.request(`/svc/svc1/p${i}`, { method: 'POST', body: `x${i}` })));
  t.deepEqual(posts.map((p) => p.status), [200, 200, 200, 200, 200, 200]);
  t.is(requests, 6, 'each POST sent once');
});

test('an instance answering 503 is ejected after --consecutive-5xx; when all are ejected, panic mode still routes', async (t) => {
  const unavailable: Parameters<typeof Upstream.start>[1] = (_req, res) => res.writeHead(503).end('bad');
  const { upstreams, proxy, instanceOf } = await setup(['bad', 'ok'], { 'consecutive-5xx': '3', balancer: 'round-robin', 'ejection-base': '30s' }, { bad: unavailable });
  const statuses: number[] = [];
  for (let i = 0; i < 20; i++) statuses.push((await proxy.request(`/svc/svc1/r${i}`)).status);
  t.is(upstreams['bad']!.seen.length, 3, 'ejected after exactly 3 consecutive 503s');
  t.is(statuses.filter((s) => s === 503).length, 3, '5xx responses are passed through, not retried');
  t.true(proxy.app.health.isEjected(instanceOf('bad')));

  const panic = await setup(['bad1', 'bad2'], { 'consecutive-5xx': '2', 'max-ejection-percent': '100', 'ejection-base': '30s' }, { bad1: unavailable, bad2: unavailable });
  for (let i = 0; i < 4; i++) await panic.proxy.request('/svc/svc1/x');
  t.true(panic.proxy.app.health.isEjected(panic.instanceOf('bad1')) && panic.proxy.app.health.isEjected(panic.instanceOf('bad2')));
  const res = await panic.proxy.request('/svc/svc1/during-panic');
  t.is(res.status, 503);
  t.is(res.body, 'bad', 'the instance answered (panic mode), not the proxy with no_providers');
  t.is(panic.proxy.app.health.stats().panicsTotal, 1);
});

test('--max-ejection-percent 50 keeps at least half of the instances in rotation', async (t) => {
  // Servers that reset every request (not closed ports, which another test could reuse).
  const reset: Parameters<typeof Upstream.start>[1] = (req) => req.socket.destroy();
  const { proxy } = await setup(['h1', 'h2', 'h3', 'h4'], { retries: '3' }, { h1: reset, h2: reset, h3: reset, h4: reset });
  const res = await proxy.request('/svc/svc1/x');
  t.is(res.status, 502, res.body);
  t.regex(JSON.parse(res.body).message, /4 tries/);
  t.is(proxy.app.health.stats().ejectionsTotal, 2, 'only 2 of 4 ejected');
  t.is(proxy.app.health.stats().ejectionsSkippedByPercent, 2);
});

test('a client that aborts: the upstream sees its request closed within 100 ms, and it is not retried', async (t) => {
  // Reads whatever body arrives and never answers.
  const { upstreams, proxy, instanceOf } = await setup(['slow'], {}, { slow: (req) => req.resume() });
  const abortedAt = await new Promise<number>((resolve) => {
    const req = httpRequest(`${proxy.origin}/svc/svc1/slow`, { agent: false });
    req.on('error', () => {});
    req.end();
    void waitFor('upstream to get the request', () => upstreams['slow']!.seen.length === 1).then(() => {
      req.destroy();
      resolve(Date.now());
    });
  });
  const seen = await waitFor('upstream request to close', () => upstreams['slow']!.seen[0]!.closedAt, 2000, 5);
  t.true(seen - abortedAt < 100, `closed ${seen - abortedAt} ms after the client left`);
  t.log(`GET: upstream request closed ${seen - abortedAt} ms after the client left`);
  t.is(upstreams['slow']!.seen.length, 1, 'not retried');
  t.false(proxy.app.health.isEjected(instanceOf('slow')), 'a client abort does not count against the instance');

  // Half a streamed POST, then the client goes: the upstream's request is closed too.
  const half = await new Promise<number>((resolve) => {
    const req = httpRequest(`${proxy.origin}/svc/svc1/upload`, { method: 'POST', agent: false, headers: { 'content-length': String(1024 * 1024) } });
    req.on('error', () => {});
    req.write(Buffer.alloc(256 * 1024));
    void waitFor('upstream to get the upload', () => upstreams['slow']!.seen.length === 2).then(() => {
      req.destroy();
      resolve(Date.now());
    });
  });
  const closed = await waitFor('upload to close upstream', () => upstreams['slow']!.seen[1]!.closedAt, 2000, 5);
  t.true(closed - half < 100, `upload closed ${closed - half} ms after the client left`);
  t.log(`streamed upload: upstream request closed ${closed - half} ms after the client left`);
  t.is(upstreams['slow']!.seen.length, 2, 'not retried');
});

test('an instance that leaves ZooKeeper and comes back under a new znode gets traffic again, with a clean record', async (t) => {
  const refuse: Parameters<typeof Upstream.start>[1] = (req) => req.socket.destroy();
  const { base, upstreams, proxy, instanceOf } = await setup(['a', 'b'], { 'ejection-base': '60s', balancer: 'round-robin' }, { b: refuse });
  for (let i = 0; i < 4; i++) await proxy.request(`/svc/svc1/warm${i}`);
  const ejected = instanceOf('b');
  t.true(proxy.app.health.isEjected(ejected));
  await suite.zk.delete(`${base}/svc1/b`);
  await waitFor('b gone from the table', () => proxy.app.discovery.instances('svc1')?.length === 1);
  t.false(proxy.app.health.isEjected(ejected), 'its health record went with it');
  upstreams['b']!.handler = echoHandler('b');
  await register(suite.zk, base, 'svc1', 'b-again', upstreams['b']!.address);
  await waitFor('b back in the table', () => proxy.app.discovery.instances('svc1')?.length === 2);
  const before = upstreams['b']!.count('/again');
  for (let i = 0; i < 4; i++) t.is((await proxy.request(`/svc/svc1/again${i}`)).status, 200);
  t.true(upstreams['b']!.count('/again') > before, 'the re-registered instance is used');
});
