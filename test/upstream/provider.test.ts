import test from 'ava';
import { Settings } from '../../src/upstream/settings.js';
import { createOutlierDetector } from '../../src/health/outlier-detector.js';
import { silentLogger } from '../../src/log.js';
import { ServiceProvider } from '../../src/upstream/provider.js';
import { FakeSource } from '../helpers/fake-source.js';
import { fakeInstance, seededRandom } from '../helpers/instances.js';

function setup(ports: number[], balancer: 'random' | 'round-robin' | 'p2c' = 'round-robin') {
  const source = new FakeSource();
  const instances = ports.map((p) => fakeInstance(p));
  source.set('svc', instances);
  const settings = new Settings({ balancer, retries: 2, connectTimeoutMs: 1000, tryTimeoutMs: 1000, deadlineMs: 5000, consecutive5xx: 2, ejectionBaseMs: 30_000, ejectionMaxMs: 300_000, maxEjectionPercent: 100, jitterFraction: 0, retryBudgetPercent: null, slowStartMs: 0, zoneAware: false }, {}, seededRandom(7));
  const health = createOutlierDetector((service) => settings.for(service), { logger: silentLogger() });
  const provider = new ServiceProvider({ source, health, settings: (service) => settings.for(service) });
  return { source, health, provider, instances };
}

test('getInstance: only healthy instances while any is left; panic (all of them) once none is', (t) => {
  const { health, provider, instances } = setup([1, 2, 3]);
  t.teardown(() => health.close());
  for (const i of instances.slice(0, 2)) {
    const got = provider.getInstance('svc', [])!;
    provider.noteOutcome(i, { kind: 'connect-failed', code: 'ECONNREFUSED' });
    provider.noteOutcome(got, { kind: 'ok', status: 200 });
  }
  t.true(health.isEjected(instances[0]!) && health.isEjected(instances[1]!));
  const picks = new Set<number>();
  for (let n = 0; n < 20; n++) {
    const got = provider.getInstance('svc')!;
    picks.add(got.port);
    provider.noteOutcome(got, { kind: 'ok', status: 200 });
  }
  t.deepEqual([...picks], [3], 'only the healthy one');
  provider.noteOutcome(instances[2]!, { kind: 'timeout', code: 'UND_ERR_HEADERS_TIMEOUT' });
  t.true(health.isEjected(instances[2]!));
  const panic = new Set<number>();
  for (let n = 0; n < 30; n++) {
    const got = provider.getInstance('svc')!;
    panic.add(got.port);
    provider.noteOutcome(got, { kind: 'client-aborted', responseStarted: false });
  }
  t.deepEqual([...panic].sort(), [1, 2, 3], 'panic: every instance, ejected or not');
  t.is(health.stats().panicsTotal, 1);
});

test('getInstance: excluded instances are left out by address, even under a new znode', (t) => {
  const { source, health, provider, instances } = setup([1, 2, 3]);
  t.teardown(() => health.close());
  // The same server re-registered under another znode: a different uid, the same address.
  const again = { ...fakeInstance(1, { czxid: 99 }), id: 'again', uid: '/providers/svc/again#99' };
  for (let n = 0; n < 20; n++) {
    const got = provider.getInstance('svc', [again, instances[1]!])!;
    t.is(got.port, 3);
    provider.noteOutcome(got, { kind: 'ok', status: 200 });
  }
  t.is(provider.getInstance('svc', instances), undefined, 'every address tried: none left');
  t.is(provider.getInstance('nosuch', []), undefined, 'a service without a set');
  source.set('svc', []);
  t.is(provider.getInstance('svc', []), undefined, 'an empty set');
});

test('in flight: counted from getInstance to noteOutcome; p2c prefers the less busy instance', (t) => {
  const { health, provider, instances } = setup([1, 2], 'p2c');
  t.teardown(() => health.close());
  const first = provider.getInstance('svc')!;
  const second = provider.getInstance('svc')!;
  const third = provider.getInstance('svc')!;
  t.is(provider.inFlight(instances[0]!) + provider.inFlight(instances[1]!), 3);
  // With one instance busier, every pick of two candidates goes to the other.
  const busy = provider.inFlight(instances[0]!) > provider.inFlight(instances[1]!) ? instances[0]! : instances[1]!;
  const idle = busy === instances[0] ? instances[1]! : instances[0]!;
  const next = provider.getInstance('svc')!;
  t.is(next.uid, idle.uid, 'p2c picked the instance with fewer tries in flight');
  for (const i of [first, second, third, next]) provider.noteOutcome(i, { kind: 'ok', status: 200 });
  t.is(provider.inFlight(instances[0]!), 0);
  t.is(provider.inFlight(instances[1]!), 0);
  t.like(provider.healthView()(busy), { healthy: true, inFlight: 0 });
});

test('noteOutcome feeds health: 5xx in a row eject, a success in between resets, a client abort counts nothing', (t) => {
  const { health, provider, instances } = setup([1, 2]);
  t.teardown(() => health.close());
  const [a] = instances as [ReturnType<typeof fakeInstance>];
  const note = (outcome: Parameters<ServiceProvider['noteOutcome']>[1]) => {
    provider.getInstance('svc');
    provider.noteOutcome(a, outcome);
  };
  note({ kind: 'upstream-5xx', status: 503 });
  note({ kind: 'ok', status: 200 });
  note({ kind: 'upstream-5xx', status: 503 });
  note({ kind: 'client-aborted', responseStarted: true });
  t.false(health.isEjected(a));
  t.like(provider.healthView()(a), { consecutiveFailures: 1, lastFailure: { outcome: 'upstream-5xx' } });
  note({ kind: 'upstream-5xx', status: 502 });
  t.true(health.isEjected(a));
  t.like(provider.healthView()(a), { healthy: false, ejectionReason: '2 consecutive 5xx', ejections: 1 });
});

test('resolve: the set at once when known, else the source answers (empty, unknown)', async (t) => {
  const { source, health, provider } = setup([1]);
  t.teardown(() => health.close());
  t.is((await provider.resolve('svc')).kind, 'instances');
  t.is(source.resolves, 0, 'a known set needs no lookup');
  source.listed.add('idle');
  t.deepEqual(await provider.resolve('idle'), { kind: 'empty' });
  t.deepEqual(await provider.resolve('made-up'), { kind: 'unknown' });
  t.deepEqual(await provider.resolve('../x'), { kind: 'unknown' });
});
