import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Instance } from '../discovery/provider-table.js';

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
  /** Cancelled when the client goes away or the request's deadline passes. */
  readonly cancel: Cancellation;
}

/**
 * A one-shot cancel with a reason and at most one listener: what an AbortController gives,
 * without the EventTarget machinery on every request.
 */
export class Cancellation {
  #reason: Error | undefined;
  #listener: ((reason: Error) => void) | undefined;

  get reason(): Error | undefined {
    return this.#reason;
  }

  cancel(reason: Error): void {
    if (this.#reason) return;
    this.#reason = reason;
    const listener = this.#listener;
    this.#listener = undefined;
    listener?.(reason);
  }

  /** Sets the listener (replacing the last one); it runs at once if already cancelled. */
  onCancel(listener: ((reason: Error) => void) | undefined): void {
    if (this.#reason && listener) listener(this.#reason);
    else this.#listener = listener;
  }
}

/**
 * How one try ended. `sent` says whether request bytes may have reached the instance (only a
 * connect failure guarantees they did not); `responseStarted` whether the client already got
 * the status line (then nothing can be retried or answered any more).
 */
export type ForwardOutcome =
  | { readonly kind: 'ok'; readonly status: number }
  | { readonly kind: 'upstream-5xx'; readonly status: number }
  | { readonly kind: 'connect-failed'; readonly code: string }
  | { readonly kind: 'reset-before-response'; readonly code: string }
  | { readonly kind: 'timeout'; readonly code: string }
  /** The upstream failed after the response had started: the client's response was cut. */
  | { readonly kind: 'response-interrupted'; readonly status: number; readonly code: string }
  | { readonly kind: 'client-aborted'; readonly responseStarted: boolean };

// Errors raised before a connection existed: nothing was sent, any method may be retried.
export const CONNECT_ERRORS = new Set([
  'ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'EADDRNOTAVAIL',
  'ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME', 'UND_ERR_CONNECT_TIMEOUT',
]);

/** The cancel reason when the client went away: the try ends as `client-aborted`. */
export const CLIENT_GONE = new Error('client went away');
/** The cancel reason when the request's overall deadline passed: the try ends as `timeout`. */
export const DEADLINE_PASSED = new Error('request deadline passed');

export type OutcomeKind = ForwardOutcome['kind'];

/** Forwards requests to instances. Implementations own their connection pools. */
export interface Forwarder {
  /**
   * Sends `request` to `instance`. When response headers arrive they are written to `res` and
   * the body is streamed to it; otherwise `res` is left untouched so the caller may retry.
   * Never rejects: every ending is an outcome.
   */
  forward(request: ForwardRequest, instance: Instance, res: ServerResponse): Promise<ForwardOutcome>;
  /** Closes the pools of addresses no longer listed (in-flight requests finish first). */
  release(addresses: Iterable<string>): void;
  close(): Promise<void>;
}
