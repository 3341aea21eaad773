// TCP mode over a real ZooKeeper, real Thrift servers (Apache Thrift's Node library) and raw
// sockets: the ThriftPy pattern's sequential znodes holding host:port.
import test from 'ava';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { captureLogger, metricValue, register, type RunningProxy, startProxy } from '../helpers/proxy.js';
import { zookeeperSuite } from '../helpers/suite.js';
import { connectThrift, startThriftServer, type ThriftServer } from '../helpers/thrift.js';
import { waitFor } from '../helpers/wait.js';
import { uniquePath } from '../helpers/zk.js';

const suite = zookeeperSuite(test);

/** Registers host:port as a sequential instance `<base>/<service>NNNNNNNNNN` (the ThriftPy pattern). */
async function registerSequential(base: string, service: string, address: string): Promise<string> {
  await suite.zk.mkdirp(base);
  return suite.zk.create(`${base}/${service}`, address, { ephemeral: true, sequential: true });
}

async function thriftServers(names: string[]): Promise<ThriftServer[]> {
  const servers = await Promise.all(names.map((n) => startThriftServer(n)));
  for (const s of servers) suite.defer(() => s.close());
  return servers;
}

async function tcpProxy(base: string, service: string, flags: Record<string, string> = {}, logger?: Parameters<typeof startProxy>[3]): Promise<{ proxy: RunningProxy; port: number }> {
  const proxy = await startProxy(suite.server.connectString, base, { layout: 'sequential', tcp: `127.0.0.1:0=${service}`, ...flags }, logger);
  suite.defer(() => proxy.close());
  return { proxy, port: proxy.app.addresses().tcp[0]!.port };
}

/** A raw connection: everything it receives, and when it closed. */
function rawConnect(port: number, allowHalfOpen = false): Promise<{ socket: Socket; received: () => Buffer; closed: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen });
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => {});
    const closed = new Promise<number>((r) => socket.once('close', () => r(performance.now())));
    socket.once('connect', () => resolve({ socket, received: () => Buffer.concat(chunks), closed }));
    socket.once('error', reject);
  });
}

/** A TCP server that runs `handler` for every connection. */
async function tcpServer(handler: (socket: Socket) => void): Promise<{ server: Server; address: string; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => sockets.delete(socket));
    handler(socket);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  suite.defer(() => new Promise<void>((r) => {
    server.close(() => r());
    for (const s of sockets) s.destroy();
  }));
  return { server, sockets, address: `127.0.0.1:${(server.address() as AddressInfo).port}` };
}


test('Thrift calls over --tcp: each new connection goes to one of three instances; one connection serves 200 calls', async (t) => {
  const base = uniquePath('services');
  const servers = await thriftServers(['s1', 's2', 's3']);
  for (const s of servers) await registerSequential(base, 'example-service', s.address);
  const { proxy, port } = await tcpProxy(base, 'example-service');

  const served = new Map<string, number>();
  for (let i = 0; i < 60; i++) {
    const client = await connectThrift(port);
    const answer = await client.echo(`call-${i}`);
    t.regex(answer, new RegExp(`^s[123]:call-${i}$`));
    const name = answer.slice(0, 2);
    served.set(name, (served.get(name) ?? 0) + 1);
    client.close();
    await client.closed;
  }
  t.log(`60 connections: ${[...served].map(([n, c]) => `${n} ${c}`).join(', ')}`);
  t.is(served.size, 3, 'every instance got a share');
  for (const count of served.values()) t.true(count >= 5, `each got a fair share (${[...served.values()].join('/')})`);

  const long = await connectThrift(port);
  const names = new Set<string>();
  for (let i = 0; i < 200; i++) names.add((await long.echo(`long-${i}`)).slice(0, 2));
  t.is(names.size, 1, 'a connection stays on its instance');
  t.is(await metricValue(proxy, 'zkroute_tcp_active_connections', { service: 'example-service' }), 1);
  const providers = (await (await fetch(`http://127.0.0.1:${proxy.app.adminAddress().port}/providers/example-service`)).json()) as { instances: { address: string; health: { tcpConnections: number } }[] };
  t.is(providers.instances.reduce((n, i) => n + i.health.tcpConnections, 0), 1, '/providers shows the open TCP connection');
  long.close();
  await long.closed;
  await waitFor('the connection counted closed', async () => (await metricValue(proxy, 'zkroute_tcp_active_connections', { service: 'example-service' })) === 0);
  t.is(await metricValue(proxy, 'zkroute_tcp_connections_total', { service: 'example-service', outcome: 'ok' }), 61);
  t.true((await metricValue(proxy, 'zkroute_tcp_bytes_total', { service: 'example-service', direction: 'in' }))! > 200 * 20);
  t.true((await metricValue(proxy, 'zkroute_tcp_connect_seconds_count', { service: 'example-service' }))! >= 61);
});

test('a dead instance whose znode lingers: 0 failed connections, the instance ejected; one killed mid-stream closes its caller promptly', async (t) => {
  const base = uniquePath('services');
  const [alive, doomed] = await thriftServers(['alive', 'doomed']);
  const dead = await startThriftServer('dead');
  await dead.close(); // its port now refuses; the znode stays
  for (const s of [alive!, doomed!]) await registerSequential(base, 'example-service', s.address);
  await registerSequential(base, 'example-service', dead.address);
  const { proxy, port } = await tcpProxy(base, 'example-service', { balancer: 'round-robin' });

  for (let i = 0; i < 30; i++) {
    const client = await connectThrift(port);
    t.regex(await client.echo(`x${i}`), /^(alive|doomed):/);
    client.close();
  }
  const deadInstance = proxy.app.discovery.instances('example-service')!.find((i) => i.address === dead.address)!;
  t.true(proxy.app.health.isEjected(deadInstance), 'the refusing instance was ejected');
  t.is(await metricValue(proxy, 'zkroute_tcp_connections_total', { service: 'example-service', outcome: 'connect_failed' }), 0, 'no caller saw a failure');

  // A connection on `doomed`, then the server dies under it.
  let onDoomed: Awaited<ReturnType<typeof connectThrift>> | undefined;
  for (let i = 0; i < 10 && !onDoomed; i++) {
    const client = await connectThrift(port);
    if ((await client.echo('which')).startsWith('doomed')) onDoomed = client;
    else client.close();
  }
  t.truthy(onDoomed, 'a connection landed on the instance to kill');
  const killedAt = performance.now();
  await doomed!.close();
  await onDoomed!.closed;
  const ms = performance.now() - killedAt;
  t.log(`caller's connection closed ${ms.toFixed(1)} ms after its instance went`);
  t.true(ms < 1000, `closed within a second (${ms.toFixed(1)} ms)`);
});

test('bytes sent before the instance is connected arrive first; half-close passes the reply back', async (t) => {
  const base = uniquePath('services');
  // Answers everything it got, once the caller has finished sending.
  const upstream = await tcpServer((socket) => {
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => socket.end(Buffer.concat([Buffer.from('got:'), ...chunks])));
  });
  await registerSequential(base, 'svc', upstream.address);
  const { port } = await tcpProxy(base, 'svc');
  const caller = await rawConnect(port, true);
  // Written at once, before the proxy can have connected; then the write side is shut.
  caller.socket.end('hello, before connect');
  await caller.closed;
  t.is(caller.received().toString(), 'got:hello, before connect');
});

test('--tcp-idle-timeout closes a silent connection', async (t) => {
  const base = uniquePath('services');
  let upstreamEnded = false;
  const upstream = await tcpServer((socket) => socket.resume().once('end', () => (upstreamEnded = true)));
  await registerSequential(base, 'svc', upstream.address);
  const { port } = await tcpProxy(base, 'svc', { 'tcp-idle-timeout': '300ms' });
  const caller = await rawConnect(port);
  const started = performance.now();
  caller.socket.write('ping');
  const closedAt = await caller.closed;
  t.true(closedAt - started >= 280 && closedAt - started < 2000, `closed after ${(closedAt - started).toFixed(0)} ms`);
  await waitFor('the upstream side closed too', () => upstreamEnded);
  t.pass();
});

test('backpressure: a caller that stops reading stops the instance sending', async (t) => {
  const base = uniquePath('services');
  let written = 0;
  let paused = false;
  const upstream = await tcpServer((socket) => {
    const chunk = Buffer.alloc(64 * 1024, 'z');
    const pump = () => {
      // Bounded: 64 MiB at most, far beyond what the buffers can hold.
      while (written < 64 * 1024 * 1024) {
        written += chunk.length;
        if (!socket.write(chunk)) {
          paused = true;
          socket.once('drain', () => {
            paused = false;
            pump();
          });
          return;
        }
      }
      socket.end();
    };
    pump();
  });
  await registerSequential(base, 'svc', upstream.address);
  const { port } = await tcpProxy(base, 'svc');
  const caller = await rawConnect(port);
  caller.socket.pause();
  // Once every buffer on the way is full (the kernel's, both sockets of the proxy), the
  // instance writes nothing more: wait until it stops, then check that it stays stopped.
  // Unchanged over three polls in a row: under load, buffers may still be growing at the first.
  let last = -1;
  let quiet = 0;
  await waitFor('the instance stopped writing', () => {
    quiet = paused && written === last ? quiet + 1 : 0;
    last = written;
    return quiet >= 3;
  }, 15_000, 200);
  const stalledAt = written;
  await new Promise((r) => setTimeout(r, 500)); // a window in which an unbounded proxy would keep reading
  t.is(written, stalledAt, 'nothing more was written while the caller read nothing');
  t.log(`held on the way while the caller did not read: ${(stalledAt / 1024 / 1024).toFixed(1)} MiB (kernel buffers included)`);
  t.true(written < 32 * 1024 * 1024, `bounded: ${(written / 1024 / 1024).toFixed(1)} MiB`);
  caller.socket.resume();
  await waitFor('the transfer resumed', () => written > stalledAt + 4 * 1024 * 1024, 10_000);
  caller.socket.destroy();
});

test('unknown service, an empty one, and no reachable instance: the connection is closed, nothing sent, counted', async (t) => {
  const base = uniquePath('providers');
  const { logger, lines } = captureLogger('warn');
  const refuser = await startThriftServer('gone');
  await refuser.close();
  await register(suite.zk, base, 'refusing', 'r1', refuser.address);
  await suite.zk.mkdirp(`${base}/idle`);
  // Three routes, as three --tcp flags (the nested layout, where a service can exist empty).
  const tcp = ['127.0.0.1:0=nosuch', '127.0.0.1:0=idle', '127.0.0.1:0=refusing'];
  const proxy = await startProxy(suite.server.connectString, base, { tcp } as unknown as Record<string, string>, logger);
  suite.defer(() => proxy.close());
  const routes = proxy.app.addresses().tcp;
  t.deepEqual(routes.map((r) => r.service), ['nosuch', 'idle', 'refusing']);
  for (const route of routes) {
    const caller = await rawConnect(route.port);
    caller.socket.write('hello?');
    await caller.closed;
    t.is(caller.received().length, 0, `${route.service}: no bytes sent back`);
  }
  t.is(await metricValue(proxy, 'zkroute_tcp_connections_total', { service: 'nosuch', outcome: 'unknown_service' }), 1);
  t.is(await metricValue(proxy, 'zkroute_tcp_connections_total', { service: 'idle', outcome: 'no_providers' }), 1);
  t.is(await metricValue(proxy, 'zkroute_tcp_connections_total', { service: 'refusing', outcome: 'connect_failed' }), 1);
  const warnings = () => lines.filter((l) => l['msg'] === 'tcp connection closed: no instance' && l['service'] === 'refusing');
  t.is(warnings().length, 1);
  // A caller retrying in a loop is one warning a second per service, not one per connection.
  for (let i = 0; i < 5; i++) await (await rawConnect(routes[2]!.port)).closed;
  t.is(warnings().length, 1);
  t.is(await metricValue(proxy, 'zkroute_tcp_connections_total', { service: 'refusing', outcome: 'connect_failed' }), 6);
});

test('an open connection is not cut when its instance leaves ZooKeeper; new connections stop going there at once', async (t) => {
  const base = uniquePath('services');
  const [leaving, staying] = await thriftServers(['leaving', 'staying']);
  const leavingPath = await registerSequential(base, 'example-service', leaving!.address);
  await registerSequential(base, 'example-service', staying!.address);
  const { proxy, port } = await tcpProxy(base, 'example-service');
  let onLeaving: Awaited<ReturnType<typeof connectThrift>> | undefined;
  for (let i = 0; i < 20 && !onLeaving; i++) {
    const client = await connectThrift(port);
    if ((await client.echo('which')).startsWith('leaving')) onLeaving = client;
    else client.close();
  }
  t.truthy(onLeaving);
  await suite.zk.delete(leavingPath);
  await waitFor('the table without it', () => proxy.app.discovery.instances('example-service')?.length === 1);
  for (let i = 0; i < 20; i++) t.is(await onLeaving!.echo(`still-${i}`), `leaving:still-${i}`, 'the open connection keeps its instance');
  for (let i = 0; i < 10; i++) {
    const client = await connectThrift(port);
    t.regex(await client.echo('new'), /^staying:/, 'new connections go to the instance still listed');
    client.close();
  }
  onLeaving!.close();
});
