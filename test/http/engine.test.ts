// The caller side of HTTP/1.1 as raw bytes: pipelining, HTTP/1.0 and 1.1 keep-alive, Expect,
// framing of answers for each version, chunked uploads, and what is handed to Node's server.
// Run on both engines (CI sets ZKROUTE_HTTP_ENGINE=node for the second run).
import test from 'ava';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { connectZk, type ZkClient } from '../../src/zookeeper/client.js';
import { rawExchange } from '../helpers/raw.js';
import { register, startProxy, type RunningProxy } from '../helpers/proxy.js';
import { Upstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/wait.js';
import { uniquePath } from '../helpers/zk.js';
import { ZooKeeperServer } from '../helpers/zookeeper-server.js';

let server: ZooKeeperServer;
let zk: ZkClient;
let proxy: RunningProxy;
let upstream: Upstream;
const base = uniquePath('engine');

test.before(async () => {
  server = await ZooKeeperServer.start();
  zk = await connectZk({ connectString: server.connectString, sessionTimeoutMs: 20_000 });
  upstream = await Upstream.start('a', (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const body = JSON.stringify({ url: req.url, method: req.method, body: Buffer.concat(chunks).toString(), te: req.headers['transfer-encoding'] ?? null, cl: req.headers['content-length'] ?? null });
      const delay = Number(url.searchParams.get('ms') ?? 0);
      setTimeout(() => {
        // /chunked answers without a length: the caller side chooses the framing.
        if (url.pathname === '/chunked') {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.write(body.slice(0, 5));
          res.end(body.slice(5));
        } else res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
      }, delay);
    });
  });
  await register(zk, base, 'api', 'a', upstream.address);
  proxy = await startProxy(server.connectString, base, { services: 'api', 'header-timeout': '1s' });
  await waitFor('the instance', () => proxy.app.discovery.instances('api')?.length === 1);
});

test.after.always(async () => {
  await proxy?.close();
  await upstream?.close();
  await zk?.close();
  await server?.close();
});

/** Reads from `socket` until `count` whole responses (by Content-Length or chunked) arrived. */
async function readResponses(socket: Socket, count: number, timeoutMs = 5000): Promise<string[]> {
  let text = '';
  const deadline = Date.now() + timeoutMs;
  const responses: string[] = [];
  while (responses.length < count && Date.now() < deadline) {
    const [chunk] = (await Promise.race([once(socket, 'data'), once(socket, 'close').then(() => [Buffer.alloc(0)])])) as [Buffer];
    if (chunk.length === 0 && socket.destroyed) break;
    text += chunk.toString('latin1');
    for (;;) {
      const end = text.indexOf('\r\n\r\n');
      if (end === -1) break;
      const head = text.slice(0, end);
      const length = /content-length: (\d+)/i.exec(head);
      let total: number;
      if (length) total = end + 4 + Number(length[1]);
      else if (/transfer-encoding: chunked/i.test(head)) {
        const last = text.indexOf('\r\n0\r\n\r\n', end);
        if (last === -1) break;
        total = last + 7;
      } else total = end + 4;
      if (text.length < total) break;
      responses.push(text.slice(0, total));
      text = text.slice(total);
    }
  }
  return responses;
}

test('pipelined requests are answered in order, each once, even when the first is the slowest', async (t) => {
  const socket = connect(proxy.app.address().port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write('GET /svc/api/one?ms=150 HTTP/1.1\r\nHost: a\r\n\r\nGET /svc/api/two HTTP/1.1\r\nHost: a\r\n\r\nPOST /svc/api/three HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc');
  const responses = await readResponses(socket, 3);
  socket.destroy();
  t.is(responses.length, 3);
  t.regex(responses[0]!, /"url":"\/one\?ms=150"/);
  t.regex(responses[1]!, /"url":"\/two"/);
  t.regex(responses[2]!, /"url":"\/three","method":"POST","body":"abc"/);
});

test('HTTP/1.0: closed after the answer unless keep-alive was asked for; a length-less answer is read until close', async (t) => {
  const plain = await rawExchange(proxy.app.address().port, 'GET /svc/api/x HTTP/1.0\r\n\r\n');
  t.regex(plain.text, /^HTTP\/1\.1 200 /);
  t.regex(plain.text, /"url":"\/x"/);
  const chunked = await rawExchange(proxy.app.address().port, 'GET /svc/api/chunked HTTP/1.0\r\n\r\n');
  t.regex(chunked.text, /^HTTP\/1\.1 200 /);
  t.notRegex(chunked.text, /transfer-encoding/i, 'no chunked framing for an HTTP/1.0 caller');
  t.regex(chunked.text, /\r\n\r\n\{"url":"\/chunked".*\}$/);
  const socket = connect(proxy.app.address().port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write('GET /svc/api/ka1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
  const [first] = await readResponses(socket, 1);
  t.regex(first ?? '', /connection: keep-alive/i);
  socket.write('GET /svc/api/ka2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
  const [second] = await readResponses(socket, 1);
  t.regex(second ?? '', /"url":"\/ka2"/, 'the same connection served a second request');
  socket.destroy();
});

test('HTTP/1.1: an answer without a length is chunked to the caller; Connection: close is honoured', async (t) => {
  const { text } = await rawExchange(proxy.app.address().port, 'GET /svc/api/chunked HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  t.regex(text, /^HTTP\/1\.1 200 /);
  t.regex(text, /transfer-encoding: chunked/i);
  t.regex(text, /connection: close/i);
  const body = text.slice(text.indexOf('\r\n\r\n') + 4);
  // Decode the chunks: the upstream's body, whole.
  let decoded = '';
  let rest = body;
  for (;;) {
    const eol = rest.indexOf('\r\n');
    const size = parseInt(rest.slice(0, eol), 16);
    if (!size) break;
    decoded += rest.slice(eol + 2, eol + 2 + size);
    rest = rest.slice(eol + 2 + size + 2);
  }
  t.regex(decoded, /^\{"url":"\/chunked".*\}$/);
});

test('a chunked upload arrives whole; Expect: 100-continue gets its 100 first', async (t) => {
  const socket = connect(proxy.app.address().port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write('POST /svc/api/up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n');
  const [interim] = (await once(socket, 'data')) as [Buffer];
  t.regex(interim.toString(), /^HTTP\/1\.1 100 Continue\r\n\r\n/);
  socket.write('5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n');
  const [answer] = await readResponses(socket, 1);
  socket.destroy();
  t.regex(answer ?? '', /"method":"POST","body":"hello world"/);
});

test('refused before anything is forwarded: an HTTP/1.1 request without Host, an unknown Expect', async (t) => {
  const noHost = await rawExchange(proxy.app.address().port, 'GET /svc/api/nohost HTTP/1.1\r\n\r\n');
  t.regex(noHost.text, /^HTTP\/1\.1 400 /);
  const expect = await rawExchange(proxy.app.address().port, 'POST /svc/api/expect HTTP/1.1\r\nHost: a\r\nExpect: fancy\r\nContent-Length: 1\r\n\r\nx');
  t.regex(expect.text, /^HTTP\/1\.1 417 /);
  t.is(upstream.count('/nohost') + upstream.count('/expect'), 0);
});

test('a second request on a connection after a WebSocket-less upgrade request and a 0.9 line: handed over whole, still answered', async (t) => {
  // An Upgrade the instance does not take (plain HTTP server): the caller gets an answer, the proxy keeps serving.
  const upgraded = await rawExchange(proxy.app.address().port, 'GET /svc/api/ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n', 0, 3000);
  t.regex(upgraded.text, /^HTTP\/1\.1 \d{3} /);
  const after = await proxy.request('/svc/api/after');
  t.is(after.status, 200);
});

test('an HTTP/2.0 or HTTP/0.9-style request line on HTTP/1 is not served by the engine itself, yet answered (Node\'s server takes it, bytes intact)', async (t) => {
  const v2 = await rawExchange(proxy.app.address().port, 'GET /svc/api/v2 HTTP/2.0\r\nHost: a\r\n\r\n', 0, 3000);
  t.regex(v2.text, /^HTTP\/1\.1 \d{3} /);
  t.regex(v2.text, /"url":"\/v2"/, 'the whole message reached the handler on the other side');
  t.is((await proxy.request('/svc/api/still')).status, 200);
});
