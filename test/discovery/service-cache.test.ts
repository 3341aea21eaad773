import test from 'ava';
import v8 from 'node:v8';
import vm from 'node:vm';
import { ChildrenWatcher } from '../../src/discovery/children-watcher.js';
import { Discovery } from '../../src/discovery/discovery.js';
import { InstanceDecoder } from '../../src/discovery/instance-decoder.js';
import { ProviderTable, type Instance, type SetDelta } from '../../src/discovery/provider-table.js';
import { ServiceCache } from '../../src/discovery/service-cache.js';
import { silentLogger } from '../../src/log.js';
import { FakeZooKeeper } from '../helpers/fake-zookeeper.js';
import { waitFor } from '../helpers/wait.js';

const json = (port: number) => JSON.stringify({ host: '127.0.0.1', port });

/** A ServiceCache fed by a real ChildrenWatcher over an in-memory ZooKeeper. */
function cacheOver(zk: FakeZooKeeper, options: { keepLastOnEmpty?: boolean } = {}) {
  const session = zk.session();
  const table = new ProviderTable({ keepLastOnEmpty: options.keepLastOnEmpty ?? true });
  const decoder = new InstanceDecoder(silentLogger());
  let decoded = 0;
  const counting = Object.assign(Object.create(decoder) as InstanceDecoder, {
    decode: (...args: Parameters<InstanceDecoder['decode']>) => {
      decoded += 1;
      return decoder.decode(...args);
    },
  });
  const cache = new ServiceCache('api', { table, decoder: counting, logger: silentLogger() });
  cache.watcher = new ChildrenWatcher({ path: '/p/api', readData: true }, { session, logger: silentLogger(), onSnapshot: (s) => cache.apply(s) });
  const deltas: { added: string[]; removed: string[] }[] = [];
  table.on('change', (_s: string, _i: readonly Instance[], d: SetDelta) => deltas.push({ added: d.added.map((i) => i.id), removed: d.removed.map((i) => i.id) }));
  const ids = () => (table.get('api')?.instances ?? []).map((i) => i.id);
  return { session, table, decoder, cache, deltas, ids, decodedCount: () => decoded };
}

test('first snapshot: every usable child, bad data skipped and counted once', async (t) => {
  const zk = new FakeZooKeeper();
  zk.create('/p', '');
  zk.create('/p/api', '');
  zk.create('/p/api/a', json(7001));
  zk.create('/p/api/b', json(7002));
  zk.create('/p/api/bad', 'not data');
  const { cache, decoder, ids } = cacheOver(zk);
  cache.watcher!.start();
  await cache.whenLoaded();
  t.true(cache.loaded);
  t.deepEqual(ids(), ['a', 'b']);
  t.like(decoder.stats(), { malformed: 1, malformedByReason: { unrecognized: 1 } });
  cache.close();
});

test('one new, changed or deleted child: decoded alone, applied as a one-instance delta', async (t) => {
  const zk = new FakeZooKeeper();
  zk.create('/p', '');
  zk.create('/p/api', '');
  for (let i = 0; i < 50; i++) zk.create(`/p/api/i${i}`, json(8000 + i));
  const { cache, deltas, ids, decodedCount, table } = cacheOver(zk);
  cache.watcher!.start();
  await cache.whenLoaded();
  t.is(ids().length, 50);
  t.is(decodedCount(), 50);

  zk.create('/p/api/new', json(9000));
  await waitFor('the new child', () => ids().includes('new'));
  t.is(decodedCount(), 51, 'only the new child was decoded');
  t.deepEqual(deltas.at(-1), { added: ['new'], removed: [] });

  const before = table.get('api')!.instances.find((i) => i.id === 'new')!;
  zk.setData('/p/api/new', json(9001));
  await waitFor('the changed data', () => table.get('api')!.instances.some((i) => i.port === 9001));
  t.deepEqual(deltas.at(-1), { added: ['new'], removed: ['new'] });
  const after = table.get('api')!.instances.find((i) => i.id === 'new')!;
  t.is(after.uid, before.uid, 'a new version of the same znode keeps its uid (and its health record)');
  t.is(after.version, 1);

  zk.delete('/p/api/i7');
  await waitFor('the deleted child gone', () => !ids().includes('i7'));
  t.deepEqual(deltas.at(-1), { added: [], removed: ['i7'] });
  t.is(decodedCount(), 52);
  cache.close();
});

test('a new session re-reads every child without decoding any again or changing the set', async (t) => {
  const zk = new FakeZooKeeper();
  zk.create('/p', '');
  zk.create('/p/api', '');
  zk.create('/p/api/a', json(7001));
  zk.create('/p/api/b', json(7002));
  const { session, cache, deltas, decodedCount, ids } = cacheOver(zk);
  cache.watcher!.start();
  await cache.whenLoaded();
  const changes = deltas.length;
  const reads = zk.reads;
  session.renew();
  await waitFor('every child read again', () => zk.reads === reads + 2);
  t.is(decodedCount(), 2, 'same znodes, same versions: nothing decoded again');
  t.is(deltas.length, changes, 'no change event');
  t.is(zk.watchesOn('/p/api'), 1, 'one children watch re-armed on the new session');
  // Watches of the new session work: a change after it is seen.
  zk.create('/p/api/c', json(7003));
  await waitFor('a child added after the new session', () => ids().includes('c'));
  cache.close();
});

test('a reconnect of the same session re-reads nothing; a list that failed is retried on the reconnect', async (t) => {
  const zk = new FakeZooKeeper();
  zk.create('/p', '');
  zk.create('/p/api', '');
  zk.create('/p/api/a', json(7001));
  const { session, cache, ids } = cacheOver(zk);
  cache.watcher!.start();
  await cache.whenLoaded();
  const lists = zk.lists;
  const reads = zk.reads;
  session.reconnect();
  await Promise.resolve();
  t.is(zk.lists, lists, 'the watches survived: no list');
  t.is(zk.reads, reads, 'and no read');
  // A change whose list fails (the link dropped): the reconnect retries it at once, not after the
  // retry delay (1 s by default; the test would time out waiting for it).
  zk.failLists = 1;
  zk.create('/p/api/b', json(7002));
  await waitFor('the failed list', () => zk.lists === lists + 1);
  session.reconnect();
  await waitFor('the child seen after the reconnect', () => ids().includes('b'), 500);
  t.is(zk.lists, lists + 2, 'one list retried');
  cache.close();
});

test('the parent gone: an empty set is not applied (keep-last-on-empty); without it the set empties', async (t) => {
  for (const keepLastOnEmpty of [true, false]) {
    const zk = new FakeZooKeeper();
    zk.create('/p', '');
    zk.create('/p/api', '');
    zk.create('/p/api/a', json(7001));
    const { cache, table, ids } = cacheOver(zk, { keepLastOnEmpty });
    cache.watcher!.start();
    await cache.whenLoaded();
    zk.delete('/p/api/a');
    zk.delete('/p/api');
    await waitFor('the parent seen gone', () => (keepLastOnEmpty ? table.get('api')!.keptOnEmpty : ids().length === 0));
    t.deepEqual(ids(), keepLastOnEmpty ? ['a'] : []);
    zk.create('/p/api', '');
    zk.create('/p/api/b', json(7002));
    await waitFor('the service back', () => ids().join() === 'b');
    t.false(table.get('api')!.keptOnEmpty);
    cache.close();
  }
});

test('sequential layout: one base watch, children routed to their service, applied as deltas', async (t) => {
  const zk = new FakeZooKeeper();
  zk.create('/services', '');
  zk.create('/services/example-service0000000001', '127.0.0.1:9091');
  zk.create('/services/example-service0000000002', '127.0.0.1:9092');
  zk.create('/services/cache0000000003', '127.0.0.1:6380');
  zk.create('/services/not-sequential', '127.0.0.1:1');
  const d = new Discovery({ zookeeper: 'unused:2181', basePath: '/services', layout: 'sequential' }, { logger: silentLogger(), session: zk.session() });
  const changes: string[] = [];
  d.on('change', (service: string, _i: readonly Instance[], delta: SetDelta) => changes.push(`${service} +${delta.added.length} -${delta.removed.length}`));
  await d.start();
  t.true(await d.ready());
  t.deepEqual(d.knownServices(), ['cache', 'example-service']);
  t.deepEqual(d.instances('example-service')?.map((i) => i.port), [9091, 9092]);
  t.deepEqual(await d.resolve('cache'), { kind: 'instances', instances: d.instances('cache')! });
  t.deepEqual(await d.resolve('not-sequential'), { kind: 'unknown' });
  const before = changes.length;
  zk.delete('/services/example-service0000000001');
  await waitFor('the instance gone', () => d.instances('example-service')?.length === 1);
  t.deepEqual(changes.slice(before), ['example-service +0 -1'], 'only that service changed, by one');
  t.is(zk.watchesOn('/services'), 1);
  await d.close();
});

test('raw znode data is not kept: neither the 4 KiB-plus data that is rejected nor the data of accepted children', async (t) => {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const zk = new FakeZooKeeper();
  zk.create('/p', '');
  zk.create('/p/api', '');
  for (let i = 0; i < 20; i++) zk.create(`/p/api/big${i}`, JSON.stringify({ host: '127.0.0.1', port: 7000 + i, pad: 'x'.repeat(64 * 1024) }));
  for (let i = 0; i < 5; i++) zk.create(`/p/api/ok${i}`, json(8000 + i));
  const { session, cache, decoder, ids } = cacheOver(zk);
  // Every buffer the watcher reads is a fresh copy we can watch being collected.
  const refs: WeakRef<Buffer>[] = [];
  const client = session.client as unknown as { getData: (path: string, watcher?: unknown) => Promise<{ data: Buffer; stat: unknown }> };
  const read = client.getData.bind(client);
  client.getData = async (path, watcher) => {
    const { data, stat } = await read(path, watcher);
    const copy = Buffer.from(data);
    refs.push(new WeakRef(copy));
    return { data: copy, stat };
  };
  cache.watcher!.start();
  await cache.whenLoaded();
  t.deepEqual(ids(), ['ok0', 'ok1', 'ok2', 'ok3', 'ok4']);
  t.like(decoder.stats(), { malformedByReason: { too_large: 20 } });
  t.is(refs.length, 25);
  for (let i = 0; i < 5 && refs.some((r) => r.deref() !== undefined); i++) {
    await new Promise((resolve) => setImmediate(resolve));
    gc();
  }
  t.is(refs.filter((r) => r.deref() !== undefined).length, 0, 'every raw buffer was collected');
  cache.close();
});
