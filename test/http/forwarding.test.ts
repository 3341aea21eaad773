import test from 'ava';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { WebSocket } from 'ws';
import { connectZk, type ZkClient } from '../../src/zookeeper/client.js';
import { nodeRequest, register, startProxy, type RunningProxy } from '../helpers/proxy.js';
import { Upstream } from '../helpers/upstream.js';
import { nextEvent, waitFor } from '../helpers/wait.js';
import { uniquePath } from '../helpers/zk.js';
import { ZooKeeperServer } from '../helpers/zookeeper-server.js';

let server: ZooKeeperServer;
let zk: ZkClient;
let proxy: RunningProxy;
const upstreams: Upstream[] = [];
const base = uniquePath('providers');

test.before(async () => {
  server = await ZooKeeperServer.start();
  zk = await connectZk({ connectString: server.connectString, sessionTimeoutMs: 20_000 });
  for (const name of ['a', 'b', 'c']) {
    const upstream = await Upstream.start(name);
    upstreams.push(upstream);
    await register(zk, base, 'echo', `echo-${name}`, upstream.address);
  }
  proxy = await startProxy(server.connectString, base);
});

test.after.always(async () => {
  await proxy?.close();
  for (const u of upstreams) await u.close();
  await zk?.close();
  await server?.close();
});

test.serial('600 GETs spread near a third to each of three instances', async (t) => {
  const counts: Record<string, number> = {};
  for (let i = 0; i < 600; i++) {
    const res = await proxy.request(`/svc/echo/spread?i=${i}`);
    t.is(res.status, 200);
    const name = String(res.headers['x-upstream']);
    counts[name] = (counts[name] ?? 0) + 1;
  }
  t.deepEqual(Object.keys(counts).sort(), ['a', 'b', 'c']);
  // Uniform random: each share is 200 +- 5 standard deviations (about 58).
  for (const n of Object.values(counts)) t.true(n > 140 && n < 260, `share ${n} of 600`);
});

test('prefix stripped, query kept; /svc/<service> alone goes to /', async (t) => {
  const res = await proxy.request('/svc/echo/a/b%20c?x=1&y=%2F');
  t.is(res.status, 200);
  t.is(JSON.parse(res.body).url, '/a/b%20c?x=1&y=%2F');
  t.is(JSON.parse((await proxy.request('/svc/echo')).body).url, '/');
  t.is(JSON.parse((await proxy.request('/svc/echo?q=1')).body).url, '/?q=1');
  t.is(JSON.parse((await proxy.request('/svc/%65cho/enc')).body).url, '/enc', 'service segment is percent-decoded');
});

test('request headers: X-Forwarded-*, Host rewritten, hop-by-hop stripped', async (t) => {
  const res = await nodeRequest(`${proxy.origin}/svc/echo/headers`, {
    headers: {
      'x-forwarded-for': '10.0.0.1',
      connection: 'keep-alive, X-Secret',
      'x-secret': 'hidden',
      'keep-alive': 'timeout=9',
      te: 'trailers',
      'proxy-authorization': 'Basic Zm9vOmJhcg==',
      'x-kept': 'yes',
    },
  });
  const seen = JSON.parse(res.body) as { headers: Record<string, string>; upstream: string };
  const upstream = upstreams.find((u) => u.name === seen.upstream)!;
  t.is(seen.headers['x-forwarded-for'], '10.0.0.1, 127.0.0.1');
  t.is(seen.headers['x-forwarded-proto'], 'http');
  t.is(seen.headers['x-forwarded-host'], new URL(proxy.origin).host);
  t.is(seen.headers['x-forwarded-prefix'], '/svc/echo');
  t.is(seen.headers['host'], upstream.address);
  t.is(seen.headers['x-kept'], 'yes');
  for (const name of ['x-secret', 'keep-alive', 'te', 'proxy-authorization', 'proxy-connection', 'upgrade']) t.is(seen.headers[name], undefined, name);
  t.not(seen.headers['connection'], 'keep-alive, X-Secret');
});

test('response headers: hop-by-hop stripped, repeated Set-Cookie kept', async (t) => {
  const res = await proxy.request('/svc/echo/response-headers');
  t.is(res.headers['x-up-secret'], undefined);
  t.is(res.headers['proxy-connection'], undefined);
  t.not(res.headers['keep-alive'], 'timeout=5');
  t.deepEqual(res.headers['set-cookie'], ['a=1', 'b=2']);
  t.truthy(res.headers['x-upstream']);
});

test('--preserve-host sends the caller Host', async (t) => {
  const preserving = await startProxy(server.connectString, base, { 'preserve-host': true });
  try {
    const res = await preserving.request('/svc/echo/host', { headers: { host: 'api.example.test' } });
    t.is(JSON.parse(res.body).headers.host, 'api.example.test');
  } finally {
    await preserving.close();
  }
});

test('POST bodies arrive intact: small (buffered), large and chunked (streamed)', async (t) => {
  for (const size of [0, 1, 1000, 64 * 1024, 64 * 1024 + 1, 3 * 1024 * 1024]) {
    const body = Buffer.alloc(size);
    for (let i = 0; i < size; i++) body[i] = (i * 7) % 251;
    const res = await proxy.request('/svc/echo/upload', { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
    const seen = JSON.parse(res.body);
    t.is(seen.bodyLength, size, `size ${size}`);
    t.is(seen.bodySha256, createHash('sha256').update(body).digest('hex'));
  }
  // Chunked: no Content-Length.
  async function* chunks() {
    for (let i = 0; i < 10; i++) yield Buffer.alloc(10_000, i);
  }
  const res = await proxy.request('/svc/echo/chunked', { method: 'PUT', body: chunks() } as never);
  t.is(JSON.parse(res.body).bodyLength, 100_000);
});

test('a large response streams through intact', async (t) => {
  const bytes = 20 * 1024 * 1024 + 3;
  const res = await fetch(`${proxy.origin}/svc/echo/big?bytes=${bytes}`);
  t.is(res.status, 200);
  let received = 0;
  for await (const chunk of res.body!) {
    received += (chunk as Uint8Array).length;
    for (const byte of chunk as Uint8Array) if (byte !== 122) return t.fail('corrupted byte');
  }
  t.is(received, bytes);
});

test('backpressure: a client that stops reading stops the instance sending; reading again resumes it', async (t) => {
  const bytes = 64 * 1024 * 1024;
  let sent = 0;
  let finished = false;
  const big = createServer((_req, res) => {
    res.writeHead(200, { 'content-length': String(bytes) });
    const chunk = Buffer.alloc(256 * 1024, 'z');
    const pump = () => {
      while (sent < bytes) {
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end(() => (finished = true));
    };
    pump();
  });
  await new Promise<void>((resolve) => big.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => {
    big.closeAllConnections();
    big.close(() => resolve());
  }));
  await register(zk, base, 'big', 'b1', `127.0.0.1:${(big.address() as AddressInfo).port}`);
  const socket = connect(proxy.app.address().port, '127.0.0.1');
  let received = 0;
  socket.on('data', (c: Buffer) => (received += c.length));
  socket.write('GET /svc/big/x HTTP/1.1\r\nhost: p\r\n\r\n');
  await waitFor('the first bytes', () => received > 0, 5000, 5);
  socket.pause();
  // Kernel buffers and one chunk in flight at each hop are all that can pile up.
  await waitFor('the instance held back', async () => {
    const before = sent;
    await new Promise((r) => setTimeout(r, 100));
    return sent === before;
  }, 5000, 0);
  t.false(finished);
  t.true(sent < bytes / 2, `sent ${sent} of ${bytes} while the client was not reading`);
  socket.resume();
  await waitFor('the whole body', () => received >= bytes, 20_000, 10);
  t.true(finished);
  socket.destroy();
});

test('HEAD and 204 responses have no body and keep the connection usable', async (t) => {
  const head = await proxy.request('/svc/echo/x', { method: 'HEAD' });
  t.is(head.status, 200);
  t.is(head.body, '');
  const noContent = await proxy.request('/svc/echo/status/204');
  t.is(noContent.status, 204);
  t.is((await proxy.request('/svc/echo/after')).status, 200);
});

test('a WebSocket echo works through the proxy, with the prefix stripped', async (t) => {
  const ws = new WebSocket(`ws://127.0.0.1:${proxy.app.address().port}/svc/echo/chat?room=1`);
  await nextEvent(ws, 'open');
  ws.send('hello');
  const data = await nextEvent<Buffer>(ws, 'message');
  t.regex(data.toString(), /^[abc]:hello$/);
  const name = data.toString()[0];
  const upstream = upstreams.find((u) => u.name === name)!;
  const seen = upstream.seen.filter((s) => s.method === 'WS').at(-1)!;
  t.is(seen.url, '/chat?room=1');
  t.is(seen.headers['x-forwarded-prefix'], '/svc/echo');
  t.is(seen.headers['host'], upstream.address);
  ws.close();
  await nextEvent(ws, 'close');
});

test('a WebSocket to an unknown service gets the JSON error', async (t) => {
  const ws = new WebSocket(`ws://127.0.0.1:${proxy.app.address().port}/svc/nope/chat`);
  ws.on('error', () => {});
  const response = await new Promise<{ statusCode?: number; body: string }>((resolve) => {
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ statusCode: res.statusCode, body }));
    });
  });
  t.is(response.statusCode, 404);
  t.like(JSON.parse(response.body), { error: 'unknown_service', service: 'nope' });
  ws.terminate();
});

test('instances registered by host name (localhost) and by IPv6 address are reached', async (t) => {
  const v6 = await Upstream.start('v6', undefined, '::1');
  const named = await Upstream.start('named');
  try {
    await register(zk, base, 'mixed-hosts', 'v6', v6.address);
    await register(zk, base, 'mixed-hosts', 'named', `localhost:${named.port}`);
    const seen = new Set<string>();
    for (let i = 0; i < 40 && seen.size < 2; i++) {
      const res = await proxy.request('/svc/mixed-hosts/x');
      t.is(res.status, 200);
      seen.add(String(res.headers['x-upstream']));
    }
    t.deepEqual([...seen].sort(), ['named', 'v6']);
    t.is(v6.seen.at(-1)?.headers.host ?? `[::1]:${v6.port}`, `[::1]:${v6.port}`);
    t.is(named.seen.at(-1)?.headers.host ?? `localhost:${named.port}`, `localhost:${named.port}`);
  } finally {
    await v6.close();
    await named.close();
  }
});
