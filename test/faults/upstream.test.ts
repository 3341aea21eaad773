// The fault matrix's instance and caller rows (RELIABILITY.md 2-7, 16-21, 25), each through the
// real proxy with live mixed traffic to three good instances while the fault is injected.
// These rows involve no ZooKeeper fault: one standalone server serves the file.
import test, { type ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, request as httpRequest, type Server } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { Instance } from '../../src/discovery/provider-table.js';
import { captureLogger, nodeRequest, register, startProxy, type RunningProxy } from '../helpers/proxy.js';
import { jsonBody, rawExchange } from '../helpers/raw.js';
import { zookeeperSuite } from '../helpers/suite.js';
import { connectThrift, startThriftServer } from '../helpers/thrift.js';
import { Upstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/wait.js';
import { uniquePath } from '../helpers/zk.js';
import { logRow, summarize, Traffic, type TrafficReport } from './harness.js';

const suite = zookeeperSuite(test);

interface Row {
  readonly proxy: RunningProxy;
  readonly base: string;
  readonly good: Upstream[];
  readonly traffic: Traffic;
  readonly lines: Record<string, unknown>[];
  instanceAt(port: number): Instance;
}

/** Three good instances of `api`, the proxy (`flags`), traffic flowing; `body` adds the fault. */
async function withRow(t: ExecutionContext, flags: Record<string, string>, body: (row: Row) => Promise<void>, traffic: ConstructorParameters<typeof Traffic>[2] = {}): Promise<void> {
  const base = uniquePath('faults');
  const good = [await Upstream.start('g1'), await Upstream.start('g2'), await Upstream.start('g3')];
  for (const u of good) await register(suite.zk, base, 'api', u.name, u.address);
  const { logger, lines } = captureLogger('info');
  const proxy = await startProxy(suite.server.connectString, base, { services: 'api', ...flags }, logger);
  let running: Traffic | undefined;
  try {
    await waitFor('three instances', () => proxy.app.discovery.instances('api')?.length === 3);
    running = new Traffic(proxy.origin, 'api', traffic);
    await running.more(50);
    await body({
      proxy, base, good, traffic: running, lines,
      instanceAt: (port) => proxy.app.discovery.instances('api')!.find((i) => i.port === port)!,
    });
  } finally {
    await running?.stop();
    await proxy.close();
    for (const u of good) await u.close();
  }
}

function assertNoLoss(t: ExecutionContext, report: TrafficReport): void {
  t.true(report.sent > 50, `traffic flowed (${report.sent})`);
  t.deepEqual(report.failedIdempotent, [], 'no GET failed');
  t.deepEqual(report.failedPosts, [], 'no POST failed');
}

/** An upstream in a child process (so it can be SIGSTOPped); killed by `stop`. */
async function childUpstream(name: string): Promise<{ child: ChildProcess; port: number; stop(): void }> {
  const child = spawn(process.execPath, [fileURLToPath(new URL('../helpers/upstream-process.mjs', import.meta.url)), name], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  const [chunk] = (await once(child.stdout!, 'data')) as [Buffer];
  return {
    child,
    port: Number(chunk.toString().trim()),
    stop() {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    },
  };
}

test.serial('row 2: a provider crashes (port closed, znode kept): 0 failed GETs, POSTs fail only if they were in flight on it, ejected', async (t) => {
  await withRow(t, {}, async ({ proxy, good, traffic, instanceAt }) => {
    const victim = good[0]!;
    const instance = instanceAt(victim.port);
    await victim.kill();
    await waitFor('the crashed instance ejected', () => proxy.app.health.isEjected(instance), 5000, 5);
    await traffic.more(500);
    const report = await traffic.stop();
    logRow(t, 2, report, { ejected: proxy.app.health.describe(instance).ejectionReason ?? '?' });
    t.deepEqual(report.failedIdempotent, []);
    // A POST already sent to it when it died cannot be retried (it may have run): 502.
    t.true(report.failedPosts.every((f) => f === '502 upstream_unavailable'), summarize(report.failedPosts));
    t.true(report.failedPosts.length <= 16, 'at most the requests in flight at the crash');
    t.is(proxy.app.discovery.instances('api')?.length, 3, 'the znode lingers');
  });
});

test.serial('row 3: a provider hangs (SIGSTOP): GETs retried elsewhere after the per-try timeout; POSTs get 504 and are not retried', async (t) => {
  const hung = await childUpstream('hung');
  try {
    await withRow(t, { 'try-timeout': '300ms' }, async ({ proxy, base, traffic, instanceAt }) => {
      await register(suite.zk, base, 'api', 'hung', `127.0.0.1:${hung.port}`);
      await waitFor('four instances', () => proxy.app.discovery.instances('api')?.length === 4);
      await traffic.more(100);
      process.kill(hung.child.pid!, 'SIGSTOP');
      const instance = instanceAt(hung.port);
      await waitFor('the hung instance ejected', () => proxy.app.health.isEjected(instance), 15_000, 10);
      await traffic.more(300);
      const report = await traffic.stop();
      logRow(t, 3, report, { ejected: proxy.app.health.describe(instance).ejectionReason ?? '?' });
      t.deepEqual(report.failedIdempotent, [], 'every GET that hit it was retried');
      t.true(report.failedPosts.length >= 1, 'a POST reached the hung instance before the ejection');
      t.true(report.failedPosts.every((f) => f === '504 upstream_timeout'), summarize(report.failedPosts));
    });
  } finally {
    hung.stop();
  }
});

test.serial('row 4: a provider answering 503: passed through until ejected after 5 consecutive 5xx, for the base time', async (t) => {
  const sick = await Upstream.start('sick', (_req, res) => void res.writeHead(503, { 'x-upstream': 'sick' }).end('sick'));
  try {
    await withRow(t, { 'ejection-base': '30s' }, async ({ proxy, base, traffic, instanceAt }) => {
      await register(suite.zk, base, 'api', 'sick', sick.address);
      await waitFor('four instances', () => proxy.app.discovery.instances('api')?.length === 4);
      const instance = instanceAt(sick.port);
      const ejectedAt = await waitFor('the 503 instance ejected', () => (proxy.app.health.isEjected(instance) ? Date.now() : 0), 10_000, 5);
      // Requests already on their way to it when it was ejected still arrive: count after them.
      await waitFor('nothing in flight to it', () => proxy.app.provider.inFlight(instance) === 0, 5000, 5);
      const seenAtEjection = sick.seen.length;
      await traffic.more(500);
      const report = await traffic.stop();
      const health = proxy.app.health.describe(instance);
      logRow(t, 4, report, { '503s passed on': report.failedIdempotent.length + report.failedPosts.length, ejected: `${health.ejectionReason}, for ${Math.round((health.ejectedUntil! - ejectedAt) / 1000)} s` });
      t.regex(health.ejectionReason ?? '', /^5 consecutive 5xx$/);
      // --ejection-base x 1 ejection, plus up to 10% jitter (so ejections do not end in step).
      const forMs = health.ejectedUntil! - ejectedAt;
      t.true(forMs > 29_000 && forMs < 33_500, `ejected for ${forMs} ms`);
      const failures = [...report.failedIdempotent, ...report.failedPosts];
      t.true(failures.every((f) => f === '503'), summarize(failures));
      // Five in a row eject; requests already on their way when it happened add at most the concurrency.
      t.true(failures.length >= 5 && failures.length <= 5 + 16, `${failures.length} answers of 503`);
      t.is(sick.seen.length, seenAtEjection, 'no traffic after the ejection');
    });
  } finally {
    await sick.close();
  }
});

test.serial('row 5: a registered black hole (accepts, never answers): as row 3, the ejection protects', async (t) => {
  const sockets = new Set<net.Socket>();
  const hole = net.createServer((s) => {
    sockets.add(s);
    s.resume();
  });
  await new Promise<void>((resolve) => hole.listen(0, '127.0.0.1', resolve));
  const port = (hole.address() as AddressInfo).port;
  try {
    await withRow(t, { 'try-timeout': '300ms' }, async ({ proxy, base, traffic, instanceAt }) => {
      await register(suite.zk, base, 'api', 'hole', `127.0.0.1:${port}`);
      await waitFor('four instances', () => proxy.app.discovery.instances('api')?.length === 4);
      const instance = instanceAt(port);
      await waitFor('the black hole ejected', () => proxy.app.health.isEjected(instance), 15_000, 10);
      await traffic.more(300);
      const report = await traffic.stop();
      logRow(t, 5, report, { ejected: proxy.app.health.describe(instance).ejectionReason ?? '?', 'connections it took': sockets.size });
      t.deepEqual(report.failedIdempotent, []);
      t.true(report.failedPosts.every((f) => f === '504 upstream_timeout'), summarize(report.failedPosts));
    });
  } finally {
    for (const s of sockets) s.destroy();
    hole.close();
  }
});

test.serial('row 6: a reset after the request was sent: GETs retried, POSTs answered 502 and not retried', async (t) => {
  const resetter = await Upstream.start('reset', (req) => req.socket.destroy());
  try {
    // No ejection (it would stop the resets at the first): every request it gets is reset.
    await withRow(t, { 'max-ejection-percent': '0' }, async ({ proxy, base, traffic }) => {
      await register(suite.zk, base, 'api', 'reset', resetter.address);
      await waitFor('four instances', () => proxy.app.discovery.instances('api')?.length === 4);
      await waitFor('POSTs reset', () => resetter.seen.filter((s) => s.method === 'POST').length >= 5, 10_000);
      const report = await traffic.stop();
      const postsSeen = resetter.seen.filter((s) => s.method === 'POST').length;
      logRow(t, 6, report, { 'requests the resetter read': resetter.seen.length, 'POSTs among them': postsSeen });
      t.deepEqual(report.failedIdempotent, []);
      t.true(report.failedPosts.every((f) => f === '502 upstream_unavailable'), summarize(report.failedPosts));
      // Every POST it read failed (not retried elsewhere), and no other POST did.
      t.is(report.failedPosts.length, postsSeen);
    });
  } finally {
    await resetter.close();
  }
});

test.serial('row 7: stale keep-alive: instances closing idle connections after 200 ms (the proxy keeps them 4 s): 0 failures', async (t) => {
  const servers: Server[] = [];
  const connections = new Map<string, number>();
  try {
    await withRow(t, {}, async ({ proxy, base, traffic }) => {
      for (const name of ['k1', 'k2']) {
        const server = createServer((req, res) => {
          req.resume();
          req.on('end', () => res.writeHead(200, { 'x-upstream': name }).end(name));
        });
        server.keepAliveTimeout = 200;
        server.on('connection', () => connections.set(name, (connections.get(name) ?? 0) + 1));
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        servers.push(server);
        await register(suite.zk, base, 'api', name, `127.0.0.1:${(server.address() as AddressInfo).port}`);
      }
      await waitFor('five instances', () => proxy.app.discovery.instances('api')?.length === 5);
      // Idle gaps around the instances' keep-alive timeout: connections are closed just as they
      // would be reused.
      const idle = new Traffic(proxy.origin, 'api', { concurrency: 8, pauseMs: 190, maxRequests: 400 });
      await idle.more(300, 30_000);
      const idleReport = await idle.stop();
      const report = await traffic.stop();
      logRow(t, 7, { ...report, sent: report.sent + idleReport.sent, posts: report.posts + idleReport.posts, failedIdempotent: [...report.failedIdempotent, ...idleReport.failedIdempotent], failedPosts: [...report.failedPosts, ...idleReport.failedPosts] }, { 'connections opened by the short keep-alive instances': [...connections.values()].reduce((a, b) => a + b, 0) });
      t.true([...connections.values()].reduce((a, b) => a + b, 0) > 10, 'the instances closed idle connections and the proxy opened new ones');
      assertNoLoss(t, report);
      assertNoLoss(t, idleReport);
    });
  } finally {
    for (const s of servers) {
      s.closeAllConnections();
      s.close();
    }
  }
});

test.serial('row 16: bad znode data beside good instances: each skipped and counted, the rest unaffected', async (t) => {
  await withRow(t, {}, async ({ proxy, base, traffic }) => {
    const bad: Record<string, Buffer> = {
      'not-json': Buffer.from('hello there'),
      'no-port': Buffer.from(JSON.stringify({ host: '127.0.0.1' })),
      'port-0': Buffer.from(JSON.stringify({ host: '127.0.0.1', port: 0 })),
      'port-70000': Buffer.from(JSON.stringify({ host: '127.0.0.1', port: 70000 })),
      'empty-host': Buffer.from(JSON.stringify({ host: '', port: 80 })),
      'too-large': Buffer.from(JSON.stringify({ host: '127.0.0.1', port: 80, pad: 'x'.repeat(5000) })),
      'not-utf8': Buffer.from([0xff, 0xfe, 0x00, 0x41]),
    };
    for (const [name, data] of Object.entries(bad)) await suite.zk.create(`${base}/api/${name}`, data, { ephemeral: true });
    await traffic.more(300);
    const report = await traffic.stop();
    const stats = proxy.app.discovery.stats();
    logRow(t, 16, report, { skipped: stats.malformed, reasons: Object.keys(stats.malformedByReason).join('/') });
    t.is(stats.malformed, Object.keys(bad).length);
    t.is(proxy.app.discovery.instances('api')?.length, 3);
    const metrics = await (await fetch(`http://127.0.0.1:${proxy.app.adminAddress().port}/metrics`)).text();
    t.regex(metrics, /zkroute_znodes_malformed_total\{reason="too_large"\} 1/);
    assertNoLoss(t, report);
  });
});

test.serial('row 17: callers that abort (a slow GET; half a buffered POST): the upstream request ends promptly, nothing retried, other traffic unaffected', async (t) => {
  await withRow(t, {}, async ({ good, traffic }) => {
    const port = Number(new URL(traffic.origin).port);
    // A slow GET, then the caller leaves.
    const req = httpRequest(`${traffic.origin}/svc/api/slow?ms=5000&abort=1`, { agent: false });
    req.on('error', () => {});
    req.end();
    const seen = await waitFor('the slow GET upstream', () => good.flatMap((u) => u.seen).find((s) => s.url.includes('abort=1')));
    const abortedAt = Date.now();
    req.destroy();
    const closedAt = await waitFor('the upstream request closed', () => seen.closedAt, 2000, 5);
    // Half of a small POST (held for a retry before anything is sent), then close.
    const half = await rawExchange(port, 'POST /svc/api/half HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n' + 'x'.repeat(500), 0, 300);
    await traffic.more(300);
    const report = await traffic.stop();
    logRow(t, 17, report, { 'slow GET closed upstream': `${closedAt - abortedAt} ms after the caller left` });
    t.true(closedAt - abortedAt < 100);
    t.is(good.flatMap((u) => u.seen).filter((s) => s.url.includes('abort=1')).length, 1, 'not retried');
    t.is(half.text, '', 'no answer to half a request');
    t.is(good.reduce((n, u) => n + u.count('/half'), 0), 0, 'the half POST never reached an instance');
    assertNoLoss(t, report);
  });
});

test.serial('row 18: request smuggling: 400 and close, the instances see nothing, other traffic unaffected', async (t) => {
  await withRow(t, {}, async ({ good, traffic }) => {
    const port = Number(new URL(traffic.origin).port);
    const payloads = [
      'POST /svc/api/smuggle HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'POST /svc/api/smuggle HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde',
      'POST /svc/api/smuggle HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n',
      'GET /svc/api/smuggle HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n b\r\n\r\n',
    ];
    const answers = await Promise.all(payloads.map((p) => rawExchange(port, p)));
    await traffic.more(300);
    const report = await traffic.stop();
    logRow(t, 18, report, { 'smuggling attempts': payloads.length, 'answered 400': answers.filter((a) => a.text.startsWith('HTTP/1.1 400 ')).length });
    for (const a of answers) {
      t.regex(a.text, /^HTTP\/1\.1 400 /);
      t.is(jsonBody(a.text)['error'], 'bad_request');
    }
    t.is(good.reduce((n, u) => n + u.count('/smuggle'), 0), 0);
    assertNoLoss(t, report);
  });
});

test.serial('row 19: slowloris and a header flood: 408 at the header timeout, 431 above the limit, other traffic unaffected', async (t) => {
  await withRow(t, { 'header-timeout': '1s' }, async ({ good, traffic }) => {
    const port = Number(new URL(traffic.origin).port);
    const drip = ['GET /svc/api/slowloris HTTP/1.1\r\n', 'Host: a\r\n', ...Array.from({ length: 20 }, (_, i) => `X-Drip-${i}: 1\r\n`)];
    const [slow, flood] = await Promise.all([rawExchange(port, drip, 300), rawExchange(port, `GET /svc/api/flood HTTP/1.1\r\nHost: a\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`)]);
    await traffic.more(300);
    const report = await traffic.stop();
    logRow(t, 19, report, { 'slowloris answered': `${slow.elapsedMs} ms` });
    t.regex(slow.text, /^HTTP\/1\.1 408 /);
    t.true(slow.elapsedMs >= 900 && slow.elapsedMs < 3000, `408 after ${slow.elapsedMs} ms`);
    t.regex(flood.text, /^HTTP\/1\.1 431 /);
    t.is(good.reduce((n, u) => n + u.count('/slowloris') + u.count('/flood'), 0), 0);
    assertNoLoss(t, report);
  });
});

test.serial('row 20: hop-by-hop headers both ways: none pass through, under traffic', async (t) => {
  await withRow(t, {}, async ({ good, traffic }) => {
    const res = await nodeRequest(`${traffic.origin}/svc/api/hop`, {
      headers: { connection: 'X-Secret', 'x-secret': 's', 'keep-alive': 'timeout=9', te: 'trailers', 'proxy-authorization': 'Basic eDp5', 'proxy-connection': 'keep-alive' },
    });
    await traffic.more(200);
    const report = await traffic.stop();
    const upstreamSaw = good.flatMap((u) => u.seen).find((s) => s.url === '/hop')!.headers;
    logRow(t, 20, report);
    t.is(res.status, 200);
    for (const name of ['x-secret', 'keep-alive', 'te', 'proxy-authorization', 'proxy-connection']) t.is(upstreamSaw[name], undefined, `request ${name}`);
    // The instance answered `Connection: X-Up-Secret`, `X-Up-Secret`, `Keep-Alive` and `Proxy-Connection`.
    for (const name of ['x-up-secret', 'proxy-connection']) t.is(res.headers[name], undefined, `response ${name}`);
    t.not(res.headers['keep-alive'], 'timeout=5', "the instance's Keep-Alive (the proxy may send its own)");
    t.is(res.headers['x-upstream'] !== undefined, true);
    assertNoLoss(t, report);
  });
});

test.serial('row 21: drain under load: in-flight requests finish, idle keep-alive connections are closed, new connections refused', async (t) => {
  const base = uniquePath('faults');
  const upstream = await Upstream.start('d1');
  await register(suite.zk, base, 'api', 'd1', upstream.address);
  const proxy = await startProxy(suite.server.connectString, base, { services: 'api' });
  try {
    await waitFor('the instance', () => proxy.app.discovery.instances('api')?.length === 1);
    const port = proxy.app.address().port;
    // An idle keep-alive caller: its connection must be closed by the drain, not left open.
    const idle = net.connect(port, '127.0.0.1');
    idle.write('GET /svc/api/first HTTP/1.1\r\nHost: a\r\n\r\n');
    await once(idle, 'data');
    const idleClosed = once(idle, 'close');
    const traffic = new Traffic(proxy.origin, 'api', { path: '/slow', concurrency: 8 });
    await traffic.more(50);
    const slow = Array.from({ length: 8 }, (_, i) => nodeRequest(`${proxy.origin}/svc/api/slow?ms=400&i=${i}`));
    await waitFor('the slow requests upstream', () => upstream.count('/slow?ms=400') === 8);
    const drainAt = Date.now();
    const closing = proxy.app.close(5000);
    await idleClosed;
    const idleClosedMs = Date.now() - drainAt;
    const refused = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => resolve(true));
      s.on('connect', () => {
        s.destroy();
        resolve(false);
      });
    });
    const statuses = (await Promise.all(slow)).map((r) => r.status);
    await closing;
    const report = await traffic.stop();
    logRow(t, 21, report, { 'idle keep-alive closed': `${idleClosedMs} ms into the drain`, 'drain took': `${Date.now() - drainAt} ms` });
    t.deepEqual(statuses, Array(8).fill(200), 'requests in flight finished');
    t.true(idleClosedMs < 1000);
    t.true(refused, 'no new connection after the drain began');
    // The loop's requests after the drain began are refused connections, not failed requests in flight.
    t.true([...report.failedIdempotent, ...report.failedPosts].every((f) => f.startsWith('client ')), summarize([...report.failedIdempotent, ...report.failedPosts]));
  } finally {
    await proxy.close();
    await upstream.close();
  }
});

test.serial('row 25: a TCP and Thrift instance killed under traffic: only what was in flight on it fails, with a clear error; then 0 failures', async (t) => {
  const base = uniquePath('faults');
  const servers = await Promise.all(['a', 'b', 'c'].map((n) => startThriftServer(n)));
  for (const s of servers) await register(suite.zk, base, 'rpc', s.name, s.address);
  const proxy = await startProxy(suite.server.connectString, base, { services: 'rpc', tcp: '127.0.0.1:0=rpc', thrift: '127.0.0.1:0=rpc' });
  try {
    await waitFor('three instances', () => proxy.app.discovery.instances('rpc')?.length === 3);
    const tcpPort = proxy.app.addresses().tcp[0]!.port;
    const thriftPort = proxy.app.addresses().thrift[0]!.port;
    let stop = false;
    let killedAt = Infinity;
    const figures = { tcp: 0, thrift: 0, tcpFailed: [] as string[], thriftFailed: [] as string[], failedLate: 0 };
    const settled = () => performance.now() > killedAt + 500;
    // npm thrift leaves a call pending when its connection closes: every call is bounded, and a
    // close or the bound counts as the failure it is.
    const bounded = <T>(call: Promise<T>, closed: Promise<void>) => Promise.race([
      call,
      closed.then(() => Promise.reject(new Error('connection closed by the proxy'))),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no answer within 3 s')), 3000)),
    ]);
    const deadline = performance.now() + 60_000;
    // TCP: a new connection per call, 6 lanes.
    const tcpLanes = Array.from({ length: 6 }, async () => {
      while (!stop && performance.now() < deadline) {
        figures.tcp += 1;
        try {
          const client = await connectThrift(tcpPort);
          try {
            await bounded(client.echo('tcp'), client.closed);
          } finally {
            client.close();
          }
        } catch (err) {
          figures.tcpFailed.push((err as Error).message);
          if (settled()) figures.failedLate += 1;
        }
      }
    });
    // Thrift: 4 long-lived caller connections, calls one after another.
    const thriftClients = await Promise.all(Array.from({ length: 4 }, () => connectThrift(thriftPort)));
    const thriftLanes = thriftClients.map(async (client) => {
      while (!stop && performance.now() < deadline) {
        figures.thrift += 1;
        try {
          await bounded(client.echo('thrift'), client.closed);
        } catch (err) {
          figures.thriftFailed.push((err as Error).message);
          if (settled()) figures.failedLate += 1;
          if ((err as Error).message === 'connection closed by the proxy') return;
        }
      }
    });
    await waitFor('traffic flowing', () => figures.tcp > 100 && figures.thrift > 200, 10_000);
    killedAt = performance.now();
    await servers[0]!.close(); // its znode stays: the proxy finds out by itself
    const before = { tcp: figures.tcp, thrift: figures.thrift };
    await waitFor('traffic after the kill', () => figures.tcp > before.tcp + 300 && figures.thrift > before.thrift + 600, 20_000);
    stop = true;
    await Promise.all([...tcpLanes, ...thriftLanes]);
    for (const c of thriftClients) c.close();
    t.log(`row 25: TCP ${figures.tcp} connections, ${figures.tcpFailed.length} failed; Thrift ${figures.thrift} calls, ${figures.thriftFailed.length} failed (${[...new Set(figures.thriftFailed)].join('; ') || 'none'})`);
    t.is(figures.failedLate, 0, 'nothing failed once the kill was half a second old');
    t.true(figures.tcpFailed.length <= 6, 'at most the TCP connections open on it');
    t.true(figures.thriftFailed.length <= 4, 'at most the Thrift calls in flight on it');
    t.true(figures.thriftFailed.every((m) => /^zkroute: upstream_unavailable/.test(m)), 'a call in flight gets a TApplicationException naming the code, on a connection that stays open');
  } finally {
    await proxy.close();
    for (const s of servers) await s.close();
  }
});
