// Upstream connections for Thrift calls: per instance and format, one call in flight on each,
// an idle one always reused before another is opened (the seed's TSimpleServer serves one
// connection at a time).
import { Socket, type LookupFunction } from 'node:net';
import type { Instance } from '../discovery/provider-table.js';
import { DEADLINE_CODE, errorCode, type TryOutcome } from '../outcome.js';
import { DEADLINE_PASSED, type Cancellation } from '../upstream/cancellation.js';
import { connectInstance } from '../upstream/connect.js';
import { readMessage, type ThriftFormat, type ThriftLimits, type ThriftMessage } from './codec.js';

/** How one exchange on an upstream connection ended: the reply, or the try's outcome. */
export type Exchange =
  | { readonly kind: 'reply'; readonly bytes: Buffer; readonly message: ThriftMessage }
  | { readonly kind: 'sent' }
  | { readonly kind: 'failed'; readonly outcome: TryOutcome };

/** One upstream connection: one call at a time, the reply delimited in the caller's format. */
export class UpstreamConnection {
  /** The instance's `host:port`. */
  readonly address: string;
  /** Which idle list it goes back to: the caller's format. */
  readonly format: string;
  readonly #socket: Socket;
  readonly #fmt: ThriftFormat;
  readonly #limits: ThriftLimits;
  #buffer: Buffer = Buffer.alloc(0);
  #waiting: ((e: Exchange) => void) | undefined;
  #closed = false;

  constructor(address: string, socket: Socket, fmt: ThriftFormat, limits: ThriftLimits) {
    this.address = address;
    this.format = formatKey(fmt);
    this.#socket = socket;
    this.#fmt = fmt;
    this.#limits = limits;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
      if (!this.#waiting) {
        // Bytes nobody asked for: the connection is out of step; it goes.
        this.destroy();
        return;
      }
      this.#deliver();
    });
    socket.on('error', () => {});
    socket.once('close', () => {
      this.#closed = true;
      this.#settle({ kind: 'failed', outcome: { kind: 'reset-before-response', code: 'UPSTREAM_CLOSED' } });
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Sends one call; resolves with its reply (none for oneway), or how it failed. */
  exchange(request: Buffer, oneway: boolean, timeoutMs: number, cancel: Cancellation, timeoutCode = 'THRIFT_REPLY_TIMEOUT'): Promise<Exchange> {
    if (this.#closed) return Promise.resolve({ kind: 'failed', outcome: { kind: 'reset-before-response', code: 'UPSTREAM_CLOSED' } });
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.#fail({ kind: 'timeout', code: timeoutCode }), Math.max(1, timeoutMs));
      this.#waiting = (e) => {
        clearTimeout(timer);
        cancel.onCancel(undefined);
        resolve(e);
      };
      cancel.onCancel((reason) => this.#fail(reason === DEADLINE_PASSED ? { kind: 'timeout', code: DEADLINE_CODE } : { kind: 'client-aborted', responseStarted: false }));
      if (oneway) {
        this.#socket.write(request, (err) => this.#settle(err ? { kind: 'failed', outcome: { kind: 'reset-before-response', code: errorCode(err) } } : { kind: 'sent' }));
      } else {
        this.#socket.write(request);
      }
    });
  }

  destroy(): void {
    this.#closed = true;
    this.#socket.destroy();
  }

  /** A failed exchange leaves the connection out of step: it is closed. */
  #fail(outcome: TryOutcome): void {
    this.#settle({ kind: 'failed', outcome });
    this.destroy();
  }

  #deliver(): void {
    const result = readMessage(this.#buffer, this.#fmt, this.#limits);
    if (result.kind === 'need-more') return;
    if (result.kind === 'rejected') {
      this.#fail({ kind: 'reset-before-response', code: `THRIFT_${result.reason.toUpperCase()}` });
      return;
    }
    const bytes = this.#buffer.subarray(0, result.message.length);
    this.#buffer = this.#buffer.subarray(result.message.length);
    this.#settle({ kind: 'reply', bytes, message: result.message });
  }

  #settle(e: Exchange): void {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.(e);
  }
}

const formatKey = (fmt: ThriftFormat) => `${fmt.transport}|${fmt.protocol}`;

export interface UpstreamPoolOptions {
  readonly limits: ThriftLimits;
}

/** Idle upstream connections per instance address and format. */
export class UpstreamPool {
  readonly #options: UpstreamPoolOptions;
  /** Idle connections by instance address, then by format. */
  readonly #idle = new Map<string, Map<string, UpstreamConnection[]>>();
  readonly #all = new Set<UpstreamConnection>();
  /** Open connections per instance address (for the dashboard). */
  readonly #byAddress = new Map<string, number>();

  constructor(options: UpstreamPoolOptions) {
    this.#options = options;
  }

  /** An idle connection to `instance` in `fmt`, or a new one connected within `connectTimeoutMs`; or how connecting failed. */
  acquire(instance: Instance, fmt: ThriftFormat, connectTimeoutMs: number, cancel: Cancellation, lookup?: LookupFunction): Promise<UpstreamConnection | TryOutcome> {
    const idle = this.#idle.get(instance.address)?.get(formatKey(fmt));
    while (idle && idle.length > 0) {
      const conn = idle.pop()!;
      if (!conn.closed) return Promise.resolve(conn);
    }
    return connectInstance(instance, { timeoutMs: connectTimeoutMs, cancel, lookup }).then((socket) => {
      if (!(socket instanceof Socket)) return socket;
      const conn = new UpstreamConnection(instance.address, socket, fmt, this.#options.limits);
      this.#all.add(conn);
      this.#byAddress.set(instance.address, (this.#byAddress.get(instance.address) ?? 0) + 1);
      socket.once('close', () => {
        this.#all.delete(conn);
        const left = (this.#byAddress.get(instance.address) ?? 1) - 1;
        if (left > 0) this.#byAddress.set(instance.address, left);
        else this.#byAddress.delete(instance.address);
      });
      return conn;
    });
  }

  /** Back to the idle list after a whole exchange. */
  release(conn: UpstreamConnection): void {
    if (conn.closed) return;
    let byFormat = this.#idle.get(conn.address);
    if (!byFormat) this.#idle.set(conn.address, (byFormat = new Map()));
    let idle = byFormat.get(conn.format);
    if (!idle) byFormat.set(conn.format, (idle = []));
    idle.push(conn);
  }

  /** Closes the connections to addresses no service lists any more. */
  forget(addresses: readonly string[]): void {
    const gone = new Set(addresses);
    for (const conn of this.#all) if (gone.has(conn.address)) conn.destroy();
    for (const address of addresses) this.#idle.delete(address);
  }

  /** Upstream connections open now (idle or busy). */
  get size(): number {
    return this.#all.size;
  }

  /** Upstream connections open now to one instance address. */
  openTo(address: string): number {
    return this.#byAddress.get(address) ?? 0;
  }

  close(): void {
    for (const conn of this.#all) conn.destroy();
    this.#idle.clear();
  }
}

