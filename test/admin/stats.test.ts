import test from 'ava';
import { EventLog } from '../../src/admin/events.js';
import { LATENCY_BOUNDS_MS, mergeSnapshots, quantileMs, RequestStats, summarize } from '../../src/admin/stats.js';
import type { Instance } from '../../src/discovery/provider-table.js';

const clock = (startMs: number) => {
  let now = startMs;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
};

test('per-second counts per service and instance; rates over complete seconds only', (t) => {
  const c = clock(1_000_000_000);
  const stats = new RequestStats({ windowSec: 10, latencySec: 5 }, c.now);
  for (let s = 0; s < 6; s++) {
    for (let i = 0; i < 10; i++) stats.record('svc', '127.0.0.1:1', i === 0, 2);
    c.advance(1000);
  }
  // The current second holds 3 more; they are not in the rate yet.
  for (let i = 0; i < 3; i++) stats.record('svc', '127.0.0.1:2', false, 40);
  const snapshot = stats.snapshot();
  const service = snapshot.series.find((s) => s.service === 'svc' && s.instance === undefined)!;
  t.deepEqual(service.requests, [0, 0, 0, 10, 10, 10, 10, 10, 10, 3]);
  t.deepEqual(service.errors, [0, 0, 0, 1, 1, 1, 1, 1, 1, 0]);
  const summary = summarize(service);
  t.is(summary.rps, 10);
  t.is(summary.requestsLastMinute, 60);
  t.is(summary.errorShare, 0.1);
  t.deepEqual(summary.sparkRequests, [0, 0, 0, 10, 10, 10, 10, 10, 10]);
  // Latency over the last 5 seconds (the current one included): 40 at 2 ms, 3 at 40 ms.
  t.is(service.latency.reduce((a, b) => a + b, 0), 43);
  t.true(summary.p50Ms! > 1 && summary.p50Ms! <= 2);
  t.true(summary.p99Ms! > 25 && summary.p99Ms! <= 50);
  const one = snapshot.series.find((s) => s.instance === '127.0.0.1:2')!;
  t.deepEqual(one.requests.slice(-2), [0, 3]);
});

test('seconds skipped are zeroed; a key idle for the whole window goes; forget drops a service', (t) => {
  const c = clock(5_000_000_000);
  const stats = new RequestStats({ windowSec: 4, latencySec: 2 }, c.now);
  stats.record('a', '127.0.0.1:1', false, 1);
  stats.record('b', undefined, false, 1);
  c.advance(2000);
  stats.record('a', '127.0.0.1:1', false, 1);
  let a = stats.snapshot().series.find((s) => s.service === 'a' && s.instance === undefined)!;
  t.deepEqual(a.requests, [0, 1, 0, 1]);
  t.is(a.latency.reduce((x, y) => x + y, 0), 1, 'the latency window is 2 s: the first request has left it');
  c.advance(3000);
  a = stats.snapshot().series.find((s) => s.service === 'a' && s.instance === undefined)!;
  t.deepEqual(a.requests, [1, 0, 0, 0]);
  t.false(stats.snapshot().series.some((s) => s.service === 'b'), 'b had nothing for 4 s');
  c.advance(1000);
  t.is(stats.snapshot().series.length, 0);
  stats.record('c', '127.0.0.1:3', false, 1);
  stats.forget('c');
  t.is(stats.snapshot().series.length, 0);
});

test('mergeSnapshots adds workers up, aligned to the latest second', (t) => {
  const c1 = clock(9_000_000_000);
  const c2 = clock(9_000_000_000);
  const w1 = new RequestStats({ windowSec: 5, latencySec: 5 }, c1.now);
  const w2 = new RequestStats({ windowSec: 5, latencySec: 5 }, c2.now);
  w1.record('svc', '127.0.0.1:1', false, 1);
  w2.record('svc', '127.0.0.1:1', true, 1);
  w2.record('svc', '127.0.0.1:2', false, 1);
  const early = w2.snapshot();
  c1.advance(1000);
  w1.record('svc', '127.0.0.1:1', false, 1);
  const merged = mergeSnapshots([w1.snapshot(), early]);
  t.is(merged.atSec, early.atSec + 1);
  const service = merged.series.find((s) => s.service === 'svc' && s.instance === undefined)!;
  t.deepEqual(service.requests, [0, 0, 0, 3, 1]);
  t.deepEqual(service.errors, [0, 0, 0, 1, 0]);
  t.is(merged.series.find((s) => s.instance === '127.0.0.1:2')!.requests[3], 1);
  t.deepEqual(mergeSnapshots([]).series, []);
});

test('quantiles interpolate inside a bucket; the overflow bucket answers its lower bound', (t) => {
  const latency = new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0);
  t.is(quantileMs(latency, 0.5), null);
  latency[3] = 100; // (0.5, 1] ms
  t.is(quantileMs(latency, 0.5), 0.75);
  t.is(quantileMs(latency, 1), 1);
  latency[LATENCY_BOUNDS_MS.length] = 100;
  t.is(quantileMs(latency, 0.99), LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1]!);
});

test('EventLog: a change is one joined and one left event; a new znode version is neither; bounded', (t) => {
  const log = new EventLog(3, () => 42);
  const instance = (uid: string, port: number) => ({ uid, address: `127.0.0.1:${port}` }) as Instance;
  log.addDelta('svc', { added: [instance('a', 1), instance('b', 2), instance('k', 9)], removed: [instance('c', 3), instance('k', 9)] });
  t.deepEqual(log.recent().map((e) => [e.kind, e.instances, e.count]), [['joined', ['127.0.0.1:1', '127.0.0.1:2'], 2], ['left', ['127.0.0.1:3'], 1]]);
  log.add({ kind: 'zookeeper_disconnected' });
  log.add({ kind: 'zookeeper_connected' });
  t.deepEqual(log.recent().map((e) => e.kind), ['left', 'zookeeper_disconnected', 'zookeeper_connected']);
  t.is(log.recent()[0]!.at, 42);
});
