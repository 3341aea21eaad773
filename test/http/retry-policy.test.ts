import test from 'ava';
import type { TryOutcome } from '../../src/outcome.js';
import { isRetryable } from '../../src/http/retry-policy.js';

const connect: TryOutcome = { kind: 'connect-failed', code: 'ECONNREFUSED' };
const reset: TryOutcome = { kind: 'reset-before-response', code: 'UND_ERR_SOCKET' };
const tryTimeout: TryOutcome = { kind: 'timeout', code: 'UND_ERR_HEADERS_TIMEOUT' };
const deadline: TryOutcome = { kind: 'timeout', code: 'DEADLINE' };

test('a connect failure is retried for any method with a replayable body', (t) => {
  for (const method of ['GET', 'POST', 'PATCH', 'PUT']) t.true(isRetryable(connect, method, true), method);
  t.false(isRetryable(connect, 'POST', false), 'a streamed body was consumed');
});

test('after sending: only idempotent methods, on reset or per-try timeout', (t) => {
  for (const method of ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']) {
    t.true(isRetryable(reset, method, true), method);
    t.true(isRetryable(tryTimeout, method, true), method);
  }
  for (const method of ['POST', 'PATCH']) {
    t.false(isRetryable(reset, method, true), method);
    t.false(isRetryable(tryTimeout, method, true), method);
  }
});

test('never: the deadline, a started response, 5xx, a client abort', (t) => {
  const never: TryOutcome[] = [deadline, { kind: 'ok', status: 200 }, { kind: 'upstream-5xx', status: 503 }, { kind: 'response-interrupted', status: 200, code: 'X' }, { kind: 'client-aborted', responseStarted: false }];
  for (const outcome of never) t.false(isRetryable(outcome, 'GET', true), outcome.kind);
});
