import test from 'ava';
import net from 'node:net';
import { once } from 'node:events';
import { nodeRequest, register, startProxy } from '../helpers/proxy.js';
import { zookeeperSuite } from '../helpers/suite.js';
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
