import test from 'ava';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Instance } from '../../src/discovery/provider-table.js';
import { Settings } from '../../src/upstream/settings.js';
import { createOutlierDetector } from '../../src/health/outlier-detector.js';
import { silentLogger } from '../../src/log.js';
import type { TryOutcome } from '../../src/outcome.js';
import { Cancellation, CLIENT_GONE, DEADLINE_PASSED } from '../../src/upstream/cancellation.js';
import { ServiceProvider } from '../../src/upstream/provider.js';
import { mayRetry, runTries, type TryPlan } from '../../src/upstream/retry.js';
import { FakeSource } from '../helpers/fake-source.js';
import { fakeInstance } from '../helpers/instances.js';

const refused: TryOutcome = { kind: 'connect-failed', code: 'ECONNREFUSED' };
const ok: TryOutcome = { kind: 'ok', status: 200 };

function setup(ports = [1, 2, 3, 4, 5]) {
  const source = new FakeSource();
  source.set('svc', ports.map((p) => fakeInstance(p)));
  const settings = new Settings({ balancer: 'round-robin', retries: 2, connectTimeoutMs: 1000, tryTimeoutMs: 1000, deadlineMs: 5000, consecutive5xx: 5, ejectionBaseMs: 30_000, ejectionMaxMs: 300_000, maxEjectionPercent: 0, jitterFraction: 0, retryBudgetPercent: null, slowStartMs: 0, zoneAware: false });
  const health = createOutlierDetector((service) => settings.for(service), { logger: silentLogger() });
  const provider = new ServiceProvider({ source, health, settings: (service) => settings.for(service) });
  return { provider, health };
}

function plan(overrides: Partial<TryPlan> & Pick<TryPlan, 'attempt'>): TryPlan {
  return { service: 'svc', retries: 2, deadlineMs: 5000, startedAt: performance.now(), cancel: new Cancellation(), retryable: (o) => mayRetry(o, { idempotent: true, replayable: true }), ...overrides };
}

test('retries on distinct instances up to the count, then stops with the last outcome', async (t) => {
  const { provider, health } = setup();
  t.teardown(() => health.close());
  const tried: Instance[] = [];
  const result = await runTries(provider, plan({ attempt: async (i) => (tried.push(i), refused) }));
  t.is(result.tries, 3, '1 + --retries');
  t.is(new Set(tried.map((i) => i.address)).size, 3, 'each on another instance');
  t.deepEqual(result.last, refused);
  t.is(result.lastInstance, tried[2]);
  for (const i of tried) t.is(provider.inFlight(i), 0, 'every outcome noted');
});

test('an answer, or an outcome the protocol may not retry, ends the loop', async (t) => {
  const { provider, health } = setup();
  t.teardown(() => health.close());
  let n = 0;
  const answered = await runTries(provider, plan({ attempt: async () => (++n === 1 ? refused : ok) }));
  t.like(answered, { tries: 2, last: ok });
  const reset: TryOutcome = { kind: 'reset-before-response', code: 'ECONNRESET' };
  const post = await runTries(provider, plan({ attempt: async () => reset, retryable: (o) => mayRetry(o, { idempotent: false, replayable: true }) }));
  t.like(post, { tries: 1, last: reset }, 'a reset is not retried for a non-idempotent request');
  const streamed = await runTries(provider, plan({ attempt: async () => refused, retryable: (o) => mayRetry(o, { idempotent: true, replayable: false }) }));
  t.is(streamed.tries, 1, 'a body that cannot be re-sent: one try');
});

test('no untried instance left: the loop stops early; no instance at all: no try', async (t) => {
  const { provider, health } = setup([1, 2]);
  t.teardown(() => health.close());
  const result = await runTries(provider, plan({ retries: 5, attempt: async () => refused }));
  t.is(result.tries, 2);
  const none = await runTries(provider, plan({ service: 'nosuch', attempt: async () => ok }));
  t.like(none, { tries: 0, last: undefined, lastInstance: undefined });
});

test('the deadline cancels the try in flight and allows no other', async (t) => {
  const { provider, health } = setup();
  t.teardown(() => health.close());
  const startedAt = performance.now();
  const cancel = new Cancellation();
  const result = await runTries(provider, plan({
    deadlineMs: 150,
    startedAt,
    cancel,
    // A try that ends only when cancelled, as a forwarder does.
    attempt: () => new Promise<TryOutcome>((resolve) => cancel.onCancel((reason) => resolve(reason === DEADLINE_PASSED ? { kind: 'timeout', code: 'DEADLINE' } : refused))),
  }));
  const elapsed = performance.now() - startedAt;
  t.like(result, { tries: 1, last: { kind: 'timeout', code: 'DEADLINE' } });
  t.true(elapsed >= 140 && elapsed < 1000, `ended after ${elapsed} ms`);
  t.false(mayRetry(result.last!, { idempotent: true, replayable: true }), 'a deadline timeout is never retried');

  // The remaining time is what a try gets; a deadline already past makes no try.
  const budgets: number[] = [];
  await runTries(provider, plan({ deadlineMs: 1000, attempt: async (_i, remainingMs) => (budgets.push(remainingMs), ok) }));
  t.true(budgets[0]! <= 1000 && budgets[0]! > 900);
  const late = await runTries(provider, plan({ deadlineMs: 10, startedAt: performance.now() - 50, attempt: async () => ok }));
  t.like(late, { tries: 0, last: { kind: 'timeout', code: 'DEADLINE' } });
});

test('a caller gone: no further try, the outcome says client-aborted', async (t) => {
  const { provider, health } = setup();
  t.teardown(() => health.close());
  const cancel = new Cancellation();
  let tries = 0;
  const result = await runTries(provider, plan({
    cancel,
    attempt: async () => {
      tries += 1;
      cancel.cancel(CLIENT_GONE);
      await sleep(1);
      return refused;
    },
  }));
  t.is(tries, 1);
  t.like(result, { tries: 1, last: { kind: 'client-aborted', responseStarted: false } });
});
