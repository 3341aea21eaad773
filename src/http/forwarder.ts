import type { Readable } from 'node:stream';
import type { Instance } from '../discovery/provider-table.js';
import { CONNECT_ERRORS, DEADLINE_CODE, errorCode, type TryOutcome } from '../outcome.js';
import { CLIENT_GONE, DEADLINE_PASSED, type Cancellation } from '../upstream/cancellation.js';
import type { CallerResponse } from './exchange.js';

/** One try of a request, as the forwarder needs it. Built once per request, reused per try. */
export interface ForwardRequest {
  readonly method: string;
  /** Path and query for the upstream (the route prefix already stripped). */
  readonly path: string;
  /** Headers to send, Host included (the caller sets it per try). */
  readonly headers: Readonly<Record<string, string | string[]>>;
  /** No body, a buffered body (can be re-sent), or a stream (one try only). */
  readonly body: null | Buffer | Readable;
  /** Per-try limit on waiting for response headers. */
  readonly tryTimeoutMs: number;
  /** Limit on connecting, when the try needs a new connection. */
  readonly connectTimeoutMs: number;
  /** The limit is what is left of the request's deadline (a timeout then ends the request). */
  readonly deadlineBound?: boolean;
  /** Cancelled when the client goes away or the request's deadline passes. */
  readonly cancel: Cancellation;
}

/** Forwards requests to instances, answering on `Res` (each engine has its own). Implementations own their connection pools. */
export interface Forwarder<Res extends CallerResponse> {
  /**
   * Sends `request` to `instance`. When response headers arrive they are written to `res` and
   * the body is streamed to it; otherwise `res` is left untouched so the caller may retry.
   * Never rejects: every ending is an outcome.
   */
  forward(request: ForwardRequest, instance: Instance, res: Res): Promise<TryOutcome>;
  /**
   * Every forward ends (an outcome) within its `tryTimeoutMs` until response headers, connect
   * included: the retry loop then needs no deadline timer of its own.
   */
  readonly selfBounded: boolean;
  /** Closes the pools of addresses no longer listed (in-flight requests finish first). */
  release(addresses: Iterable<string>): void;
  close(): Promise<void>;
}

/**
 * How a try that did not complete ended, for every forwarder: the caller gone, the answer cut
 * after its status (`status` > 0), the deadline, else the error's code (a connect failure when
 * nothing was sent, `connectFailed` when the forwarder knows the connection never opened).
 */
export function failedTryOutcome(err: unknown, status: number, reason: Error | undefined, connectFailed = false): TryOutcome {
  if (reason === CLIENT_GONE) return { kind: 'client-aborted', responseStarted: status !== 0 };
  if (status !== 0) return { kind: 'response-interrupted', status, code: reason === DEADLINE_PASSED ? DEADLINE_CODE : errorCode(err) };
  if (reason === DEADLINE_PASSED) return { kind: 'timeout', code: DEADLINE_CODE };
  const code = errorCode(err);
  if (CONNECT_ERRORS.has(code) || connectFailed) return { kind: 'connect-failed', code };
  return code === 'UND_ERR_HEADERS_TIMEOUT' ? { kind: 'timeout', code } : { kind: 'reset-before-response', code };
}

/** Takes the pools of `addresses` out of `pools` (a forwarder's `release`), for the caller to close. */
export function takePools<P>(pools: Map<string, P>, addresses: Iterable<string>): P[] {
  const taken: P[] = [];
  for (const address of addresses) {
    const pool = pools.get(address);
    if (pool === undefined) continue;
    pools.delete(address);
    taken.push(pool);
  }
  return taken;
}
