import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCli, spawnCli, stopAll } from '../helpers/cli.js';
import { register } from '../helpers/proxy.js';
import { Upstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/wait.js';
import { zookeeperSuite } from '../helpers/suite.js';
import { uniquePath } from '../helpers/zk.js';
import { freePorts, ZooKeeperServer } from '../helpers/zookeeper-server.js';

test.after.always(() => stopAll());

const badFlags: [string[], NodeJS.ProcessEnv, RegExp][] = [
  [['--retries=-1'], {}, /--retries "-1": expected a whole number from 0 to 10/],
  [['--balancer', 'fastest'], {}, /--balancer "fastest": expected one of random, round-robin, p2c/],
  [[], { ZKROUTE_BALANCER: 'bogus' }, /ZKROUTE_BALANCER "bogus": expected one of/],
  [['--connect-timeout=-5s'], {}, /--connect-timeout "-5s": expected a duration/],
  [['--try-timeout', '0'], {}, /--try-timeout "0": must be above zero/],
  [['--listen', '127.0.0.1:99999'], {}, /--listen "127.0.0.1:99999": port must be 0-65535/],
  [['--listen', 'nonsense'], {}, /--listen "nonsense": expected HOST:PORT/],
  [['--prefix', 'svc/'], {}, /--prefix "svc\/": must start with "\/"/],
  [['--retry-buffer', 'lots'], {}, /--retry-buffer "lots": expected a size/],
  [['--max-ejection-percent', '150'], {}, /--max-ejection-percent "150": expected a whole number from 0 to 100/],
  [['--workers', '0'], {}, /--workers "0": expected a whole number from 1 to 256/],
  [['--preserve-host=maybe'], {}, /preserve-host/],
  [['--no-such-flag'], {}, /no-such-flag/],
  [['--try-timeout', '20s', '--deadline', '10s'], {}, /--try-timeout 20000ms is longer than --deadline 10000ms/],
  [['--services', 'orders,bad$name'], {}, /--services "bad\$name": may hold only letters/],
  [[], { ZKROUTE_ALLOW_UPSTREAM: '10.0.0.0/8,10.0.0.0/99' }, /ZKROUTE_ALLOW_UPSTREAM "10.0.0.0\/99": expected a CIDR/],
  [['--max-pending=-1'], {}, /--max-pending "-1": expected a whole number/],
  [['--admin-token-file', '/nonexistent/token'], {}, /--admin-token-file "\/nonexistent\/token": cannot be read \(ENOENT\)/],
];
for (const [flags, env, message] of badFlags) {
  test(`config error: ${[...flags, ...Object.entries(env).map(([k, v]) => `${k}=${v}`)].join(' ')}`, async (t) => {
    const run = await runCli(['proxy', '--zookeeper', '127.0.0.1:2181', ...flags], { env });
    t.is(run.code, 2, run.stderr);
    t.regex(run.stderr, message);
    t.is(run.stderr.trim().split('\n').length, 1, 'one clear line');
  });
}

test('config error: a missing or malformed --zookeeper', async (t) => {
  const missing = await runCli(['proxy'], { env: { ZKROUTE_ZOOKEEPER: '' } });
  t.is(missing.code, 2);
  t.regex(missing.stderr, /--zookeeper is required \(or set ZKROUTE_ZOOKEEPER\)/);
  const bad = await runCli(['proxy', '--zookeeper', '127.0.0.1:2181/chroot/']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /--zookeeper "127.0.0.1:2181\/chroot\/"/);
});

test('ZooKeeper unreachable at start: a clear error, /readyz 503 zookeeper_unreachable, ready once ZooKeeper is up', async (t) => {
  const [zkPort] = await freePorts(1);
  const run = spawnCli(['proxy', '--zookeeper', `127.0.0.1:${zkPort}`, '--zookeeper-connect-timeout', '500ms', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0']);
  const started = await waitFor('the start-up line', () => run.logs().find((l) => l['msg'] === 'zkroute proxy started'), 20_000);
  t.truthy(run.logs().find((l) => l['msg'] === 'ZooKeeper unreachable at start; retrying (readiness: zookeeper_unreachable)'));
  t.regex(run.output(), /could not connect to ZooKeeper at 127\.0\.0\.1:\d+ within 500 ms/);
  const admin = String(started['admin']);
  const readyz = await fetch(`http://${admin}/readyz`);
  t.is(readyz.status, 503);
  t.like(await readyz.json(), { status: 'not_ready', reason: 'zookeeper_unreachable' });
  const proxyAt = String(started['listen']);
  const res = await fetch(`http://${proxyAt}/svc/api/x`);
  t.is(res.status, 503);
  t.like(await res.json(), { error: 'discovery_unavailable' });

  // ZooKeeper appears on that port: the proxy connects and becomes ready.
  const late = await ZooKeeperServer.start({ clientPort: zkPort });
  try {
    await waitFor('readiness', async () => (await fetch(`http://${admin}/readyz`)).status === 200, 20_000, 100);
    run.child.kill('SIGTERM');
    t.is(await run.exited, 0, run.output());
  } finally {
    run.child.kill('SIGKILL');
    await late.close();
  }
});

const suite = zookeeperSuite(test);

/** An upstream registered as service `api` under a fresh base path in the file's ZooKeeper. */
async function apiService(): Promise<{ upstream: Upstream; base: string }> {
  const upstream = await Upstream.start('a');
  suite.defer(() => upstream.close());
  const base = uniquePath('providers');
  await register(suite.zk, base, 'api', 'a', upstream.address);
  return { upstream, base };
}

async function startedProxy(zookeeper: string, base: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}) {
  const run = spawnCli(['proxy', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--base-path', base, ...extra], { ZKROUTE_ZOOKEEPER: zookeeper, ...env });
  const started = await waitFor('the start-up log line', () => run.logs().find((l) => l['msg'] === 'zkroute proxy started'), 20_000);
  return { run, started, proxy: String(started['listen']), admin: String(started['admin']) };
}

test('runs from flags and environment, serves, and exits 0 on SIGTERM; a port in use is a clear error', async (t) => {
  const { upstream, base } = await apiService();
  const { run, started, proxy } = await startedProxy(suite.server.connectString, base, [], { ZKROUTE_BALANCER: 'p2c' });
  try {
    t.is((started['config'] as { balancer: string }).balancer, 'p2c', 'settings are logged at start-up, env applied');
    const res = await fetch(`http://${proxy}/svc/api/hello`);
    t.is(res.status, 200);
    t.is(((await res.json()) as { url: string }).url, '/hello');

    const inUse = await runCli(['proxy', '--zookeeper', suite.server.connectString, '--listen', proxy, '--admin', '127.0.0.1:0']);
    t.is(inUse.code, 1);
    t.regex(inUse.stderr, new RegExp(`--listen ${proxy.replace(/\./g, '\\.')}: address already in use`));

    run.child.kill('SIGTERM');
    t.is(await run.exited, 0);
    t.regex(run.output(), /"msg":"stopped"/);
  } finally {
    run.child.kill('SIGKILL');
  }
});

test('drain: SIGTERM under load finishes requests in flight, refuses new connections, readiness 503, exit 0', async (t) => {
  const { upstream, base } = await apiService();
  const { run, proxy, admin } = await startedProxy(suite.server.connectString, base, ['--drain-timeout', '5s']);
  try {
    t.is((await fetch(`http://${proxy}/svc/api/warm`)).status, 200);
    const inFlight = Array.from({ length: 20 }, (_, i) => fetch(`http://${proxy}/svc/api/slow?ms=800&i=${i}`).then(async (r) => ({ status: r.status, body: await r.text() })));
    await waitFor('all 20 at the upstream', () => upstream.count('/slow') === 20, 10_000);
    run.child.kill('SIGTERM');
    await waitFor('readiness 503 draining', async () => {
      const r = await fetch(`http://${admin}/readyz`);
      return r.status === 503 && ((await r.json()) as { reason: string }).reason === 'draining';
    }, 5000, 10);
    await t.throwsAsync(fetch(`http://${proxy}/svc/api/late`), undefined, 'new connections are refused while draining');
    const results = await Promise.all(inFlight);
    t.deepEqual(results.map((r) => r.status), Array(20).fill(200));
    t.is(await run.exited, 0, run.output());
    t.is(upstream.count('/late'), 0);
  } finally {
    run.child.kill('SIGKILL');
  }
});

test('--config file: flags > environment > file > defaults; errors name the key; --print-config', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'zkroute-config-'));
  const file = path.join(dir, 'zkroute.json');
  writeFileSync(file, JSON.stringify({ zookeeper: 'zk-file:2181', retries: 4, balancer: 'p2c', 'preserve-host': true, 'ejection-base': '20s' }));
  const printed = await runCli(['proxy', '--config', file, '--print-config', '--retries', '1'], { env: { ZKROUTE_BALANCER: 'round-robin' } });
  t.is(printed.code, 0, printed.stderr);
  t.like(JSON.parse(printed.stdout), { zookeeper: 'zk-file:2181', retries: 1, balancer: 'round-robin', preserveHost: true, ejectionBaseMs: 20_000, deadlineMs: 30_000 });

  // Per-service settings: the effective ones printed per service; a bad one named by its path, exit 2.
  writeFileSync(file, JSON.stringify({ zookeeper: 'zk:2181', retries: 2, services: { orders: { retries: 0, 'slow-start': '30s' } } }));
  const perService = await runCli(['proxy', '--config', file, '--print-config']);
  t.is(perService.code, 0, perService.stderr);
  t.like(JSON.parse(perService.stdout), { services: ['orders'], effectiveServiceSettings: { orders: { retries: 0, slowStartMs: 30_000, balancer: 'random', basePath: '/providers', overridden: ['retries', 'slowStartMs'] } } });
  writeFileSync(file, JSON.stringify({ zookeeper: 'zk:2181', services: { orders: { retries: '-1' } } }));
  const badService = await runCli(['proxy', '--config', file, '--print-config']);
  t.is(badService.code, 2);
  t.regex(badService.stderr, /zkroute\.json: services\.orders\.retries: "-1": expected a whole number from 0 to 10/);

  writeFileSync(file, JSON.stringify({ zookeeper: 'zk:2181', retrys: 3 }));
  const unknown = await runCli(['proxy', '--config', file, '--print-config']);
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /zkroute\.json key "retrys": not an option/);
  writeFileSync(file, JSON.stringify({ zookeeper: 'zk:2181', retries: -1 }));
  const bad = await runCli(['proxy', '--config', file, '--print-config']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /zkroute\.json key "retries" "-1": expected a whole number from 0 to 10/);
  writeFileSync(file, '{ not json');
  const broken = await runCli(['proxy', '--config', file]);
  t.is(broken.code, 2);
  t.regex(broken.stderr, /not valid JSON/);
  const missing = await runCli(['proxy', '--config', path.join(dir, 'nope.json')]);
  t.is(missing.code, 2);
  t.regex(missing.stderr, /--config ".*nope\.json": ENOENT/);
});

test('--services (flag, ZKROUTE_SERVICES): watched from the start; /readyz waits for their first read and names the one missing', async (t) => {
  const suite = await ZooKeeperServer.start();
  const { connectZk } = await import('../../src/zookeeper/client.js');
  const zk = await connectZk({ connectString: suite.connectString });
  const base = uniquePath('eager');
  try {
    await zk.mkdirp(`${base}/orders`);
    await zk.mkdirp(`${base}/billing`);
    // billing cannot be read yet: its first read fails until the ACL allows it.
    await zk.setAcl(`${base}/billing`, [{ perms: 16, scheme: 'world', id: 'anyone' }]);
    const [port, admin] = await freePorts(2);
    const run = spawnCli(['proxy', '--zookeeper', suite.connectString, '--base-path', base, '--listen', `127.0.0.1:${port}`, '--admin', `127.0.0.1:${admin}`, '--services', 'orders'], { ZKROUTE_SERVICES: 'ignored-by-the-flag' });
    const readyz = async () => (await fetch(`http://127.0.0.1:${admin}/readyz`)).json() as Promise<Record<string, string>>;
    await waitFor('the admin port', () => readyz().then(() => true, () => false), 10_000);
    await waitFor('ready', async () => (await readyz())['status'] === 'ready', 10_000);
    const providers = (await (await fetch(`http://127.0.0.1:${admin}/providers`)).json()) as { services: Record<string, { watched: boolean }> };
    t.true(providers.services['orders']!.watched, 'watched before any request');
    t.false(providers.services['billing']!.watched);
    run.child.kill('SIGTERM');
    t.is(await run.exited, 0);

    const run2 = spawnCli(['proxy', '--zookeeper', suite.connectString, '--base-path', base, '--listen', `127.0.0.1:${port}`, '--admin', `127.0.0.1:${admin}`], { ZKROUTE_SERVICES: 'orders,billing' });
    await waitFor('the admin port', () => readyz().then(() => true, () => false), 10_000);
    // orders is read at once; billing's first read keeps failing: readiness names billing alone.
    const waiting = await waitFor('not ready, naming billing alone', async () => {
      const r = await readyz();
      return r['reason'] === 'starting' && r['message'] === 'reading the services watched from the start (billing)' ? r : undefined;
    }, 10_000);
    t.is(waiting['status'], 'not_ready');
    await zk.setAcl(`${base}/billing`, [{ perms: 31, scheme: 'world', id: 'anyone' }]);
    await waitFor('ready once billing is read', async () => (await readyz())['status'] === 'ready', 10_000);
    t.pass();
    run2.child.kill('SIGTERM');
    t.is(await run2.exited, 0);
  } finally {
    await zk.close();
    await suite.close();
  }
});
