// Thrift mode over a real ZooKeeper, with Apache Thrift's Node library as client and server:
// every call balanced on its own, in the caller's transport and protocol.
import test from 'ava';
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { encodeApplicationException } from '../../src/thrift/codec.js';
import { metricValue, type RunningProxy, startProxy } from '../helpers/proxy.js';
import { zookeeperSuite } from '../helpers/suite.js';
import { connectThrift, startThriftServer, type ThriftServer, type ThriftWire } from '../helpers/thrift.js';
import { waitFor } from '../helpers/wait.js';
import { seededRandom } from '../helpers/instances.js';
import { uniquePath } from '../helpers/zk.js';

const suite = zookeeperSuite(test);

async function registerSequential(base: string, service: string, address: string): Promise<string> {
  await suite.zk.mkdirp(base);
  return suite.zk.create(`${base}/${service}`, address, { ephemeral: true, sequential: true });
}

async function servers(names: string[], w: ThriftWire & { oneConnection?: boolean } = {}): Promise<ThriftServer[]> {
  const list = await Promise.all(names.map((n) => startThriftServer(n, w)));
  for (const s of list) suite.defer(() => s.close());
  return list;
}

async function thriftProxy(base: string, flags: Record<string, string> = {}): Promise<{ proxy: RunningProxy; port: number }> {
  const proxy = await startProxy(suite.server.connectString, base, { layout: 'sequential', thrift: '127.0.0.1:0=example-service', ...flags });
  suite.defer(() => proxy.close());
  return { proxy, port: proxy.app.addresses().thrift[0]!.port };
}


const WIRES: (ThriftWire & { label: string })[] = [
  { label: 'buffered + binary', transport: 'buffered', protocol: 'binary' },
  { label: 'buffered + lax binary', transport: 'buffered', protocol: 'binary-lax' },
  { label: 'buffered + compact', transport: 'buffered', protocol: 'compact' },
  { label: 'framed + binary', transport: 'framed', protocol: 'binary' },
  { label: 'framed + compact', transport: 'framed', protocol: 'compact' },
];

for (const w of WIRES) {
  test(`${w.label}: 300 calls on one caller connection are spread over three instances`, async (t) => {
    const base = uniquePath('services');
    // The seed's case: servers that serve one connection at a time (TSimpleServer).
    const list = await servers(['s1', 's2', 's3'], { ...w, oneConnection: w.label === 'buffered + binary' });
    for (const s of list) await registerSequential(base, 'example-service', s.address);
    const { proxy, port } = await thriftProxy(base);
    const client = await connectThrift(port, w);
    const served = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      const answer = await client.echo(`c${i}`);
      t.is(answer.slice(3), `c${i}`);
      served.set(answer.slice(0, 2), (served.get(answer.slice(0, 2)) ?? 0) + 1);
    }
    client.close();
    t.log(`${w.label}: ${[...served].map(([n, c]) => `${n} ${c}`).join(', ')}`);
    t.is(served.size, 3, 'every instance got calls');
    for (const n of served.values()) t.true(n >= 50, `a fair share each (${[...served.values()].join('/')})`);
    t.is(await metricValue(proxy, 'zkroute_thrift_calls_total', { service: 'example-service', method: 'echo', outcome: 'ok' }), 300);
    // One call in flight at a time: one upstream connection per instance, reused.
    for (const s of list) t.is(s.connections(), 1, `${s.name}: one connection, reused`);
    // The dashboard's per-instance count of those connections (/stats).
    type Stats = { services: { name: string; requestsLastMinute: number; instances: { thriftConnections: number }[] }[] };
    const service = async () => ((await (await fetch(`http://127.0.0.1:${proxy.app.adminAddress().port}/stats`)).json()) as Stats).services.find((s) => s.name === 'example-service')!;
    t.deepEqual((await service()).instances.map((i) => i.thriftConnections), [1, 1, 1]);
    // Complete seconds only: the last calls count once their second is over.
    await waitFor('every call in the dashboard figures', async () => (await service()).requestsLastMinute === 300, 3000);
  });
}

test('an instance killed between calls: 0 failed calls; killed during a call: that call gets a TApplicationException, the next succeeds', async (t) => {
  const base = uniquePath('services');
  const [a, b] = await servers(['a', 'b']);
  await registerSequential(base, 'example-service', a!.address);
  await registerSequential(base, 'example-service', b!.address);
  const { proxy, port } = await thriftProxy(base, { 'try-timeout': '2s' });
  const client = await connectThrift(port);
  for (let i = 0; i < 20; i++) await client.echo(`warm${i}`);
  const before = (await metricValue(proxy, 'zkroute_thrift_upstream_connections'))!;
  await a!.close(); // its znode stays: the proxy must find out by itself
  await waitFor('the proxy seeing the closed connection', async () => (await metricValue(proxy, 'zkroute_thrift_upstream_connections'))! < before);
  for (let i = 0; i < 30; i++) t.regex(await client.echo(`after${i}`), /^b:/, 'every call answered by the instance left');

  // A call in flight when its instance dies.
  const c = await startThriftServer('c');
  suite.defer(() => c.close());
  await b!.close();
  await registerSequential(base, 'example-service', c.address);
  await waitFor('c serving', async () => (await client.echo('x')).startsWith('c:'), 10_000, 50);
  const hanging = client.call('hang', 'h');
  await waitFor('the hang call at c', () => c.calls() >= 2);
  const killedAt = performance.now();
  await c.close();
  const error = await hanging.then(() => undefined, (err: unknown) => err as { message: string; type: number });
  t.log(`the call in flight failed ${(performance.now() - killedAt).toFixed(1)} ms after its instance went`);
  t.truthy(error);
  t.regex(error!.message, /^zkroute: upstream_unavailable/);
  t.is(error!.type, 6, 'INTERNAL_ERROR');
  const d = await startThriftServer('d');
  suite.defer(() => d.close());
  await registerSequential(base, 'example-service', d.address);
  await waitFor('the next call succeeds on the same caller connection', async () => (await client.echo('y').catch(() => '')).startsWith('d:'), 10_000, 50);
  client.close();
});

test('a hung instance: --try-timeout bounds the call; a new instance registered mid-run gets calls from an open connection', async (t) => {
  const base = uniquePath('services');
  const [a] = await servers(['a']);
  await registerSequential(base, 'example-service', a!.address);
  const { port } = await thriftProxy(base, { 'try-timeout': '300ms' });
  const client = await connectThrift(port);
  const started = performance.now();
  const error = await client.call('hang', 'h').then(() => undefined, (err: unknown) => err as { message: string });
  const ms = performance.now() - started;
  t.regex(error!.message, /^zkroute: upstream_timeout/);
  t.true(ms >= 290 && ms < 2000, `answered after ${ms.toFixed(0)} ms`);
  t.regex(await client.echo('still'), /^a:still$/, 'the caller connection is still open');

  const [b] = await servers(['b']);
  await registerSequential(base, 'example-service', b!.address);
  await waitFor('the new instance answering on the same connection', async () => (await client.echo('n')).startsWith('b:'), 10_000, 20);
  client.close();
  t.pass();
});

test('oneway calls, several calls in flight, and a declared exception passing through unchanged', async (t) => {
  const base = uniquePath('services');
  const list = await servers(['a', 'b']);
  for (const s of list) await registerSequential(base, 'example-service', s.address);
  const { proxy, port } = await thriftProxy(base);
  const client = await connectThrift(port);
  await client.call('note', 'first');
  await client.call('note', 'second');
  await waitFor('both notes delivered', () => list.reduce((n, s) => n + s.notes.length, 0) === 2);
  t.deepEqual(list.flatMap((s) => s.notes).sort(), ['first', 'second']);
  t.is(await metricValue(proxy, 'zkroute_thrift_calls_total', { method: 'note', outcome: 'oneway' }), 2);

  // Sent together, without waiting: each reply comes back to its call.
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => client.echo(`p${i}`)));
  answers.forEach((answer, i) => t.regex(answer, new RegExp(`^[ab]:p${i}$`)));

  const failed = await client.call('fail', 'thing').then(() => undefined, (err: unknown) => err as { name: string; what: string });
  t.is(failed?.name, 'NotFound');
  t.regex(failed!.what, /^[ab] has no thing$/);
  t.is(await metricValue(proxy, 'zkroute_thrift_calls_total', { method: 'fail', outcome: 'ok' }), 1, 'a declared exception is a reply');
  client.close();
});

test('unknown and empty services answer every call with a TApplicationException naming the code', async (t) => {
  const base = uniquePath('providers');
  await suite.zk.mkdirp(`${base}/idle`);
  const proxy = await startProxy(suite.server.connectString, base, { thrift: ['127.0.0.1:0=nosuch', '127.0.0.1:0=idle'] } as unknown as Record<string, string>);
  suite.defer(() => proxy.close());
  const [nosuch, idle] = proxy.app.addresses().thrift;
  for (const [route, code] of [[nosuch!, 'unknown_service'], [idle!, 'no_providers']] as const) {
    const client = await connectThrift(route.port);
    for (let i = 0; i < 2; i++) {
      const error = await client.echo('x').then(() => undefined, (err: unknown) => err as { message: string });
      t.regex(error!.message, new RegExp(`^zkroute: ${code}`), route.service);
    }
    client.close();
  }
});

test('bad bytes close the caller connection and are counted: THeader, too deep, too large, garbage; other callers go on', async (t) => {
  const base = uniquePath('services');
  const [a] = await servers(['a']);
  await registerSequential(base, 'example-service', a!.address);
  const { proxy, port } = await thriftProxy(base, { 'thrift-max-message': '4KiB' });
  const healthy = await connectThrift(port);

  const send = (bytes: Buffer) => new Promise<number>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => socket.write(bytes));
    let got = 0;
    socket.on('data', (c: Buffer) => (got += c.length));
    socket.on('error', () => {});
    socket.once('close', () => resolve(got));
  });
  t.is(await send(Buffer.from([0, 0, 0, 20, 0x0f, 0xff, 0, 0, 0, 0, 0, 0])), 0, 'THeader: closed, nothing sent back');
  // A struct nested 100 deep in an unframed strict binary call.
  const head = encodeApplicationException({ transport: 'unframed', protocol: 'binary' }, 'echo', 1, 0, '').subarray(0, 4 + 4 + 4 + 4);
  head.writeUInt32BE(0x80010001, 0); // a CALL, not an exception
  const deep = Buffer.concat([head, Buffer.alloc(100 * 3).fill(0).map((_, i) => [12, 0, 1][i % 3]!), Buffer.alloc(101, 0)]);
  t.is(await send(deep), 0, 'too deep');
  const frame = Buffer.alloc(8);
  frame.writeInt32BE(1024 * 1024, 0);
  frame.writeUInt16BE(0x8001, 4);
  t.is(await send(frame), 0, 'a frame over --thrift-max-message');
  const random = seededRandom(14);
  for (let i = 0; i < 200; i++) {
    const garbage = Buffer.alloc(1 + Math.floor(random() * 64));
    for (let j = 0; j < garbage.length; j++) garbage[j] = Math.floor(random() * 256);
    const socket = connect({ host: '127.0.0.1', port }, () => socket.end(garbage));
    socket.on('error', () => {});
    socket.resume();
    await new Promise((r) => socket.once('close', r));
  }
  const rejected = (reason: string) => metricValue(proxy, 'zkroute_thrift_rejected_total', { service: 'example-service', reason });
  t.is(await rejected('theader'), 1);
  t.is(await rejected('too_deep'), 1);
  t.true((await rejected('too_large'))! >= 1);
  const total = (await Promise.all(['theader', 'too_deep', 'too_large', 'malformed', 'unknown_protocol'].map(rejected))).reduce((n: number, v) => n + (v ?? 0), 0);
  t.log(`rejected connections counted: ${total}`);
  t.true(total >= 100, 'most garbage is refused at once (the rest waits for bytes that never come, and ends with its connection)');
  t.regex(await healthy.echo('still here'), /^a:still here$/, 'another caller is unaffected');
  healthy.close();
});

test('--thrift-idempotent: a method listed is retried after a reset on another instance; others get the error', async (t) => {
  const base = uniquePath('services');
  const [good] = await servers(['good']);
  // An instance that takes the call and drops the connection.
  const { createServer } = await import('node:net');
  const resetter = createServer((socket) => socket.once('data', () => socket.destroy()));
  await new Promise<void>((r) => resetter.listen(0, '127.0.0.1', r));
  suite.defer(() => new Promise<void>((r) => resetter.close(() => r())));
  await registerSequential(base, 'example-service', `127.0.0.1:${(resetter.address() as { port: number }).port}`);
  await registerSequential(base, 'example-service', good!.address);
  for (const idempotent of [true, false]) {
    const { port } = await thriftProxy(base, { balancer: 'round-robin', 'max-ejection-percent': '0', ...(idempotent ? { 'thrift-idempotent': 'echo' } : {}) });
    const client = await connectThrift(port);
    const results = await Promise.all([0, 1, 2, 3].map(async (i) => client.echo(`r${i}`).then((v) => v, (err: unknown) => `error: ${(err as Error).message}`)));
    if (idempotent) t.deepEqual(results, ['good:r0', 'good:r1', 'good:r2', 'good:r3'], 'every call retried on the good instance');
    else t.true(results.some((r) => /^error: zkroute: upstream_unavailable/.test(r)), `a reset call is not retried: ${results.join(', ')}`);
    client.close();
  }
});

test('TApplicationExceptions from an instance count toward --consecutive-5xx; drain answers calls in flight, then closes', async (t) => {
  const base = uniquePath('services');
  const [a, b] = await servers(['a', 'b']);
  await registerSequential(base, 'example-service', a!.address);
  await registerSequential(base, 'example-service', b!.address);
  const { proxy, port } = await thriftProxy(base, { 'consecutive-5xx': '2', balancer: 'round-robin', 'try-timeout': '400ms' });
  const client = await connectThrift(port);
  for (let i = 0; i < 4; i++) {
    const error = await client.call('boom', 'x').then(() => undefined, (err: unknown) => err as { message: string });
    t.regex(error!.message, /blew up$/, 'the instance\'s own exception passes through');
  }
  t.true(proxy.app.health.stats().ejectionsTotal >= 1, 'an instance answering TApplicationExceptions is ejected');
  t.is(await metricValue(proxy, 'zkroute_thrift_calls_total', { method: 'boom', outcome: 'exception' }), 4);

  const inFlight = client.call('hang', 'during drain').then(() => 'answered', (err: unknown) => (err as Error).message);
  await waitFor('the call at an instance', () => a!.calls() + b!.calls() >= 5);
  const closed = proxy.app.close(5000);
  t.regex(await inFlight, /^zkroute: upstream_timeout/, 'the call in flight is answered during the drain');
  await client.closed;
  await closed;
});
