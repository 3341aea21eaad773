import type { ServerResponse } from 'node:http';
import { Pool } from 'undici';
import type { Instance } from '../discovery/provider-table.js';
import { CLIENT_GONE, DEADLINE_PASSED, type ForwardOutcome, type ForwardRequest, type Forwarder } from './forwarder.js';
import { clientResponseHeaders } from './headers.js';

export interface UndiciForwarderOptions {
  /** TCP connect limit per attempt (a timeout counts as a connect failure). */
  readonly connectTimeoutMs: number;
  /**
   * How long an idle pooled connection is kept. Below the common 5 s server keep-alive, so a
   * socket is not reused just as the instance closes it.
   */
  readonly poolIdleTimeoutMs: number;
  /** Longest pause between response body chunks before the response is cut. */
  readonly bodyIdleTimeoutMs: number;
  /** Connections per instance (undefined: no limit). */
  readonly connectionsPerInstance?: number;
}

// Errors raised before a connection existed: nothing was sent, any method may be retried.
const CONNECT_ERRORS = new Set([
  'ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'EADDRNOTAVAIL',
  'ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME', 'UND_ERR_CONNECT_TIMEOUT',
]);

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'UNKNOWN';
}

/** Plain HTTP forwarding over one keep-alive undici Pool per instance address. */
export class UndiciForwarder implements Forwarder {
  readonly #options: UndiciForwarderOptions;
  readonly #pools = new Map<string, Pool>();
  #closed = false;

  constructor(options: UndiciForwarderOptions) {
    this.#options = options;
  }

  #pool(instance: Instance): Pool {
    let pool = this.#pools.get(instance.address);
    if (!pool) {
      pool = new Pool(`http://${instance.address}`, {
        connections: this.#options.connectionsPerInstance ?? null,
        pipelining: 1,
        connect: { timeout: this.#options.connectTimeoutMs },
        keepAliveTimeout: this.#options.poolIdleTimeoutMs,
        keepAliveMaxTimeout: this.#options.poolIdleTimeoutMs,
        bodyTimeout: this.#options.bodyIdleTimeoutMs,
      });
      this.#pools.set(instance.address, pool);
    }
    return pool;
  }

  forward(request: ForwardRequest, instance: Instance, res: ServerResponse): Promise<ForwardOutcome> {
    if (this.#closed) return Promise.resolve({ kind: 'connect-failed', code: 'FORWARDER_CLOSED' });
    const pool = this.#pool(instance);
    return new Promise((resolve) => {
      let status = 0;
      const factory = ({ statusCode, headers }: { statusCode: number; headers: Record<string, string | string[] | undefined> }) => {
        res.writeHead(statusCode, clientResponseHeaders(headers));
        status = statusCode;
        return res;
      };
      const done = (err: Error | null) => {
        const { signal } = request;
        if (signal.aborted && signal.reason === CLIENT_GONE) resolve({ kind: 'client-aborted', responseStarted: status !== 0 });
        else if (err === null) resolve(status >= 500 ? { kind: 'upstream-5xx', status } : { kind: 'ok', status });
        else if (status !== 0) resolve({ kind: 'response-interrupted', status, code: signal.reason === DEADLINE_PASSED ? 'DEADLINE' : errorCode(err) });
        else if (signal.aborted && signal.reason === DEADLINE_PASSED) resolve({ kind: 'timeout', code: 'DEADLINE' });
        else {
          const code = errorCode(err);
          if (CONNECT_ERRORS.has(code)) resolve({ kind: 'connect-failed', code });
          else if (code === 'UND_ERR_HEADERS_TIMEOUT') resolve({ kind: 'timeout', code });
          else resolve({ kind: 'reset-before-response', code });
        }
      };
      try {
        pool.stream(
          {
            path: request.path,
            method: request.method as 'GET',
            headers: request.headers,
            body: request.body,
            signal: request.signal,
            headersTimeout: request.tryTimeoutMs,
            opaque: null,
          },
          factory,
          done,
        );
      } catch (err) {
        done(err as Error);
      }
    });
  }

  retain(instances: Iterable<Instance>): void {
    const keep = new Set<string>();
    for (const instance of instances) keep.add(instance.address);
    for (const [address, pool] of this.#pools) {
      if (keep.has(address)) continue;
      this.#pools.delete(address);
      pool.close().catch(() => {});
    }
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
export function createUndiciForwarder(options: UndiciForwarderOptions): Forwarder {
  return new UndiciForwarder(options);
}
