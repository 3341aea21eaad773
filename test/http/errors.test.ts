import test from 'ava';
import { jsonBody, rawExchange } from '../helpers/raw.js';
import { connectZk, type ZkClient } from '../../src/zookeeper/client.js';
import { register, startProxy, type RunningProxy } from '../helpers/proxy.js';
import { Upstream } from '../helpers/upstream.js';
import { uniquePath } from '../helpers/zk.js';
import { ZooKeeperServer } from '../helpers/zookeeper-server.js';

let server: ZooKeeperServer;
let zk: ZkClient;
let proxy: RunningProxy;
let upstream: Upstream;
const base = uniquePath('providers');

test.before(async () => {
  server = await ZooKeeperServer.start();
  zk = await connectZk({ connectString: server.connectString, sessionTimeoutMs: 20_000 });
  upstream = await Upstream.start('a');
  await register(zk, base, 'api', 'a', upstream.address);
  await zk.mkdirp(`${base}/empty`);
  proxy = await startProxy(server.connectString, base, { 'header-timeout': '500ms' });
});

test.after.always(async () => {
  await proxy?.close();
  await upstream?.close();
  await zk?.close();
  await server?.close();
});

/** Writes raw bytes to the proxy and returns everything it answers until it closes (bounded). */
const raw = (payload: string | string[], gapMs = 0, timeoutMs = 5000) => rawExchange(proxy.app.address().port, payload, gapMs, timeoutMs);

const invalid = ['/svc/', '/svc', '/svc/..', '/svc/.', '/svc/%2e%2e/x', '/svc/%2E/x', '/svc/a%00b/x', `/svc/${'x'.repeat(129)}/y`, '/svc/bad$name/x', '/svc/a%2Fb/x', '/svc/%zz/x'];
for (const path of invalid) {
  test(`400 invalid_service for ${path.length > 40 ? `${path.slice(0, 40)}...` : path}`, async (t) => {
    // Raw bytes: URL-normalising clients would resolve the dot segments before sending.
    const { text } = await raw(`GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
    t.regex(text, /^HTTP\/1\.1 400 /);
    const body = jsonBody(text);
    t.is(body['error'], 'invalid_service');
    t.is(typeof body['message'], 'string');
    t.true('service' in body);
  });
}

test('a 128-character name is valid (404 unknown, not 400)', async (t) => {
  const res = await proxy.request(`/svc/${'x'.repeat(128)}/y`);
  t.is(res.status, 404);
});

test('404 not_routed outside the prefix', async (t) => {
  for (const path of ['/', '/other/x', '/svcfoo/x', '/SVC/api/x']) {
    const res = await proxy.request(path);
    t.is(res.status, 404, path);
    t.like(JSON.parse(res.body), { error: 'not_routed', service: null });
  }
});

test('404 unknown_service for a service ZooKeeper does not list', async (t) => {
  const res = await proxy.request('/svc/nope/x');
  t.is(res.status, 404);
  t.deepEqual(JSON.parse(res.body), { error: 'unknown_service', message: 'service nope is not registered in ZooKeeper', service: 'nope' });
  t.is(res.headers['content-type'], 'application/json');
});

test('503 no_providers with Retry-After for a service with no instance', async (t) => {
  const res = await proxy.request('/svc/empty/x');
  t.is(res.status, 503);
  t.like(JSON.parse(res.body), { error: 'no_providers', service: 'empty' });
  t.is(res.headers['retry-after'], '1');
});

test('431 for a 20 KB header, and the proxy keeps serving', async (t) => {
  const { text } = await raw(`GET /svc/api/x HTTP/1.1\r\nHost: a\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`);
  t.regex(text, /^HTTP\/1\.1 431 /);
  t.is(jsonBody(text)['error'], 'headers_too_large');
  t.is((await proxy.request('/svc/api/ok')).status, 200);
});

test('408 for slow headers (one line every 300 ms) at the header timeout', async (t) => {
  const lines = ['GET /svc/api/slowloris HTTP/1.1\r\n', 'Host: a\r\n', ...Array.from({ length: 20 }, (_, i) => `X-Drip-${i}: 1\r\n`)];
  const { text, elapsedMs } = await raw(lines, 300);
  t.regex(text, /^HTTP\/1\.1 408 /);
  t.is(jsonBody(text)['error'], 'request_timeout');
  t.true(elapsedMs < 3000, `answered after ${elapsedMs} ms`);
  t.is(upstream.count('/slowloris'), 0);
});

const smuggling: Record<string, string> = {
  'Content-Length with Transfer-Encoding': 'POST /svc/api/smuggle1 HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  'two different Content-Lengths': 'POST /svc/api/smuggle2 HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde',
  'Transfer-Encoding: xchunked': 'POST /svc/api/smuggle3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n',
  'obs-fold header': 'GET /svc/api/smuggle4 HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n b\r\n\r\n',
};
for (const [name, payload] of Object.entries(smuggling)) {
  test(`400 and close for request smuggling: ${name}; the upstream sees nothing`, async (t) => {
    const { text } = await raw(payload);
    t.regex(text, /^HTTP\/1\.1 400 /);
    t.is(jsonBody(text)['error'], 'bad_request');
    t.is(upstream.count('/smuggle'), 0);
  });
}
