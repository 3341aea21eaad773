// How one try against an instance ended, in terms every protocol shares (HTTP today; TCP and
// Thrift next). Health, the retry loop, the error mapping and the metrics read these and
// nothing protocol-specific. The kind strings are stable: they are metric label values.

/**
 * How one try ended. Only `connect-failed` guarantees that nothing reached the instance;
 * `responseStarted` says whether the caller already got the start of an answer (then nothing
 * can be retried or answered any more).
 */
export type TryOutcome =
  /** The instance answered; `status` is the protocol's status (HTTP status code). */
  | { readonly kind: 'ok'; readonly status: number }
  /** The instance answered with a failure status (HTTP 5xx): counted toward ejection. */
  | { readonly kind: 'upstream-5xx'; readonly status: number }
  /** No connection: nothing was sent. */
  | { readonly kind: 'connect-failed'; readonly code: string }
  /** The connection broke after the request may have been sent, before any answer. */
  | { readonly kind: 'reset-before-response'; readonly code: string }
  /** No answer in time: the per-try limit, or the whole request's deadline (`code` DEADLINE). */
  | { readonly kind: 'timeout'; readonly code: string }
  /** The instance failed after the answer had started: the caller's answer was cut. */
  | { readonly kind: 'response-interrupted'; readonly status: number; readonly code: string }
  /** The caller went away; says nothing about the instance. */
  | { readonly kind: 'client-aborted'; readonly responseStarted: boolean }
  /**
   * Not sent: the instance already has as many requests as its connection cap and pending
   * queue allow (Envoy's circuit breaker). Answered at once, not retried, not a health failure.
   */
  | { readonly kind: 'overloaded'; readonly code: string };

export type OutcomeKind = TryOutcome['kind'];

/** The timeout code of a try cut by the request's overall deadline (never retried). */
export const DEADLINE_CODE = 'DEADLINE';

/** Socket and resolver errors raised before a connection existed: nothing was sent. */
export const CONNECT_ERRORS: ReadonlySet<string> = new Set([
  'ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'EADDRNOTAVAIL',
  'ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME', 'UND_ERR_CONNECT_TIMEOUT',
  // A host name that resolved to an address AddressPolicy refuses: nothing was sent.
  'FORBIDDEN_ADDRESS',
]);

/** The `code` of an error, or UNKNOWN. */
export function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'UNKNOWN';
}

/** A socket error before any answer: a connect failure if nothing was sent, else a reset. */
export function outcomeOfSocketError(err: unknown): TryOutcome {
  const code = errorCode(err);
  return CONNECT_ERRORS.has(code) ? { kind: 'connect-failed', code } : { kind: 'reset-before-response', code };
}
