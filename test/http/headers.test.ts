import test from 'ava';
import { clientResponseRawHeaders, upstreamRequestHeaders } from '../../src/http/headers.js';

const ctx = { peer: '127.0.0.9', proto: 'http' as const, prefix: '/svc/a', host: '10.0.0.5:8080' };

test('request: hop-by-hop and Connection-named headers removed, X-Forwarded-* set', (t) => {
  const out = upstreamRequestHeaders({
    host: 'proxy:4700', connection: 'keep-alive, X-A, x-b', 'x-a': '1', 'x-b': '2', 'keep-alive': 'timeout=3', te: 'trailers',
    trailer: 'x', 'transfer-encoding': 'chunked', upgrade: 'h2c', 'proxy-authorization': 'p', 'proxy-connection': 'k',
    expect: '100-continue', 'x-forwarded-for': '1.1.1.1, 2.2.2.2', 'x-forwarded-proto': 'https', authorization: 'Bearer t', 'content-length': '5',
  }, ctx);
  t.deepEqual(out, {
    authorization: 'Bearer t',
    'content-length': '5',
    host: '10.0.0.5:8080',
    'x-forwarded-for': '1.1.1.1, 2.2.2.2, 127.0.0.9',
    'x-forwarded-proto': 'http',
    'x-forwarded-host': 'proxy:4700',
    'x-forwarded-prefix': '/svc/a',
  });
});

test('request: a WebSocket handshake keeps Upgrade and Connection: upgrade', (t) => {
  const out = upstreamRequestHeaders({ host: 'p', connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': 'k' }, { ...ctx, upgrade: true });
  t.is(out['upgrade'], 'websocket');
  t.is(out['connection'], 'upgrade');
  t.is(out['sec-websocket-key'], 'k');
});

test('response: hop-by-hop removed, Set-Cookie arrays kept', (t) => {
  const raw = ['Connection', 'X-Up', 'X-Up', '1', 'Keep-Alive', 'timeout=5', 'Transfer-Encoding', 'chunked', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'Content-Type', 'text/plain', 'Proxy-Authenticate', 'x'].map((v) => Buffer.from(v));
  const out = clientResponseRawHeaders(raw);
  const headers: Record<string, string | string[]> = {};
  for (let i = 0; i < out.length; i += 2) {
    const name = out[i]!.toLowerCase();
    const prior = headers[name];
    headers[name] = prior === undefined ? out[i + 1]! : [prior as string, out[i + 1]!].flat();
  }
  t.deepEqual(headers, { 'set-cookie': ['a=1', 'b=2'], 'content-type': 'text/plain' });
});
