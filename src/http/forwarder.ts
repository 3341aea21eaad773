import type { Readable } from 'node:stream';
import type { Instance } from '../discovery/provider-table.js';
import type { TryOutcome } from '../outcome.js';
import type { Cancellation } from '../upstream/cancellation.js';
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
  /** Closes the pools of addresses no longer listed (in-flight requests finish first). */
  release(addresses: Iterable<string>): void;
  close(): Promise<void>;
}
