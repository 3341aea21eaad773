import type { ServerResponse } from 'node:http';
import type { LookupFunction } from 'node:net';
import { Pool, type Dispatcher } from 'undici';
import type { Instance } from '../discovery/provider-table.js';
import type { TryOutcome } from '../outcome.js';
import { CLIENT_GONE } from '../upstream/cancellation.js';
import { failedTryOutcome, takePools, type ForwardRequest, type Forwarder } from './forwarder.js';
import { clientResponseRawHeaders } from './headers.js';

export interface UndiciForwarderOptions {
  /** TCP connect limit per attempt (a timeout counts as a connect failure). */
  /**
   * How long an idle pooled connection is kept. Below the common 5 s server keep-alive, so a
   * socket is not reused just as the instance closes it.
   */
  readonly poolIdleTimeoutMs: number;
  /** Longest pause between response body chunks before the response is cut. */
  readonly bodyIdleTimeoutMs: number;
  /** Connections per instance (requests beyond it wait in the pool's queue). */
  readonly maxConnectionsPerInstance: number;
  /** Resolves an instance's host name at connect, refusing forbidden results (AddressPolicy). */
  readonly lookupFor?: (port: number) => LookupFunction | undefined;
}

/**
 * One try, as an undici dispatch handler (the callback API undici runs on, so no wrapper, no
 * AbortSignal and no header object per request): response headers go straight to the client
 * response, body chunks are written with backpressure, and the ending becomes an outcome.
 */
class TryHandler implements Dispatcher.DispatchHandler {
  readonly #request: ForwardRequest;
  readonly #res: ServerResponse;
  readonly #done: (outcome: TryOutcome) => void;
  #abort: ((err: Error) => void) | undefined;
  #resume: (() => void) | undefined;
  #status = 0;
  #finished = false;
  #waitingForDrain = false;
  #onDrain: (() => void) | undefined;

  constructor(request: ForwardRequest, res: ServerResponse, done: (outcome: TryOutcome) => void) {
    this.#request = request;
    this.#res = res;
    this.#done = done;
    request.cancel.onCancel((reason) => this.#abort?.(reason));
  }

  onConnect(abort: (err?: Error) => void): void {
    const reason = this.#request.cancel.reason;
    if (reason) abort(reason);
    else this.#abort = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return true; // 1xx: Node answers 100-continue to the client itself
    this.#res.writeHead(statusCode, clientResponseRawHeaders(rawHeaders));
    this.#status = statusCode;
    this.#resume = resume;
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.#res.write(chunk)) return true;
    // The client is slower than the instance: undici pauses until the response drains. The
    // listener is added only then (most responses never wait).
    if (!this.#waitingForDrain) {
      this.#waitingForDrain = true;
      this.#onDrain ??= () => {
        this.#waitingForDrain = false;
        this.#resume?.();
      };
      this.#res.once('drain', this.#onDrain);
    }
    return false;
  }

  onComplete(): void {
    this.#res.end();
    this.#finish(null);
  }

  onError(err: Error): void {
    // After the status line went out the client's response can only be cut.
    if (this.#status !== 0) this.#res.destroy();
    this.#finish(err);
  }

  #finish(err: Error | null): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#request.cancel.onCancel(undefined);
    const status = this.#status;
    if (this.#waitingForDrain) this.#res.off('drain', this.#onDrain!);
    const outcome: TryOutcome = err === null && this.#request.cancel.reason !== CLIENT_GONE ? (status >= 500 ? { kind: 'upstream-5xx', status } : { kind: 'ok', status }) : failedTryOutcome(err, status, this.#request.cancel.reason);
    this.#done(outcome);
  }
}

/** Plain HTTP forwarding over one keep-alive undici Pool per instance address. */
export class UndiciForwarder implements Forwarder<ServerResponse> {
  readonly #options: UndiciForwarderOptions;
  readonly #pools = new Map<string, Pool>();
  /** The connect limit each pool was built with (undici fixes it per pool). */
  readonly #connectTimeouts = new WeakMap<Pool, number>();
  #closed = false;
  // undici's headersTimeout starts after the connect: a try can outlast it by the connect timeout.
  readonly selfBounded = false;

  constructor(options: UndiciForwarderOptions) {
    this.#options = options;
  }

  #pool(instance: Instance, connectTimeoutMs: number): Pool {
    let pool = this.#pools.get(instance.address);
    // A reload changed the connect limit: a new pool for the next requests; the old one finishes what it has.
    if (pool && this.#connectTimeouts.get(pool) !== connectTimeoutMs) {
      pool.close().catch(() => {});
      pool = undefined;
    }
    if (!pool) {
      pool = new Pool(`http://${instance.address}`, {
        connections: this.#options.maxConnectionsPerInstance,
        pipelining: 1,
        connect: { timeout: connectTimeoutMs, ...this.#lookup(instance.port) },
        keepAliveTimeout: this.#options.poolIdleTimeoutMs,
        keepAliveMaxTimeout: this.#options.poolIdleTimeoutMs,
        bodyTimeout: this.#options.bodyIdleTimeoutMs,
      });
      this.#pools.set(instance.address, pool);
      this.#connectTimeouts.set(pool, connectTimeoutMs);
    }
    return pool;
  }

  #lookup(port: number): { lookup?: LookupFunction } {
    const lookup = this.#options.lookupFor?.(port);
    return lookup ? { lookup } : {};
  }

  forward(request: ForwardRequest, instance: Instance, res: ServerResponse): Promise<TryOutcome> {
    if (this.#closed) return Promise.resolve({ kind: 'connect-failed', code: 'FORWARDER_CLOSED' });
    const pool = this.#pool(instance, request.connectTimeoutMs);
    return new Promise((resolve) => {
      const handler = new TryHandler(request, res, resolve);
      try {
        pool.dispatch(
          {
            path: request.path,
            method: request.method as Dispatcher.HttpMethod,
            headers: request.headers,
            body: request.body,
            headersTimeout: request.tryTimeoutMs,
          },
          handler,
        );
      } catch (err) {
        handler.onError(err as Error);
      }
    });
  }

  release(addresses: Iterable<string>): void {
    for (const pool of takePools(this.#pools, addresses)) pool.close().catch(() => {});
  }

  async close(): Promise<void> {
    this.#closed = true;
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    // Bounded: requests still streaming get a moment, then their sockets are destroyed.
    await Promise.all(pools.map((pool) => Promise.race([pool.close(), new Promise((r) => setTimeout(r, 1000).unref())]).then(() => pool.destroy().catch(() => {}))));
  }
}

/** Creates the plain-HTTP forwarder. */
export function createUndiciForwarder(options: UndiciForwarderOptions): Forwarder<ServerResponse> {
  return new UndiciForwarder(options);
}
