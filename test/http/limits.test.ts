import test from 'ava';
import net from 'node:net';
import { once } from 'node:events';
import { nodeRequest, register, startProxy } from '../helpers/proxy.js';
import { zookeeperSuite } from '../helpers/suite.js';
import { connectThrift, startThriftServer } from '../helpers/thrift.js';
import { Upstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/wait.js';
import { uniquePath } from '../helpers/zk.js';

const suite = zookeeperSuite(test);

test('over --max-connections-per-instance plus --max-pending: 503 overloaded at once, counted; the instance is not ejected', async (t) => {
  let open = 0;
  let most = 0;
  const upstream = await Upstream.start('slow', (req, res) => {
    open += 1;
    most = Math.max(most, open);
    req.resume();
    setTimeout(() => {
      open -= 1;
      res.writeHead(200).end('ok');
    }, 400);
  });
  const base = uniquePath('limits');
  await register(suite.zk, base, 'api', 'slow', upstream.address);
  const proxy = await startProxy(suite.server.connectString, base, { services: 'api', 'max-connections-per-instance': '2', 'max-pending': '3' });
  try {
    await waitFor('the instance', () => proxy.app.discovery.instances('api')?.length === 1);
    const started = Date.now();
    const answers = await Promise.all(Array.from({ length: 10 }, async (_, i) => {
      const r = await nodeRequest(`${proxy.origin}/svc/api/x?i=${i}`);
      return { status: r.status, error: r.status === 200 ? '' : (JSON.parse(r.body) as { error: string }).error, ms: Date.now() - started };
    }));
    const overloaded = answers.filter((a) => a.status === 503);
    t.is(answers.filter((a) => a.status === 200).length, 5, '2 on connections and 3 waiting');
    t.is(overloaded.length, 5);
    // At once: every refusal came before the first answer (the instance takes 400 ms).
    const firstOk = Math.min(...answers.filter((a) => a.status === 200).map((a) => a.ms));
    t.true(overloaded.every((a) => a.error === 'overloaded' && a.ms < firstOk), JSON.stringify(answers));
    t.is(most, 2, 'the instance never saw more than 2 requests at once');
    t.false(proxy.app.health.isEjected(proxy.app.discovery.instances('api')![0]!));
    const metrics = await (await fetch(`http://127.0.0.1:${proxy.app.adminAddress().port}/metrics`)).text();
    t.regex(metrics, /zkroute_requests_total\{service="api",code_class="5xx",outcome="overloaded"\} 5/);
  } finally {
    await proxy.close();
    await upstream.close();
  }
});

test('over --max-client-connections: a new caller connection is closed on arrival and counted; others are served', async (t) => {
  const upstream = await Upstream.start('u');
  const base = uniquePath('limits');
  await register(suite.zk, base, 'api', 'u', upstream.address);
  const proxy = await startProxy(suite.server.connectString, base, { services: 'api', 'max-client-connections': '3' });
  const sockets: net.Socket[] = [];
  try {
    const port = proxy.app.address().port;
    // Three keep-alive connections, each known to the server (it answered on it).
    for (let i = 0; i < 3; i++) {
      const s = net.connect(port, '127.0.0.1');
      s.write('GET /svc/api/hello HTTP/1.1\r\nHost: a\r\n\r\n');
      await once(s, 'data');
      sockets.push(s);
    }
    const extra = net.connect(port, '127.0.0.1');
    extra.on('error', () => {});
    let data = '';
    extra.on('data', (c) => (data += c.toString()));
    await once(extra, 'close');
    t.is(data, '', 'closed without an answer');
    const metrics = await (await fetch(`http://127.0.0.1:${proxy.app.adminAddress().port}/metrics`)).text();
    t.regex(metrics, /zkroute_client_connections_dropped_total 1/);
    // One of the held connections still works.
    sockets[0]!.write('GET /svc/api/ok HTTP/1.1\r\nHost: a\r\n\r\n');
    const [reply] = (await once(sockets[0]!, 'data')) as [Buffer];
    t.regex(reply.toString(), /^HTTP\/1\.1 200 /);
  } finally {
    for (const s of sockets) s.destroy();
    await proxy.close();
    await upstream.close();
  }
});

test('--max-connections-per-instance caps TCP connections and Thrift calls to an instance too: the extra one is refused as overloaded, counted', async (t) => {
  const base = uniquePath('limits');
  const echo = net.createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  const thriftServer = await startThriftServer('only');
  await register(suite.zk, base, 'line', 'e', `127.0.0.1:${(echo.address() as net.AddressInfo).port}`);
  await register(suite.zk, base, 'rpc', 'only', thriftServer.address);
  const proxy = await startProxy(suite.server.connectString, base, { tcp: '127.0.0.1:0=line', thrift: '127.0.0.1:0=rpc', 'max-connections-per-instance': '2' });
  const sockets: net.Socket[] = [];
  try {
    const tcpPort = proxy.app.addresses().tcp[0]!.port;
    const talk = async () => {
      const s = net.connect(tcpPort, '127.0.0.1');
      s.on('error', () => {});
      sockets.push(s);
      s.write('ping\n');
      const answer = await Promise.race([once(s, 'data').then(([c]) => String(c)), once(s, 'close').then(() => 'closed')]);
      return answer;
    };
    t.is(await talk(), 'ping\n');
    t.is(await talk(), 'ping\n');
    t.is(await talk(), 'closed', 'a third connection to the one instance is refused');
    // Thrift: two calls hang on the instance; the third call in flight is refused at once.
    const callers = await Promise.all([0, 1, 2].map(() => connectThrift(proxy.app.addresses().thrift[0]!.port)));
    void callers[0]!.call('hang', 'a').catch(() => {});
    void callers[1]!.call('hang', 'b').catch(() => {});
    await waitFor('two calls at the instance', () => thriftServer.calls() === 2);
    const refused = await callers[2]!.echo('c').then(() => undefined, (err: Error) => err.message);
    t.regex(refused ?? '', /^zkroute: overloaded: /);
    for (const c of callers) c.close();
    const metrics = await (await fetch(`http://127.0.0.1:${proxy.app.adminAddress().port}/metrics`)).text();
    t.regex(metrics, /zkroute_tcp_connections_total\{service="line",outcome="overloaded"\} 1/);
    t.regex(metrics, /zkroute_thrift_calls_total\{service="rpc",method="echo",outcome="overloaded"\} 1/);
  } finally {
    for (const s of sockets) s.destroy();
    await proxy.close();
    echo.close();
    await thriftServer.close();
  }
});
