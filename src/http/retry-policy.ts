import type { TryOutcome } from '../outcome.js';
import { mayRetry } from '../upstream/retry.js';

// RFC 9110 9.2.2: repeating these has the same effect as sending them once.
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

export function isIdempotent(method: string): boolean {
  return IDEMPOTENT.has(method);
}

/** May this HTTP try be repeated on another instance (see mayRetry)? */
export function isRetryable(outcome: TryOutcome, method: string, bodyReplayable: boolean): boolean {
  return mayRetry(outcome, { idempotent: isIdempotent(method), replayable: bodyReplayable });
}
