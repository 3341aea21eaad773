import test from 'ava';
import { createServer, type Server } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { alive, childPids, runCli, spawnCli, stopAll } from '../helpers/cli.js';
import { register } from '../helpers/proxy.js';
import { zookeeperSuite } from '../helpers/suite.js';
import { Upstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/wait.js';
import { uniquePath } from '../helpers/zk.js';

test.after.always(() => stopAll());
const suite = zookeeperSuite(test);

/** An upstream that counts the TCP connections it accepted (one keep-alive pool per worker). */
async function countingUpstream(name: string): Promise<{ server: Server; address: string; connections: () => number }> {
  let connections = 0;
  const server = createServer((req, res) => res.end(JSON.stringify({ upstream: name, url: req.url })));
  server.on('connection', () => (connections += 1));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  suite.defer(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return { server, address: `127.0.0.1:${(server.address() as AddressInfo).port}`, connections: () => connections };
}

async function startWorkers(base: string, extra: string[] = []) {
  const run = spawnCli(['proxy', '--workers', '2', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--base-path', base, ...extra], { ZKROUTE_ZOOKEEPER: suite.server.connectString });
  const started = await waitFor('the start-up log line', () => run.logs().find((l) => l['msg'] === 'zkroute proxy started'), 30_000);
  return { run, proxy: String(started['listen']), admin: String(started['admin']) };
}

/** One request on its own connection (so the cluster hands each to the next worker). */
async function get(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, { headers: { connection: 'close' } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

test('--workers 2: both workers serve, table changes reach them, /metrics and /providers add them up', async (t) => {
  const base = uniquePath('providers');
  const a = await countingUpstream('a');
  await register(suite.zk, base, 'api', 'a', a.address);
  const { run, proxy, admin } = await startWorkers(base);
  try {
    t.is(childPids(run.child.pid!).length, 2, 'two worker processes');
    for (let i = 0; i < 10; i++) t.is((await get(`http://${proxy}/svc/api/n${i}`)).status, 200);
    // Sequential requests: one worker would reuse one upstream connection; two workers, two.
    t.is(a.connections(), 2, 'each worker has its own upstream pool and both served');
    const metrics = await (await fetch(`http://${admin}/metrics`)).text();
    t.regex(metrics, /^zkroute_requests_total\{service="api",code_class="2xx",outcome="ok"\} 10$/m, 'counts from both workers, summed');
    t.regex(metrics, /^zkroute_instances\{service="api",state="total"\} 1$/m);
    t.regex(metrics, /^zkroute_zookeeper_session_state\{state="connected"\} 1$/m, 'ZooKeeper metrics from the primary');

    // A new instance reaches every worker; a deleted one leaves every worker.
    const b = await Upstream.start('b');
    suite.defer(() => b.close());
    await register(suite.zk, base, 'api', 'b', b.address);
    await suite.zk.delete(`${base}/api/a`);
    await waitFor('only b answers, in both workers', async () => {
      const answers = await Promise.all(Array.from({ length: 6 }, () => get(`http://${proxy}/svc/api/x`)));
      return answers.every((r) => r.status === 200 && r.body['upstream'] === 'b');
    }, 5000, 50);

    // A service the primary does not watch yet is looked up through it; unknown names are 404.
    const late = await Upstream.start('late');
    suite.defer(() => late.close());
    await register(suite.zk, base, 'late', 'l1', late.address);
    await waitFor('the late service', async () => (await get(`http://${proxy}/svc/late/hi`)).status === 200, 5000, 50);
    const unknown = await get(`http://${proxy}/svc/nosuch/x`);
    t.is(unknown.status, 404);
    t.is(unknown.body['error'], 'unknown_service');

    // Health gathered from the workers: an instance that resets every request is ejected.
    const bad = createServer((req) => req.socket.destroy());
    await new Promise<void>((resolve) => bad.listen(0, '127.0.0.1', resolve));
    suite.defer(() => new Promise<void>((resolve) => bad.close(() => resolve())));
    await register(suite.zk, base, 'late', 'bad', `127.0.0.1:${(bad.address() as AddressInfo).port}`);
    await waitFor('two instances of late', async () => {
      const r = await fetch(`http://${admin}/providers/late`);
      return ((await r.json()) as { instances: unknown[] }).instances.length === 2;
    });
    for (let i = 0; i < 12; i++) t.is((await get(`http://${proxy}/svc/late/r${i}`)).status, 200, 'retried on the good instance');
    const providers = (await (await fetch(`http://${admin}/providers/late`)).json()) as { instances: { id: string; health: { status: string; ejections: number } }[] };
    const badHealth = providers.instances.find((i) => i.id === 'bad')!.health;
    t.is(badHealth.status, 'ejected');
    t.true(badHealth.ejections >= 1);
    t.is(providers.instances.find((i) => i.id === 'l1')!.health.status, 'healthy');
  } finally {
    run.child.kill('SIGTERM');
    await run.exited;
  }
});

test('--workers 2: a worker that dies is replaced while the other serves; SIGTERM drains both and leaves no process', async (t) => {
  const base = uniquePath('providers');
  const upstream = await Upstream.start('a');
  suite.defer(() => upstream.close());
  await register(suite.zk, base, 'api', 'a', upstream.address);
  const { run, proxy, admin } = await startWorkers(base, ['--drain-timeout', '5s']);
  try {
    const [first, second] = childPids(run.child.pid!) as [number, number];
    process.kill(first, 'SIGKILL');
    await waitFor('the first worker gone', () => !alive(first));
    for (let i = 0; i < 6; i++) t.is((await get(`http://${proxy}/svc/api/while-one-${i}`)).status, 200, 'the other worker serves');
    t.is((await fetch(`http://${admin}/readyz`)).status, 200, 'ready while one worker is left');
    const replaced = await waitFor('a replacement worker', () => {
      const now = childPids(run.child.pid!);
      return now.length === 2 && now.includes(second) ? now : undefined;
    }, 20_000, 100);
    t.truthy(run.logs().find((l) => l['msg'] === 'worker exited; starting another in 1 s' && l['signal'] === 'SIGKILL'));
    // The replacement serves too: once it listens, the original second worker goes and requests
    // still succeed. (With no worker listening, the cluster closes the shared port.) The primary
    // logs each worker's `listening` message: a line a SIGKILLed worker cannot lose.
    const listening = (pid: number) => run.logs().some((l) => l['msg'] === 'worker listening' && l['pid'] === pid);
    const replacement = replaced.find((pid) => pid !== second)!;
    await waitFor('the replacement listening', () => listening(replacement), 20_000, 50).catch((err: unknown) => {
      t.log(run.output());
      throw err;
    });
    process.kill(second, 'SIGKILL');
    await waitFor('the second worker gone', () => !alive(second));
    for (let i = 0; i < 6; i++) t.is((await get(`http://${proxy}/svc/api/replacement-${i}`)).status, 200, 'the replacement serves');
    const workers = await waitFor('two workers again', () => {
      const now = childPids(run.child.pid!);
      return now.length === 2 && !now.includes(second) ? now : undefined;
    }, 20_000, 100);
    // Until the newest worker listens, the cluster hands connections to the other one only.
    const newest = workers.find((pid) => pid !== replacement)!;
    await waitFor('the newest worker listening', () => listening(newest), 20_000, 50);

    const inFlight = Array.from({ length: 8 }, (_, i) => get(`http://${proxy}/svc/api/slow?ms=800&i=${i}`));
    await waitFor('all 8 at the upstream', () => upstream.count('/slow') === 8, 10_000);
    run.child.kill('SIGTERM');
    const results = await Promise.all(inFlight);
    t.deepEqual(results.map((r) => r.status), Array(8).fill(200));
    t.is(await run.exited, 0, run.output());
    for (const pid of [...replaced, ...workers]) await waitFor(`worker ${pid} gone`, () => !alive(pid), 5000);
  } finally {
    run.child.kill('SIGKILL');
  }
});

test('--workers 2: a port in use stops the start with a clear error', async (t) => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  try {
    const port = (taken.address() as AddressInfo).port;
    const run = await runCli(['proxy', '--workers', '2', '--zookeeper', suite.server.connectString, '--listen', `127.0.0.1:${port}`, '--admin', '127.0.0.1:0'], { timeoutMs: 30_000 });
    t.is(run.code, 1, run.stderr);
    t.regex(run.stderr, new RegExp(`--listen 127\\.0\\.0\\.1:${port}: address already in use`));
  } finally {
    taken.close();
  }
});

test('--workers 2: one health view: an instance one worker ejects is avoided by the other without a failed try there, and counted once', async (t) => {
  const base = uniquePath('providers');
  const good = await Upstream.start('good');
  suite.defer(() => good.close());
  // Accepts and resets at once: a reset before any answer, which ejects on the spot.
  let badConnections = 0;
  const bad = net.createServer((socket) => {
    badConnections += 1;
    socket.resetAndDestroy();
  });
  await new Promise<void>((r) => bad.listen(0, '127.0.0.1', r));
  suite.defer(() => new Promise<void>((r) => bad.close(() => r())));
  await register(suite.zk, base, 'api', 'good', good.address);
  await register(suite.zk, base, 'api', 'bad', `127.0.0.1:${(bad.address() as AddressInfo).port}`);
  const { run, proxy, admin } = await startWorkers(base);
  try {
    // Until one try reaches the bad instance (the retry answers the request from the good one).
    for (let i = 0; i < 60 && badConnections === 0; i++) t.is((await get(`http://${proxy}/svc/api/first${i}`)).status, 200);
    t.is(badConnections, 1, 'one worker tried it once');
    await waitFor('the ejection in both workers', async () => {
      const body = (await (await fetch(`http://${admin}/providers/api`)).json()) as { instances: { id: string; health: { workersEjecting?: number } }[] };
      return body.instances.find((i) => i.id === 'bad')?.health.workersEjecting === 2;
    }, 5000);
    // Sequential requests alternate between the workers: neither tries the bad instance again.
    for (let i = 0; i < 30; i++) t.is((await get(`http://${proxy}/svc/api/after${i}`)).status, 200);
    t.is(badConnections, 1, 'no failed try in the other worker');
    const metrics = await (await fetch(`http://${admin}/metrics`)).text();
    t.regex(metrics, /^zkroute_ejections_total\{service="api",reason="[a-z-]+"\} 1$/m, 'the ejection counted once, by the worker that decided it');
  } finally {
    run.child.kill('SIGTERM');
    await run.exited;
  }
});
