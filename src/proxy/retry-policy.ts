import type { ForwardOutcome } from './forwarder.js';

// RFC 9110 9.2.2: repeating these has the same effect as sending them once.
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

export function isIdempotent(method: string): boolean {
  return IDEMPOTENT.has(method);
}

/**
 * May this try be repeated on another instance? A connect failure sent nothing, so any method
 * may go again if its body can be re-sent; a reset or a per-try timeout after sending only for
 * idempotent methods. A response already started, a client abort or the deadline: never.
 */
export function isRetryable(outcome: ForwardOutcome, method: string, bodyReplayable: boolean): boolean {
  if (!bodyReplayable) return false;
  switch (outcome.kind) {
    case 'connect-failed':
      return true;
    case 'reset-before-response':
      return isIdempotent(method);
    case 'timeout':
      return outcome.code !== 'DEADLINE' && isIdempotent(method);
    default:
      return false;
  }
}
