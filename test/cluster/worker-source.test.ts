import test from 'ava';
import { nextRestartDelay } from '../../src/cluster/primary.js';
import type { Instance, SetDelta } from '../../src/discovery/provider-table.js';
import type { Channel, ToPrimary, ToWorker } from '../../src/cluster/messages.js';
import { WorkerSource } from '../../src/cluster/worker-source.js';
import { fakeInstance } from '../helpers/instances.js';

/** A channel whose sent messages are recorded (the primary is played by the test). */
function channel(): Channel<ToWorker, ToPrimary> & { sent: ToPrimary[] } {
  const sent: ToPrimary[] = [];
  return { sent, send: (m) => sent.push(m), onMessage: () => {} };
}

const ids = (list: readonly Instance[] | undefined) => (list ?? []).map((i) => i.id).sort();

test('keeps the primary\'s table from the snapshot and deltas, with change events', (t) => {
  const ch = channel();
  const source = new WorkerSource({ resolveTimeoutMs: 1000 }, ch);
  const deltas: string[] = [];
  source.on('change', (service: string, _i: readonly Instance[], d: SetDelta) => deltas.push(`${service} +${ids(d.added).join(',')} -${ids(d.removed).join(',')}`));
  const [a, b, c] = [fakeInstance(7001, { service: 'api' }), fakeInstance(7002, { service: 'api' }), fakeInstance(7003, { service: 'api' })];
  t.false(source.loaded);
  source.apply({ zkroute: 'snapshot', services: [['api', [a!, b!]]] });
  t.true(source.loaded);
  t.deepEqual(ids(source.instances('api')), ids([a!, b!]));
  source.apply({ zkroute: 'change', service: 'api', added: [c!], removed: [a!.uid] });
  t.deepEqual(ids(source.instances('api')), ids([b!, c!]));
  // A uid it never had is ignored.
  source.apply({ zkroute: 'change', service: 'api', added: [], removed: ['/nope#1'] });
  t.deepEqual(ids(source.instances('api')), ids([b!, c!]));
  t.is(deltas.length, 2);
  t.is(deltas[1], `api +${c!.id} -${a!.id}`);
});

test('lookups: known sets at once, made-up names without asking once the names are known, one question per service', async (t) => {
  const ch = channel();
  const source = new WorkerSource({ resolveTimeoutMs: 200 }, ch);
  source.apply({ zkroute: 'snapshot', services: [] });
  // Before the primary sent the names, a lookup asks it; concurrent lookups share one question.
  const first = source.resolve('orders');
  const second = source.resolve('orders');
  t.is(ch.sent.filter((m) => m.zkroute === 'resolve').length, 1);
  const asked = ch.sent[0] as Extract<ToPrimary, { zkroute: 'resolve' }>;
  t.is(asked.service, 'orders');
  // The primary sends the set, then its answer (one channel, in order).
  const o = fakeInstance(7100, { service: 'orders' });
  source.apply({ zkroute: 'change', service: 'orders', added: [o], removed: [] });
  source.apply({ zkroute: 'resolved', id: asked.id, kind: 'instances' });
  const [r1, r2] = await Promise.all([first, second]);
  t.is(r1.kind, 'instances');
  t.deepEqual(r1, r2);

  source.apply({ zkroute: 'known', names: ['orders', 'billing'] });
  ch.sent.length = 0;
  t.deepEqual(await source.resolve('made-up'), { kind: 'unknown' });
  t.is(ch.sent.length, 0, 'a name ZooKeeper does not list is answered without asking');
  // A listed service with no set here yet is asked for; no answer in time is a timeout.
  t.deepEqual(await source.resolve('billing'), { kind: 'timeout' });
  t.is(ch.sent.length, 1);
});

test('a crashing worker is replaced after 1 s, doubling to 30 s while workers die young, reset after a minute up', (t) => {
  const delays: number[] = [];
  let delay = 0;
  for (let i = 0; i < 8; i++) delays.push((delay = nextRestartDelay(delay, 500)));
  t.deepEqual(delays, [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
  t.is(nextRestartDelay(30_000, 60_000), 1000, 'a worker that ran for a minute resets the backoff');
  t.is(nextRestartDelay(4000, 59_000), 8000);
});

test('a service the primary says left is forgotten: no entry, a removed event, unknown to lookups once the names say so', async (t) => {
  const ch = channel();
  const source = new WorkerSource({ resolveTimeoutMs: 200 }, ch);
  const a = fakeInstance(7001, { service: 'gone' });
  source.apply({ zkroute: 'snapshot', services: [['gone', [a]], ['stays', [fakeInstance(7002, { service: 'stays' })]]] });
  const removed: string[] = [];
  source.table.on('removed', (service: string) => removed.push(service));
  // As the primary sends it: the last change, the removal, then the names without it.
  source.apply({ zkroute: 'change', service: 'gone', added: [], removed: [a.uid] });
  t.true(source.apply({ zkroute: 'removed', service: 'gone' }));
  source.apply({ zkroute: 'known', names: ['stays'] });
  t.is(source.table.get('gone'), undefined);
  t.deepEqual(removed, ['gone']);
  t.deepEqual(source.knownServices(), ['stays']);
  t.is((await source.resolve('gone')).kind, 'unknown');
});
