import test from 'ava';
import { createOutlierDetector, type OutlierOptions } from '../../src/health/outlier-detector.js';
import { silentLogger } from '../../src/log.js';
import { fakeInstance } from '../helpers/instances.js';
import { nextEvent, waitFor } from '../helpers/wait.js';

const options: OutlierOptions = { consecutive5xx: 3, ejectionBaseMs: 10_000, ejectionMaxMs: 300_000, maxEjectionPercent: 50, jitterFraction: 0 };

function detector(overrides: Partial<OutlierOptions> = {}) {
  return createOutlierDetector({ ...options, ...overrides }, { logger: silentLogger(), random: () => 0.5 });
}

test('a connect failure, reset or timeout ejects at once; candidates leave it out', (t) => {
  for (const kind of ['connect-failed', 'reset-before-response', 'timeout'] as const) {
    const d = detector();
    const set = [fakeInstance(1), fakeInstance(2), fakeInstance(3), fakeInstance(4)];
    d.record(set[0]!, kind, set);
    t.true(d.isEjected(set[0]!), kind);
    t.deepEqual(d.candidates('svc', set).instances.map((i) => i.port), [2, 3, 4]);
    d.close();
  }
});

test('5xx ejects only after the configured number in a row; a success resets the count', (t) => {
  const d = detector();
  const set = [fakeInstance(1), fakeInstance(2)];
  d.record(set[0]!, 'upstream-5xx', set);
  d.record(set[0]!, 'upstream-5xx', set);
  d.record(set[0]!, 'ok', set);
  d.record(set[0]!, 'upstream-5xx', set);
  d.record(set[0]!, 'upstream-5xx', set);
  t.false(d.isEjected(set[0]!));
  d.record(set[0]!, 'upstream-5xx', set);
  t.true(d.isEjected(set[0]!));
  d.close();
});

test('client aborts never count against an instance', (t) => {
  const d = detector({ consecutive5xx: 1 });
  const set = [fakeInstance(1), fakeInstance(2)];
  for (let i = 0; i < 10; i++) d.record(set[0]!, 'client-aborted', set);
  t.false(d.isEjected(set[0]!));
  d.close();
});

test('ejection time is base x ejections, capped, with jitter', async (t) => {
  const durations: number[] = [];
  const d = createOutlierDetector({ ...options, ejectionBaseMs: 20, ejectionMaxMs: 50, jitterFraction: 0.1 }, { logger: silentLogger(), random: () => 1 });
  d.on('ejected', (_i, _r, ms: number) => durations.push(ms));
  const set = [fakeInstance(1), fakeInstance(2)];
  for (let n = 0; n < 3; n++) {
    d.record(set[0]!, 'connect-failed', set);
    await waitFor('re-admission', () => !d.isEjected(set[0]!), 2000, 5);
  }
  t.deepEqual(durations, [22, 44, 55]);
  t.is(d.stats().readmissionsTotal, 3);
  d.close();
});

test('re-admission is announced when the TTL expires', async (t) => {
  const d = detector({ ejectionBaseMs: 30 });
  const set = [fakeInstance(1), fakeInstance(2)];
  const readmitted = nextEvent(d, 'readmitted', 3000);
  d.record(set[0]!, 'timeout', set);
  t.true(d.isEjected(set[0]!));
  // The 1 s sweep or any read notices the expiry.
  await waitFor('expiry', () => !d.isEjected(set[0]!), 2000, 5);
  t.is(((await readmitted) as { port: number }).port, 1);
  d.close();
});

test('--max-ejection-percent caps ejections per service (at least one may go)', (t) => {
  const d = detector();
  const set = [1, 2, 3, 4, 5].map((p) => fakeInstance(p));
  for (const i of set) d.record(i, 'connect-failed', set);
  t.is(d.stats().ejected, 2, 'floor(5 x 50%) = 2');
  t.is(d.stats().ejectionsSkippedByPercent, 3);
  const single = detector();
  const one = [fakeInstance(7)];
  single.record(one[0]!, 'connect-failed', one);
  t.true(single.isEjected(one[0]!));
  const none = detector({ maxEjectionPercent: 0 });
  none.record(set[0]!, 'connect-failed', set);
  t.false(none.isEjected(set[0]!), '0% disables ejection');
  for (const x of [d, single, none]) x.close();
});

test('panic mode: when every instance is ejected, all are offered', (t) => {
  const d = detector({ maxEjectionPercent: 100 });
  const set = [fakeInstance(1), fakeInstance(2)];
  d.record(set[0]!, 'connect-failed', set);
  d.record(set[1]!, 'connect-failed', set);
  const c = d.candidates('svc', set);
  t.true(c.panic);
  t.is(c.instances, set);
  d.candidates('svc', set);
  t.is(d.stats().panicsTotal, 1, 'counted once per episode');
  d.close();
});

test('a re-created znode (new uid) starts clean; forget() drops gone instances', (t) => {
  const d = detector();
  const old = fakeInstance(1, { czxid: 100 });
  const set = [old, fakeInstance(2)];
  d.record(old, 'connect-failed', set);
  const recreated = fakeInstance(1, { czxid: 200 });
  t.false(d.isEjected(recreated));
  d.forget([old.uid]);
  t.false(d.isEjected(old));
  t.is(d.stats().ejected, 0);
  d.close();
});

test('no ejections: candidates returns the table array itself (no copy on the hot path)', (t) => {
  const d = detector();
  const set = [fakeInstance(1), fakeInstance(2)];
  t.is(d.candidates('svc', set).instances, set);
  d.close();
});

test('candidates are kept per service until the set or an ejection changes, and re-admit on time', async (t) => {
  const d = detector({ ejectionBaseMs: 60, maxEjectionPercent: 100 });
  const set = Array.from({ length: 1000 }, (_, i) => fakeInstance(10_000 + i));
  d.record(set[5]!, 'connect-failed', set);
  const first = d.candidates('svc', set);
  t.is(first.instances.length, 999);
  t.is(d.candidates('svc', set), first, 'the same answer, not a new scan');
  d.record(set[7]!, 'connect-failed', set);
  t.is(d.candidates('svc', set).instances.length, 998, 'a new ejection is seen at once');
  const smaller = set.slice(1);
  t.is(d.candidates('svc', smaller).instances.length, 997, 'a new set is seen at once');
  // The answer expires with the earliest ejection (60 ms), not with node-cache's 1 s sweep.
  const ejectedAt = Date.now();
  await waitFor('both back', () => d.candidates('svc', set).instances.length === 1000, 1500, 2);
  t.true(Date.now() - ejectedAt < 300, `back after ${Date.now() - ejectedAt} ms`);
  d.close();
});

test('an ejection another worker decided: filtered out until its end, then back; neither counted nor announced here', async (t) => {
  const d = detector();
  const set = [fakeInstance(1), fakeInstance(2)];
  const events: string[] = [];
  d.on('ejected', () => events.push('ejected'));
  d.on('readmitted', () => events.push('readmitted'));
  d.applyEjection(set[0]!, 'reset-before-response', Date.now() + 1200);
  t.true(d.isEjected(set[0]!));
  t.deepEqual(d.candidates('svc', set).instances.map((i) => i.port), [2]);
  d.applyEjection(set[1]!, 'timeout', Date.now() - 1);
  t.false(d.isEjected(set[1]!), 'an ejection already over is not applied');
  await waitFor('the end of the shared ejection', () => !d.isEjected(set[0]!), 5000);
  t.deepEqual(d.candidates('svc', set).instances.map((i) => i.port), [1, 2]);
  t.deepEqual(events, [], 'the worker that decided it counts and announces it');
  t.like(d.stats(), { ejectionsTotal: 0, readmissionsTotal: 0 });
  d.close();
});
