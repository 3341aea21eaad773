import test from 'ava';
import { createDiscovery } from '../../src/discovery/discovery.js';
import { silentLogger } from '../../src/log.js';
import { defaultHost } from '../../src/registration/host.js';
import { register, Registration } from '../../src/registration/registration.js';
import { connectZk } from '../../src/zookeeper/client.js';
import { captureLogger } from '../helpers/proxy.js';
import { nextEvent, waitFor } from '../helpers/wait.js';
import { zookeeperSuite } from '../helpers/suite.js';
import { expireSession, uniquePath } from '../helpers/zk.js';
import { freePorts } from '../helpers/zookeeper-server.js';

const suite = zookeeperSuite(test);

async function registered(options: Partial<Parameters<typeof register>[0]> & { basePath: string }): Promise<Registration> {
  const r = await register({ zookeeper: suite.server.connectString, service: 'orders', host: '127.0.0.1', port: 8080, sessionTimeoutMs: 4000, ...options });
  suite.defer(() => r.close());
  return r;
}

test('nested layout: <base>/<service>/<uuid> with the kazoo JSON, owned by the registration session; close() removes it', async (t) => {
  const base = uniquePath('providers');
  const r = await registered({ basePath: base, metadata: { zone: 'a', version: '1.2' } });
  t.regex(r.path!, new RegExp(`^${base}/orders/[0-9a-f-]{36}$`));
  const { data, stat } = await suite.zk.getData(r.path!);
  t.deepEqual(JSON.parse(data.toString()), { zone: 'a', version: '1.2', host: '127.0.0.1', port: 8080 });
  t.is(stat.ephemeralOwner, r.session.client!.sessionId);
  t.not(stat.ephemeralOwner, suite.zk.sessionId);
  t.is((await suite.zk.exists(`${base}/orders`))!.ephemeralOwner, '0', 'parents are persistent');
  const path = r.path!;
  await r.close();
  t.is(await suite.zk.exists(path), null);
});

test('sequential layout: <base>/<service>NNNNNNNNNN holding host:port', async (t) => {
  const base = uniquePath('services');
  const r = await registered({ basePath: base, layout: 'sequential', host: '::1', port: 9000 });
  t.regex(r.path!, new RegExp(`^${base}/orders\\d{10}$`));
  t.is((await suite.zk.getData(r.path!)).data.toString(), '[::1]:9000');
});

test('a discovery client sees the instance appear and disappear', async (t) => {
  const base = uniquePath('providers');
  await suite.zk.mkdirp(`${base}/orders`);
  const d = createDiscovery({ zookeeper: suite.server.connectString, basePath: base, services: ['orders'], keepLastOnEmpty: false }, { logger: silentLogger() });
  suite.defer(() => d.close());
  await d.start();
  await d.ready();
  const r = await registered({ basePath: base, port: 8181, metadata: { weight: 3 } });
  await waitFor('the instance in discovery', () => d.instances('orders')?.some((i) => i.port === 8181 && i.weight === 3));
  await r.close();
  await waitFor('the instance gone from discovery', () => (d.instances('orders') ?? []).length === 0);
  t.pass();
});

test('forced session expiry: the node is re-created within 1 s, and discovery sees it back', async (t) => {
  const base = uniquePath('providers');
  const d = createDiscovery({ zookeeper: suite.server.connectString, basePath: base, services: ['orders'], keepLastOnEmpty: false }, { logger: silentLogger() });
  suite.defer(() => d.close());
  const r = await registered({ basePath: base, port: 8282 });
  await d.start();
  await waitFor('the instance in discovery', () => d.instances('orders')?.length === 1);
  const oldSession = r.session.client!.sessionId;
  const lost = nextEvent(r, 'lost', 20_000);
  const back = nextEvent<string>(r, 'reregistered', 20_000);
  await expireSession(suite.server.connectString, r.session.client!);
  await lost;
  const lostAt = Date.now();
  const path = await back;
  const took = Date.now() - lostAt;
  t.log(`re-created ${took} ms after the expiry was seen`);
  t.true(took < 1000, `${took} ms`);
  const stat = await suite.zk.exists(path);
  t.is(stat?.ephemeralOwner, r.session.client!.sessionId);
  t.not(stat?.ephemeralOwner, oldSession);
  await waitFor('discovery to see it back', () => d.instances('orders')?.some((i) => i.port === 8282 && i.path === path));
});

test('a node deleted by someone else is re-created', async (t) => {
  const base = uniquePath('providers');
  const r = await registered({ basePath: base });
  const back = nextEvent<string>(r, 'reregistered', 5000);
  await suite.zk.delete(r.path!);
  t.is(await back, r.path!);
  t.truthy(await suite.zk.exists(r.path!));
});

test('a node left by an earlier session with our id is deleted and re-created, so watchers fire', async (t) => {
  const base = uniquePath('providers');
  const stale = await connectZk({ connectString: suite.server.connectString });
  suite.defer(() => stale.close());
  await stale.mkdirp(`${base}/orders`);
  await stale.create(`${base}/orders/fixed`, JSON.stringify({ host: '127.0.0.1', port: 1 }), { ephemeral: true });
  const deleted = new Promise<string>((resolve) => void suite.zk.exists(`${base}/orders/fixed`, (e) => resolve(e.type)));
  const r = await registered({ basePath: base, id: 'fixed', port: 8383 });
  t.is(await deleted, 'deleted');
  const { data, stat } = await suite.zk.getData(`${base}/orders/fixed`);
  t.is(JSON.parse(data.toString()).port, 8383);
  t.is(stat.ephemeralOwner, r.session.client!.sessionId);
});

test('withdraw() and announce() remove and restore the node on the same session', async (t) => {
  const base = uniquePath('providers');
  const r = await registered({ basePath: base, id: 'cycle' });
  const session = r.session.client!.sessionId;
  await r.withdraw();
  t.is(await suite.zk.exists(`${base}/orders/cycle`), null);
  t.false(r.registered);
  await r.announce();
  t.is((await suite.zk.exists(`${base}/orders/cycle`))?.ephemeralOwner, session);
});

test('bad input is refused with a clear message; unreachable ZooKeeper fails within the deadline', async (t) => {
  const base = { zookeeper: suite.server.connectString, basePath: '/x' };
  t.throws(() => new Registration({ ...base, service: '../etc', port: 80 }), { message: /service "..\/etc" may hold only/ });
  t.throws(() => new Registration({ ...base, service: 'a', port: 70000 }), { message: /port 70000 is not 1-65535/ });
  t.throws(() => new Registration({ ...base, service: 'a', port: 80, host: 'bad host' }), { message: /host "bad host"/ });
  const [port] = await freePorts(1);
  await t.throwsAsync(register({ zookeeper: `127.0.0.1:${port}`, service: 'a', port: 80, connectTimeoutMs: 500 }), { message: /could not connect to ZooKeeper at 127\.0\.0\.1:\d+ within 500 ms/ });
});

test('the default host is an address of this machine', (t) => {
  t.is(defaultHost({ lo: [{ address: '127.0.0.1', family: 'IPv4', internal: true, netmask: '', mac: '', cidr: null }], eth0: [{ address: '10.1.2.3', family: 'IPv4', internal: false, netmask: '', mac: '', cidr: null }] }), '10.1.2.3');
  t.is(defaultHost({ lo: [{ address: '127.0.0.1', family: 'IPv4', internal: true, netmask: '', mac: '', cidr: null }] }), '127.0.0.1');
  t.regex(defaultHost(), /^[0-9a-f.:]+$/);
});

test('a re-create refused for good (NO_AUTH after an ACL change) is retried with backoff, and succeeds once the ACL allows it', async (t) => {
  const { logger, lines } = captureLogger('info');
  const base = uniquePath('providers');
  const r = await register({ zookeeper: suite.server.connectString, service: 'orders', host: '127.0.0.1', port: 8080, basePath: base, id: 'acl' }, { logger });
  const parent = `${base}/orders`;
  try {
    // Read, delete and admin, not create: our node can be removed, not created again.
    await suite.zk.setAcl(parent, [{ perms: 1 | 8 | 16, scheme: 'world', id: 'anyone' }]);
    await suite.zk.delete(`${parent}/acl`);
    const failure = await waitFor('the refused re-create logged', () => lines.find((l) => l['msg'] === 'could not register; retrying'), 5000);
    t.is(failure['retryInMs'], 1000);
    t.false(r.registered);
    const restoredAt = Date.now();
    await suite.zk.setAcl(parent, [{ perms: 31, scheme: 'world', id: 'anyone' }]);
    const stat = await waitFor('the node re-created by a retry', async () => {
      const s = await suite.zk.exists(`${parent}/acl`);
      return s && s.ephemeralOwner === r.session.client?.sessionId ? s : undefined;
    }, 10_000, 20);
    t.truthy(stat);
    t.log(`re-created ${Date.now() - restoredAt} ms after the ACL allowed it (${lines.filter((l) => l['msg'] === 'could not register; retrying').length} refused tries)`);
    // The create's reply may reach the registration a moment after another client sees the node.
    t.true(await waitFor('registered again', () => r.registered, 5000));
  } finally {
    await suite.zk.setAcl(parent, [{ perms: 31, scheme: 'world', id: 'anyone' }]).catch(() => {});
    await r.close();
  }
});
