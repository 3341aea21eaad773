import test from 'ava';
import { createBalancer, type PickContext } from '../../src/balancer/index.js';
import type { Instance } from '../../src/discovery/provider-table.js';
import { fakeInstance, seededRandom } from '../helpers/instances.js';

const idle: PickContext = { service: 'svc', inFlight: () => 0 };

function shares(pick: () => Instance | undefined, n: number): Map<number, number> {
  const counts = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const port = pick()!.port;
    counts.set(port, (counts.get(port) ?? 0) + 1);
  }
  return counts;
}

test('random: uniform over equal weights', (t) => {
  const balancer = createBalancer('random', seededRandom(1));
  const instances = [fakeInstance(1), fakeInstance(2), fakeInstance(3), fakeInstance(4)];
  const counts = shares(() => balancer(instances, idle), 40_000);
  for (const port of [1, 2, 3, 4]) t.true(Math.abs(counts.get(port)! - 10_000) < 400, `port ${port}: ${counts.get(port)}`);
});

test('random: honours weight', (t) => {
  const balancer = createBalancer('random', seededRandom(2));
  const instances = [fakeInstance(1, { weight: 3 }), fakeInstance(2, { weight: 1 })];
  const counts = shares(() => balancer(instances, idle), 40_000);
  t.true(Math.abs(counts.get(1)! - 30_000) < 500, `${counts.get(1)}`);
});

test('round-robin: strict rotation; smooth with weights', (t) => {
  const balancer = createBalancer('round-robin');
  const instances = [fakeInstance(1), fakeInstance(2), fakeInstance(3)];
  t.deepEqual(Array.from({ length: 6 }, () => balancer(instances, idle)!.port), [1, 2, 3, 1, 2, 3]);
  const weighted = [fakeInstance(1, { weight: 5 }), fakeInstance(2), fakeInstance(3)];
  t.deepEqual(Array.from({ length: 7 }, () => balancer(weighted, { ...idle, service: 'w' })!.port), [1, 1, 2, 1, 3, 1, 1]);
});

test('round-robin: a changed candidate set keeps rotating over the new set', (t) => {
  const balancer = createBalancer('round-robin');
  const a = [fakeInstance(1), fakeInstance(2)];
  balancer(a, idle);
  const b = [fakeInstance(2), fakeInstance(3)];
  const picks = Array.from({ length: 4 }, () => balancer(b, idle)!.port);
  t.deepEqual([...picks].sort(), [2, 2, 3, 3]);
});

test('p2c: prefers the instance with fewer requests in flight', (t) => {
  const balancer = createBalancer('p2c', seededRandom(3));
  const instances = [fakeInstance(1), fakeInstance(2)];
  const busy: PickContext = { service: 'svc', inFlight: (i) => (i.port === 1 ? 10 : 0) };
  const counts = shares(() => balancer(instances, busy), 1000);
  t.is(counts.get(2), 1000, 'with two candidates both are drawn and the idle one always wins');
  const three = [fakeInstance(1), fakeInstance(2), fakeInstance(3)];
  const loaded: PickContext = { service: 'svc', inFlight: (i) => (i.port === 3 ? 0 : 5) };
  const c = shares(() => balancer(three, loaded), 3000);
  // Port 3 wins whenever it is one of the two drawn: 2 of the 3 pairs.
  t.true(c.get(3)! > 1800 && c.get(3)! < 2200, `${c.get(3)}`);
});

test('every balancer returns the only candidate', (t) => {
  for (const name of ['random', 'round-robin', 'p2c'] as const) {
    const only = fakeInstance(9);
    t.is(createBalancer(name)([only], idle), only, name);
  }
});

test('round-robin: a pick over a subset (a retry leaving one out) does not restart the rotation', (t) => {
  const balancer = createBalancer('round-robin');
  const all = [fakeInstance(1), fakeInstance(2), fakeInstance(3)];
  const firsts: number[] = [];
  for (let i = 0; i < 6; i++) {
    const first = balancer(all, idle)!;
    firsts.push(first.port);
    // The try on `first` failed: the retry picks among the others.
    balancer(all.filter((c) => c !== first), idle);
  }
  t.true(new Set(firsts).size >= 2, `first tries went to more than one instance: ${firsts.join(' ')}`);
  t.true(firsts.filter((p) => p === 1).length <= 3, `not always the first instance: ${firsts.join(' ')}`);
});
