// The wire engine's upstream side: keep-alive connections per instance address (idle ones
// reused first, at most `maxConnectionsPerInstance` open, requests beyond wait in order), each
// try's head serialised into one string, the response parsed by our strict parser and passed to
// the caller's EngineResponse without copying, backpressure both ways.
import { connect, type LookupFunction, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import type { Instance } from '../../discovery/provider-table.js';
import { DEADLINE_CODE, type TryOutcome } from '../../outcome.js';
import { CLIENT_GONE } from '../../upstream/cancellation.js';
import { failedTryOutcome, takePools, type ForwardRequest, type Forwarder } from '../forwarder.js';
import { clientResponseFields } from '../headers.js';
import { isIdempotent } from '../retry-policy.js';
import { writeChunk, writeJoined, type EngineResponse } from './exchange.js';
import { Http1Parser, type MessageHead } from './parser.js';

export interface WireForwarderOptions {
  readonly poolIdleTimeoutMs: number;
  readonly bodyIdleTimeoutMs: number;
  readonly maxConnectionsPerInstance: number;
  readonly lookupFor?: (port: number) => LookupFunction | undefined;
  /** Largest response head accepted from an instance. */
  readonly maxHeadBytes?: number;
}

/**
 * A limit on a connection: its connect, and each request's try and body idle, re-armed for
 * every request: one timer per connection, refreshed (no new timer per request while the
 * length stays the same); disarming only marks it.
 *
 * When the timer fires, the limit is applied only after the event loop has polled once more
 * (setImmediate runs after the poll phase). After the process was paused (a stopped VM, a
 * blocked loop) the timers run before what arrived meanwhile is read, and an answer that came
 * in time would be a timeout, and an ejection of a healthy instance (seen in the soak: two
 * ejected after each pause of the proxy). Re-arming or disarming in between cancels it.
 */
class Deadline {
  #timer: NodeJS.Timeout | undefined;
  #ms = 0;
  #armed = false;
  /** Counts arms and disarms, so a firing deferred past one can tell it is stale. */
  #generation = 0;
  readonly #fire: () => void;

  constructor(fire: () => void) {
    this.#fire = fire;
  }

  arm(ms: number): void {
    this.#armed = true;
    this.#generation += 1;
    if (this.#timer && this.#ms === ms) {
      this.#timer.refresh();
      return;
    }
    clearTimeout(this.#timer);
    this.#ms = ms;
    this.#timer = setTimeout(() => {
      if (!this.#armed) return;
      const generation = this.#generation;
      setImmediate(() => {
        if (!this.#armed || this.#generation !== generation) return;
        this.#armed = false;
        this.#fire();
      });
    }, ms).unref();
  }

  disarm(): void {
    this.#armed = false;
    this.#generation += 1;
  }

  close(): void {
    this.disarm();
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/** One upstream connection and its response parser. */
class Upstream {
  readonly socket: Socket;
  readonly parser: Http1Parser;
  /** Until response headers (the try timeout), then between body chunks (body idle). */
  readonly headDeadline = new Deadline(() => this.exchange?.headersTimeout());
  readonly bodyDeadline = new Deadline(() => this.exchange?.bodyTimeout());
  /** The try using it, or undefined while idle in the pool. */
  exchange: Exchange | undefined;
  idleTimer: NodeJS.Timeout | undefined;

  constructor(socket: Socket, maxHeadBytes: number) {
    this.socket = socket;
    this.parser = new Http1Parser({ kind: 'response', maxHeadBytes }, {
      onHead: (head) => this.exchange?.onHead(head),
      onBody: (chunk) => this.exchange?.onBody(chunk),
      onComplete: () => this.exchange?.onComplete(),
    });
  }
}

class Pool {
  readonly #host: string;
  readonly #port: number;
  readonly #options: WireForwarderOptions;
  readonly #idle: Upstream[] = [];
  readonly #waiting: Exchange[] = [];
  /** Released in this turn of the event loop: reusable after the next poll (see release). */
  readonly #released: Upstream[] = [];
  #hopScheduled = false;
  #open = 0;
  closed = false;

  constructor(instance: Instance, options: WireForwarderOptions) {
    this.#host = instance.host;
    this.#port = instance.port;
    this.#options = options;
  }

  /** Longest pause between response body chunks. */
  get bodyIdleTimeoutMs(): number {
    return this.#options.bodyIdleTimeoutMs;
  }

  /** Starts the exchange on an idle connection, a new one, or after one is free. */
  acquire(exchange: Exchange): void {
    let idle = this.#idle.pop();
    // Destroyed but not closed yet ('close', which takes it out of the list, comes a phase
    // later): the idle timer, or bytes nobody asked for. After a pause the timers run before
    // the requests that waited are read, and each got such a connection.
    while (idle && idle.socket.destroyed) idle = this.#idle.pop();
    if (idle) {
      clearTimeout(idle.idleTimer);
      idle.idleTimer = undefined;
      return exchange.start(idle);
    }
    if (this.#open < this.#options.maxConnectionsPerInstance) return this.#connect(exchange);
    exchange.queued();
    this.#waiting.push(exchange);
  }

  /** A waiting exchange gave up (cancelled) before it got a connection. */
  forget(exchange: Exchange): void {
    const i = this.#waiting.indexOf(exchange);
    if (i !== -1) this.#waiting.splice(i, 1);
  }

  /** Starts the exchange on a new connection, whatever is idle (a re-send after a stale one). */
  connectFresh(exchange: Exchange): void {
    if (this.closed) return exchange.finish({ kind: 'connect-failed', code: 'FORWARDER_CLOSED' });
    this.#connect(exchange);
  }

  #connect(exchange: Exchange): void {
    this.#open += 1;
    const lookup = this.#options.lookupFor?.(this.#port);
    const socket = connect({ host: this.#host, port: this.#port, noDelay: true, ...(lookup ? { lookup } : {}) });
    const upstream = new Upstream(socket, this.#options.maxHeadBytes ?? 64 * 1024);
    let connected = false;
    // A Deadline, so a connect that completed while the process was paused is read first.
    const connectDeadline = new Deadline(() => socket.destroy(Object.assign(new Error('connect timeout'), { code: 'UND_ERR_CONNECT_TIMEOUT' })));
    connectDeadline.arm(exchange.connectTimeoutMs);
    socket.once('connect', () => {
      connected = true;
      connectDeadline.close();
      upstream.exchange?.connected();
    });
    socket.on('data', (chunk: Buffer) => this.#data(upstream, chunk));
    socket.on('error', (err: Error) => upstream.exchange?.socketError(err, !connected));
    socket.on('close', () => {
      connectDeadline.close();
      clearTimeout(upstream.idleTimer);
      upstream.headDeadline.close();
      upstream.bodyDeadline.close();
      this.#open -= 1;
      const i = this.#idle.indexOf(upstream);
      if (i !== -1) this.#idle.splice(i, 1);
      upstream.exchange?.socketClosed(!connected);
      upstream.exchange = undefined;
      this.#next();
    });
    exchange.start(upstream, !connected);
  }

  #data(upstream: Upstream, chunk: Buffer): void {
    if (!upstream.exchange) {
      // Bytes from an idle connection: nothing asked for them. It cannot be trusted any more.
      upstream.socket.destroy();
      return;
    }
    upstream.exchange.answered = true;
    let offset = 0;
    while (offset < chunk.length && upstream.exchange) {
      const n = upstream.parser.execute(chunk, offset);
      if (n < 0) return upstream.exchange.parseError();
      offset += n;
    }
    if (offset < chunk.length) upstream.socket.destroy();
  }

  /**
   * The exchange is over: the connection goes back to the pool, or is closed. It is reused only
   * once the event loop has polled again, not in the read that finished its answer: a close the
   * instance sent right behind the answer (after a pause every answer left waiting in the
   * buffers has one) is read by that next poll (libuv stops reading a socket at a short read),
   * and so is seen before a request is written on the connection, instead of after (a request
   * the instance never read, which a POST cannot be sent again for). One deferral per pool and
   * turn: two setImmediate hops, the second after the next poll phase.
   */
  release(upstream: Upstream, reusable: boolean): void {
    upstream.exchange = undefined;
    if (!reusable || this.closed) {
      upstream.socket.destroy();
      return;
    }
    this.#released.push(upstream);
    if (!this.#hopScheduled) {
      this.#hopScheduled = true;
      setImmediate(this.#hop);
    }
  }

  readonly #hop = (): void => {
    this.#hopScheduled = false;
    const batch = this.#released.splice(0);
    setImmediate(() => this.#settle(batch));
  };

  #settle(batch: Upstream[]): void {
    for (const upstream of batch) {
      const socket = upstream.socket;
      if (this.closed || socket.destroyed || socket.readableEnded || !socket.writable) {
        socket.destroy();
        continue;
      }
      const next = this.#waiting.shift();
      if (next) {
        next.start(upstream);
        continue;
      }
      this.#idle.push(upstream);
      if (upstream.idleTimer) upstream.idleTimer.refresh();
      else upstream.idleTimer = setTimeout(() => socket.destroy(), this.#options.poolIdleTimeoutMs);
    }
  }

  #next(): void {
    const next = this.#waiting.shift();
    if (next && !this.closed) this.acquire(next);
  }

  close(): void {
    this.closed = true;
    for (const upstream of this.#idle.splice(0)) upstream.socket.destroy();
    for (const upstream of this.#released.splice(0)) upstream.socket.destroy();
    for (const waiting of this.#waiting.splice(0)) waiting.finish({ kind: 'connect-failed', code: 'FORWARDER_CLOSED' });
  }
}

/** One try: the request written, the response relayed, the ending turned into an outcome. */
class Exchange {
  readonly #request: ForwardRequest;
  readonly #res: EngineResponse;
  readonly #pool: Pool;
  readonly #done: (outcome: TryOutcome) => void;
  #upstream: Upstream | undefined;
  #startedAt: number;
  #queueTimer: NodeJS.Timeout | undefined;
  #status = 0;
  #finished = false;
  #keepAlive = true;
  #waitingForDrain = false;
  #connecting = false;
  /** The connection was idle in the pool before this try (kept alive from an earlier one). */
  #reused = false;
  /** Sent again once on a new connection after a reused one closed before any answer. */
  #resent = false;
  /** Some byte of a response arrived on this try's connection. */
  answered = false;

  constructor(request: ForwardRequest, res: EngineResponse, pool: Pool, done: (outcome: TryOutcome) => void) {
    this.#request = request;
    this.#res = res;
    this.#pool = pool;
    this.#done = done;
    request.cancel.onCancel(() => this.#cancelled());
    this.#startedAt = performance.now();
  }

  /** The connect limit of this try's request (the settings in force when it arrived). */
  get connectTimeoutMs(): number {
    return this.#request.connectTimeoutMs;
  }

  /** Waiting for a connection: the try timeout runs from the start (a rare path: its own timer). */
  queued(): void {
    this.#queueTimer = setTimeout(() => this.headersTimeout(), this.#request.tryTimeoutMs);
  }

  start(upstream: Upstream, connecting = false): void {
    if (this.#finished) return this.#pool.release(upstream, true);
    clearTimeout(this.#queueTimer);
    this.#upstream = upstream;
    upstream.exchange = this;
    upstream.headDeadline.arm(Math.max(1, Math.ceil(this.#request.tryTimeoutMs - (performance.now() - this.#startedAt))));
    this.#connecting = connecting;
    this.#reused = !connecting;
    this.answered = false;
    upstream.parser.noBody = this.#request.method === 'HEAD';
    // Written at once: on a new connection the socket queues it until connected.
    this.#send(upstream.socket);
  }

  connected(): void {
    this.#connecting = false;
  }

  #send(socket: Socket): void {
    const request = this.#request;
    let head = `${request.method} ${request.path} HTTP/1.1\r\n`;
    const headers = request.headers;
    let hasLength = false;
    for (const name in headers) {
      const value = headers[name]!;
      if (name === 'content-length') {
        hasLength = true;
        if (Buffer.isBuffer(request.body)) continue;
      }
      if (typeof value === 'string') head += `${name}: ${value}\r\n`;
      else for (const v of value) head += `${name}: ${v}\r\n`;
    }
    const body = request.body;
    if (body === null) {
      socket.write(`${head}\r\n`, 'latin1');
    } else if (Buffer.isBuffer(body)) {
      head += `content-length: ${body.length}\r\n\r\n`;
      writeJoined(socket, head, body);
    } else {
      const chunked = !hasLength;
      socket.write(chunked ? `${head}transfer-encoding: chunked\r\n\r\n` : `${head}\r\n`, 'latin1');
      this.#stream(body, socket, chunked);
    }
  }

  /** A body sent once (too large to hold, or chunked): piped with backpressure. */
  #stream(body: Readable, socket: Socket, chunked: boolean): void {
    const onData = (chunk: Buffer) => {
      if (this.#finished || socket.destroyed) return;
      const ok = chunked ? writeChunk(socket, chunk) : socket.write(chunk);
      if (!ok) {
        body.pause();
        socket.once('drain', () => body.resume());
      }
    };
    body.on('data', onData);
    body.once('end', () => {
      if (chunked && !this.#finished && !socket.destroyed) socket.write('0\r\n\r\n', 'latin1');
    });
    body.once('error', () => {
      // The caller's upload broke: the instance cannot get a whole request on this connection.
      this.#keepAlive = false;
      socket.destroy();
    });
  }

  onHead(head: MessageHead): void {
    if (head.status < 200) {
      if (head.status === 101) this.parseError();
      return; // 100 Continue and other interim answers: the engine answered the caller's Expect itself
    }
    this.#upstream?.headDeadline.disarm();
    this.#status = head.status;
    this.#keepAlive = head.keepAlive;
    this.#res.writeHead(head.status, clientResponseFields(head.fields));
    if (this.#res.writableFinished || this.#res.destroyed) return;
    this.#armBodyTimer();
  }

  #armBodyTimer(): void {
    this.#upstream?.bodyDeadline.arm(this.#pool.bodyIdleTimeoutMs);
  }

  onBody(chunk: Buffer): void {
    if (this.#finished) return;
    this.#armBodyTimer();
    if (this.#res.write(chunk)) return;
    // The caller is slower than the instance: stop reading from the instance until it drains.
    if (!this.#waitingForDrain && this.#upstream) {
      this.#waitingForDrain = true;
      const upstream = this.#upstream;
      upstream.socket.pause();
      this.#res.socket.once('drain', () => {
        this.#waitingForDrain = false;
        if (upstream.exchange === this) upstream.socket.resume();
      });
    }
  }

  onComplete(): void {
    if (this.#status === 0) return; // an interim response's end
    this.#res.end();
    this.finish(this.#status >= 500 ? { kind: 'upstream-5xx', status: this.#status } : { kind: 'ok', status: this.#status });
  }

  parseError(): void {
    const err = Object.assign(new Error(`malformed response from the instance (${this.#upstream?.parser.error?.code ?? 'unexpected 101'})`), { code: 'UPSTREAM_MALFORMED' });
    this.#keepAlive = false;
    this.#fail(err);
  }

  socketError(err: Error, beforeConnect: boolean): void {
    this.#keepAlive = false;
    this.#fail(err, beforeConnect);
  }

  socketClosed(beforeConnect: boolean): void {
    if (this.#finished) return;
    this.#keepAlive = false;
    // A response read until the connection closes ends here.
    if (this.#status !== 0 && this.#upstream && this.#upstream.parser.finish() === undefined && this.#upstream.parser.idle) return;
    this.#fail(Object.assign(new Error('the instance closed the connection'), { code: beforeConnect ? 'ECONNREFUSED' : 'UND_ERR_SOCKET' }), beforeConnect);
  }

  #fail(err: Error, beforeConnect = false): void {
    if (this.#finished) return;
    if (this.#staleConnection()) return this.#resend();
    // After the status line went out the caller's response can only be cut.
    if (this.#status !== 0) this.#res.destroy();
    this.finish(failedTryOutcome(err, this.#status, this.#request.cancel.reason, beforeConnect && this.#connecting));
  }

  /**
   * A kept-alive connection that closed before any byte of an answer: the instance closed it
   * as the request arrived (its keep-alive timeout, or a close this process read only after
   * writing, as after a pause). The request was most likely never read; an idempotent one with
   * a body we still hold is sent once more on a new connection to the same instance, as Go's
   * and HAProxy's clients do, instead of failing the try (a retry elsewhere, a health failure).
   */
  #staleConnection(): boolean {
    const request = this.#request;
    return this.#reused && !this.#resent && !this.answered && this.#status === 0 && request.cancel.reason === undefined
      && (request.body === null || Buffer.isBuffer(request.body)) && isIdempotent(request.method);
  }

  #resend(): void {
    this.#resent = true;
    const upstream = this.#upstream;
    this.#upstream = undefined;
    if (upstream?.exchange === this) {
      upstream.exchange = undefined;
      upstream.headDeadline.disarm();
      upstream.socket.destroy();
    }
    this.#keepAlive = true;
    this.#pool.connectFresh(this);
  }

  headersTimeout(): void {
    if (this.#finished || this.#status !== 0) return;
    this.#keepAlive = false;
    this.#upstream?.socket.destroy();
    this.finish({ kind: 'timeout', code: this.#request.deadlineBound ? DEADLINE_CODE : 'UND_ERR_HEADERS_TIMEOUT' });
  }

  bodyTimeout(): void {
    if (this.#finished) return;
    this.#keepAlive = false;
    this.#upstream?.socket.destroy();
    this.#res.destroy();
    this.finish({ kind: 'response-interrupted', status: this.#status, code: 'UND_ERR_BODY_TIMEOUT' });
  }

  #cancelled(): void {
    if (this.#finished) return;
    this.#keepAlive = false;
    this.#upstream?.socket.destroy();
    this.#fail(this.#request.cancel.reason ?? CLIENT_GONE);
  }

  /** Ends the try once: the connection goes back (or is closed), the outcome is reported. */
  finish(outcome: TryOutcome): void {
    if (this.#finished) return;
    this.#finished = true;
    clearTimeout(this.#queueTimer);
    this.#upstream?.headDeadline.disarm();
    this.#upstream?.bodyDeadline.disarm();
    this.#request.cancel.onCancel(undefined);
    const upstream = this.#upstream;
    if (upstream) {
      this.#upstream = undefined;
      if (upstream.exchange === this) this.#pool.release(upstream, this.#keepAlive && outcome.kind !== 'client-aborted' && upstream.parser.idle && !this.#waitingForDrain);
    } else this.#pool.forget(this);
    this.#done(outcome);
  }
}

/** Plain HTTP/1.1 forwarding for the wire engine: one pool per instance address. */
export class WireForwarder implements Forwarder<EngineResponse> {
  readonly #options: WireForwarderOptions;
  readonly #pools = new Map<string, Pool>();
  #closed = false;
  // The head deadline is armed before the connect and covers the wait in the queue too.
  readonly selfBounded = true;

  constructor(options: WireForwarderOptions) {
    this.#options = options;
  }

  forward(request: ForwardRequest, instance: Instance, res: EngineResponse): Promise<TryOutcome> {
    if (this.#closed) return Promise.resolve({ kind: 'connect-failed', code: 'FORWARDER_CLOSED' });
    let pool = this.#pools.get(instance.address);
    if (!pool) {
      pool = new Pool(instance, this.#options);
      this.#pools.set(instance.address, pool);
    }
    const chosen = pool;
    return new Promise((resolve) => {
      // Cancelled before it started: no connection is taken for it.
      if (request.cancel.reason) {
        resolve(failedTryOutcome(request.cancel.reason, 0, request.cancel.reason));
        return;
      }
      chosen.acquire(new Exchange(request, res, chosen, resolve));
    });
  }

  release(addresses: Iterable<string>): void {
    for (const pool of takePools(this.#pools, addresses)) pool.close();
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const pool of this.#pools.values()) pool.close();
    this.#pools.clear();
  }
}

/** Creates the wire engine's forwarder. */
export function createWireForwarder(options: WireForwarderOptions): Forwarder<EngineResponse> {
  return new WireForwarder(options);
}
