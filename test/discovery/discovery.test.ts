import test from 'ava';
import { createDiscovery, type Discovery, type DiscoveryOptions } from '../../src/discovery/discovery.js';
import type { Instance } from '../../src/discovery/provider-table.js';
import { silentLogger } from '../../src/log.js';
import { connectZk } from '../../src/zookeeper/client.js';
import { nextEvent, waitFor } from '../helpers/wait.js';
import { zookeeperSuite } from '../helpers/suite.js';
import { expireSession, uniquePath } from '../helpers/zk.js';
import { fourLetterWord, ZooKeeperServer } from '../helpers/zookeeper-server.js';

const suite = zookeeperSuite(test);

async function discovery(options: Partial<DiscoveryOptions> & { basePath: string }): Promise<Discovery> {
  const d = createDiscovery({ zookeeper: suite.server.connectString, sessionTimeoutMs: 4000, ...options }, { logger: silentLogger() });
  suite.defer(() => d.close());
  await d.start();
  return d;
}

const addresses = (instances: readonly Instance[] | undefined) => (instances ?? []).map((i) => i.address).sort();

test('nested layout: three instances in every data format appear with host, port and metadata', async (t) => {
  const base = uniquePath('providers');
  await suite.zk.mkdirp(`${base}/mixed`);
  await suite.zk.create(`${base}/mixed/json-1`, JSON.stringify({ host: '127.0.0.1', port: 8001, zone: 'a', weight: 2 }), { ephemeral: true });
  await suite.zk.create(`${base}/mixed/curator-1`, JSON.stringify({ name: 'mixed', id: 'c1', address: '127.0.0.2', port: 8002, payload: { v: 1 }, registrationTimeUTC: 1700000000000, serviceType: 'DYNAMIC' }), { ephemeral: true });
  await suite.zk.create(`${base}/mixed/member_0000000001`, JSON.stringify({ serviceEndpoint: { host: 'localhost', port: 8003 }, additionalEndpoints: {}, status: 'ALIVE' }), { ephemeral: true });
  await suite.zk.create(`${base}/mixed/text-1`, '[::1]:8004', { ephemeral: true });
  await suite.zk.create(`${base}/mixed/dead`, JSON.stringify({ serviceEndpoint: { host: '127.0.0.9', port: 8009 }, status: 'DEAD' }), { ephemeral: true });

  const d = await discovery({ basePath: base });
  const resolution = await d.resolve('mixed');
  t.is(resolution.kind, 'instances');
  const instances = resolution.kind === 'instances' ? resolution.instances : [];
  t.deepEqual(addresses(instances), ['127.0.0.1:8001', '127.0.0.2:8002', '[::1]:8004', 'localhost:8003']);
  const json = instances.find((i) => i.id === 'json-1')!;
  t.like(json, { host: '127.0.0.1', port: 8001, weight: 2, format: 'json', path: `${base}/mixed/json-1` });
  t.is(json.metadata['zone'], 'a');
  const curator = instances.find((i) => i.id === 'curator-1')!;
  t.is(curator.format, 'curator');
  t.deepEqual(curator.metadata['payload'], { v: 1 });
  t.is(instances.find((i) => i.port === 8003)!.format, 'serverset');
  t.is(d.stats().malformed, 0, 'a DEAD serverset member is skipped, not malformed');
  t.deepEqual(d.knownServices(), ['mixed']);
});

test('sequential layout: ephemeral-sequential siblings grouped by service name', async (t) => {
  const base = uniquePath('services');
  await suite.zk.mkdirp(base);
  for (const port of [9001, 9002, 9003]) await suite.zk.create(`${base}/example-service`, `127.0.0.1:${port}`, { ephemeral: true, sequential: true });
  await suite.zk.create(`${base}/other`, JSON.stringify({ host: '127.0.0.1', port: 9100 }), { ephemeral: true, sequential: true });
  const d = await discovery({ basePath: base, layout: 'sequential' });
  const r = await d.resolve('example-service');
  t.deepEqual(r.kind === 'instances' ? addresses(r.instances) : r.kind, ['127.0.0.1:9001', '127.0.0.1:9002', '127.0.0.1:9003']);
  t.deepEqual(d.knownServices(), ['example-service', 'other']);
  t.regex(r.kind === 'instances' ? r.instances[0]!.id : '', /^example-service\d{10}$/);
});

test('a new child appears and a deleted child disappears within 1 s', async (t) => {
  const base = uniquePath('providers');
  await suite.zk.mkdirp(`${base}/api`);
  await suite.zk.create(`${base}/api/a`, '127.0.0.1:7001', { ephemeral: true });
  const d = await discovery({ basePath: base, services: ['api'] });
  t.true(await d.ready());
  t.deepEqual(addresses(d.instances('api')), ['127.0.0.1:7001']);

  let started = Date.now();
  await suite.zk.create(`${base}/api/b`, '127.0.0.1:7002', { ephemeral: true });
  await waitFor('the new child', () => d.instances('api')?.length === 2, 1000, 5);
  t.log(`appeared after ${Date.now() - started} ms`);

  started = Date.now();
  await suite.zk.delete(`${base}/api/a`);
  await waitFor('the deleted child to go', () => addresses(d.instances('api')).join() === '127.0.0.1:7002', 1000, 5);
  t.log(`disappeared after ${Date.now() - started} ms`);

  // Data change of an existing child is read again.
  await suite.zk.setData(`${base}/api/b`, '127.0.0.1:7003');
  await waitFor('the changed data', () => addresses(d.instances('api')).join() === '127.0.0.1:7003', 1000, 5);
  t.pass();
});

test('unknown services are told apart from services without instances', async (t) => {
  const base = uniquePath('providers');
  await suite.zk.mkdirp(`${base}/empty-now`);
  const d = await discovery({ basePath: base });
  t.deepEqual(await d.resolve('empty-now'), { kind: 'empty' });
  t.deepEqual(await d.resolve('no-such-service'), { kind: 'unknown' });
  t.is(d.stats().watchedServices, 1, 'an unknown name creates no watch');
  const appeared = nextEvent(d, 'change', 2000);
  await suite.zk.create(`${base}/empty-now/x`, '127.0.0.1:7100', { ephemeral: true });
  await appeared;
  t.is((await d.resolve('empty-now')).kind, 'instances');
});

test('malformed data of every kind is skipped and counted; the others are served', async (t) => {
  const base = uniquePath('providers');
  const svc = `${base}/shaky`;
  await suite.zk.mkdirp(svc);
  await suite.zk.create(`${svc}/good`, JSON.stringify({ host: '127.0.0.1', port: 7201 }), { ephemeral: true });
  await suite.zk.create(`${svc}/good-dup`, '127.0.0.1:7201', { ephemeral: true });
  const bad: [string, string | Buffer][] = [
    ['not-json', 'definitely not an address'],
    ['no-port', '{"host":"127.0.0.1"}'],
    ['string-port', '{"host":"127.0.0.1","port":"80"}'],
    ['big-port', '{"host":"127.0.0.1","port":70000}'],
    ['zero-port', '127.0.0.1:0'],
    ['empty-host', '{"host":"","port":80}'],
    ['too-large', JSON.stringify({ host: '127.0.0.1', port: 80, pad: 'x'.repeat(5000) })],
    ['not-utf8', Buffer.from([0xc3, 0x28, 0x3a, 0x38, 0x30])],
    ['broken-json', '{"host": "127.0.0.1", '],
  ];
  for (const [name, data] of bad) await suite.zk.create(`${svc}/${name}`, data, { ephemeral: true });
  const d = await discovery({ basePath: base });
  const r = await d.resolve('shaky');
  t.deepEqual(r.kind === 'instances' ? addresses(r.instances) : r.kind, ['127.0.0.1:7201']);
  const stats = d.stats();
  t.is(stats.malformed, bad.length);
  t.is(stats.duplicatesDropped, 1);
  t.like(stats.malformedByReason, { unrecognized: 1, bad_port: 4, bad_host: 1, too_large: 1, not_utf8: 1, bad_json: 1 });
  // A later change re-reads only the new child: the bad ones are not counted again.
  await suite.zk.create(`${svc}/good-2`, '127.0.0.1:7202', { ephemeral: true });
  await waitFor('good-2', () => d.instances('shaky')?.length === 2, 2000);
  t.is(d.stats().malformed, bad.length);
});

test('a service whose instances all vanish keeps its last set (keep-last-on-empty), or empties when disabled', async (t) => {
  const base = uniquePath('providers');
  await suite.zk.mkdirp(`${base}/fragile`);
  await suite.zk.create(`${base}/fragile/a`, '127.0.0.1:7301', { ephemeral: true });
  const keep = await discovery({ basePath: base, services: ['fragile'] });
  const strict = await discovery({ basePath: base, services: ['fragile'], keepLastOnEmpty: false });
  await keep.ready();
  await strict.ready();
  await suite.zk.delete(`${base}/fragile/a`);
  await waitFor('strict table to empty', () => strict.instances('fragile')?.length === 0, 2000);
  await waitFor('the empty set to be counted', () => keep.stats().emptySetsIgnored === 1, 2000);
  t.deepEqual(addresses(keep.instances('fragile')), ['127.0.0.1:7301']);
});

test('stopping ZooKeeper keeps the table; after it returns, later changes are picked up', async (t) => {
  const own = await ZooKeeperServer.start();
  try {
    const w = await connectZk({ connectString: own.connectString, sessionTimeoutMs: 20_000 });
    const base = '/providers';
    await w.mkdirp(`${base}/api`);
    await w.create(`${base}/api/a`, '127.0.0.1:7401', { ephemeral: true });
    const d = createDiscovery({ zookeeper: own.connectString, basePath: base, sessionTimeoutMs: 20_000, services: ['api'] }, { logger: silentLogger() });
    try {
      await d.start();
      await d.ready();
      await own.stop();
      await waitFor('the session to notice', () => d.stats().session.state === 'disconnected', 10_000);
      t.deepEqual(addresses(d.instances('api')), ['127.0.0.1:7401'], 'table kept while ZooKeeper is down');
      await waitFor('staleness to grow', () => d.stats().staleSeconds > 0.2, 3000);
      await own.start();
      await waitFor('the session to resume', () => d.stats().session.state === 'connected', 15_000);
      await waitFor('the writer to resume', () => w.state === 'connected', 15_000);
      await w.create(`${base}/api/b`, '127.0.0.1:7402', { ephemeral: true });
      await waitFor('the change made after the return', () => d.instances('api')?.length === 2, 3000);
      t.is(d.stats().session.expiries, 0);
      t.is(d.stats().staleSeconds, 0);
    } finally {
      await d.close();
      await w.close();
    }
  } finally {
    await own.close();
  }
});

test('forced expiry of the discovery session: table survives, a new session re-watches once', async (t) => {
  const base = uniquePath('providers');
  await suite.zk.mkdirp(`${base}/api`);
  await suite.zk.create(`${base}/api/a`, '127.0.0.1:7501', { ephemeral: true });
  const d = await discovery({ basePath: base, services: ['api'] });
  await d.ready();
  const oldSession = d.session.client!.sessionId;
  const changes: unknown[] = [];
  d.on('change', (service: string) => changes.push(service));

  const renewed = nextEvent(d.session, 'session', 20_000);
  await expireSession(suite.server.connectString, d.session.client!);
  await renewed;
  t.not(d.session.client!.sessionId, oldSession);
  t.is(d.stats().session.expiries, 1);
  t.deepEqual(addresses(d.instances('api')), ['127.0.0.1:7501'], 'table survived the expiry');

  await suite.zk.create(`${base}/api/b`, '127.0.0.1:7502', { ephemeral: true });
  await waitFor('a change after expiry', () => d.instances('api')?.length === 2, 2000);

  // The server lists data watches per session (child watches are not listed by wchc): each
  // instance znode is watched once, by the new session only.
  const newSession = d.session.client!.sessionId;
  const watches = await waitFor('the watch listing', async () => {
    const text = await fourLetterWord(suite.server.clientPort, 'wchc');
    return text.includes(`0x${newSession}`) && text.includes(`${base}/api/b`) ? text : undefined;
  }, 3000);
  const ours = watches.split(/\n(?=0x)/).find((section) => section.startsWith(`0x${newSession}`)) ?? '';
  for (const child of ['a', 'b']) {
    t.is(ours.split('\n').filter((line) => line.trim() === `${base}/api/${child}`).length, 1, `one data watch on ${child}`);
  }
  t.false(watches.includes(`0x${oldSession}`), 'the expired session has no watches left');
  // One create -> exactly one change event (no duplicate watchers firing twice).
  t.is(changes.length, 1);
});

test('change events carry the delta: one new child, a new version, and a duplicate taking over', async (t) => {
  const base = uniquePath('providers');
  await suite.zk.mkdirp(`${base}/api`);
  for (let i = 0; i < 20; i++) await suite.zk.create(`${base}/api/i${i}`, `127.0.0.1:${7100 + i}`, { ephemeral: true });
  const d = await discovery({ basePath: base, services: ['api'] });
  t.true(await d.ready());
  const deltas: string[] = [];
  d.on('change', (_s: string, _i: readonly Instance[], delta: { added: Instance[]; removed: Instance[] }) => {
    deltas.push(`+${delta.added.map((i) => `${i.id}@${i.version}`).join(',')} -${delta.removed.map((i) => `${i.id}@${i.version}`).join(',')}`);
  });
  const before = d.instances('api')!;
  await suite.zk.create(`${base}/api/new`, '127.0.0.1:7200', { ephemeral: true });
  await waitFor('the new child', () => d.instances('api')?.length === 21, 1000, 5);
  // Every other instance is the same object as before.
  t.is(d.instances('api')!.filter((i) => before.includes(i)).length, 20);
  await suite.zk.setData(`${base}/api/new`, '127.0.0.1:7201');
  await waitFor('the new version', () => addresses(d.instances('api')).includes('127.0.0.1:7201'), 1000, 5);
  // A second znode for an address already served is held back until the first goes.
  await suite.zk.create(`${base}/api/twin`, '127.0.0.1:7100', { ephemeral: true });
  await suite.zk.delete(`${base}/api/i0`);
  await waitFor('the twin to take over', () => d.instances('api')?.some((i) => i.id === 'twin') === true, 1000, 5);
  t.deepEqual(deltas, ['+new@0 -', '+new@1 -new@0', '+twin@0 -i0@0']);
  t.is(d.instances('api')!.length, 21);
});

test('a churn burst converges to exactly what ZooKeeper holds, with one sync in flight per path', async (t) => {
  const base = uniquePath('providers');
  await suite.zk.mkdirp(`${base}/churn`);
  const d = await discovery({ basePath: base, services: ['churn'] });
  await d.ready();
  const live = new Set<string>();
  const ops: Promise<unknown>[] = [];
  let operations = 0;
  const started = Date.now();
  for (let i = 0; i < 250; i++) {
    const path = `${base}/churn/n${i}`;
    ops.push(suite.zk.create(path, `127.0.0.1:${10000 + i}`, { ephemeral: true }));
    operations += 1;
    live.add(path);
    if (i % 2 === 0 && i > 0) {
      const victim = `${base}/churn/n${i - 1}`;
      ops.push(suite.zk.delete(victim));
      operations += 1;
      live.delete(victim);
    }
    if (ops.length >= 32) await Promise.all(ops.splice(0));
  }
  await Promise.all(ops);
  t.log(`${operations} operations in ${Date.now() - started} ms`);
  const expected = [...live].map((p) => `127.0.0.1:${10000 + Number(p.slice(p.lastIndexOf('n') + 1))}`).sort();
  const settled = Date.now();
  await waitFor('convergence', () => addresses(d.instances('churn')).join() === expected.join(), 5000);
  t.log(`converged ${Date.now() - settled} ms after the last operation`);
  t.is(d.stats().maxSyncsInFlightPerPath, 1);
  t.deepEqual(await suite.zk.getChildren(`${base}/churn`).then((c) => c.length), expected.length);
});

test('digest auth reads an ACL-protected tree; without it the read is refused and nothing is applied', async (t) => {
  const { createHash } = await import('node:crypto');
  const base = uniquePath('secure');
  const owner = await connectZk({ connectString: suite.server.connectString, auth: [{ scheme: 'digest', credentials: 'zkroute:s3cret' }] });
  suite.defer(() => owner.close());
  await owner.mkdirp(`${base}/api`);
  await owner.create(`${base}/api/a`, '127.0.0.1:7701', { ephemeral: true });
  const digest = createHash('sha1').update('zkroute:s3cret').digest('base64');
  const acl = [{ perms: 31, scheme: 'digest', id: `zkroute:${digest}` }];
  for (const path of [`${base}/api/a`, `${base}/api`, base]) await owner.setAcl(path, acl);

  const d = await discovery({ basePath: base, auth: [{ scheme: 'digest', credentials: 'zkroute:s3cret' }] });
  const r = await d.resolve('api');
  t.deepEqual(r.kind === 'instances' ? addresses(r.instances) : r.kind, ['127.0.0.1:7701']);

  const anonymous = await discovery({ basePath: base, firstSnapshotTimeoutMs: 1500 });
  t.is((await anonymous.resolve('api')).kind, 'timeout', 'NO_AUTH reads apply nothing');
  t.is(anonymous.instances('api'), undefined);
});
