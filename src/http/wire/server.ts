// The wire engine's caller side: a net.Server whose connections are parsed by our strict
// parser, one request at a time (pipelined requests wait, in order), answered by the shared
// handler. What it does not serve itself (an upgrade, CONNECT, a version other than 1.0/1.1) it
// hands, with every byte of that message, to a Node http.Server at the message's start.
import { createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { ProxyError } from '../../errors.js';
import { headersTooLarge, malformedRequest, requestTimedOut } from '../server.js';
import { EngineRequest, EngineResponse, type ResponseContext } from './exchange.js';
import { Http1Parser, type MessageHead } from './parser.js';

export interface EngineServerOptions {
  /** Time a caller has to send a request's head; then 408. */
  readonly headerTimeoutMs: number;
  /** Idle keep-alive connections from callers are closed after this. */
  readonly clientIdleTimeoutMs: number;
  /** Caller connections open at once; more are closed as they arrive. */
  readonly maxClientConnections: number;
  /** Largest request head (Node's maxHeaderSize). */
  readonly maxHeadBytes?: number;
}

export interface EngineServerHandlers {
  readonly request: (req: EngineRequest, res: EngineResponse) => void;
  /** Takes over a connection at a message boundary: `bytes` are that message's, read so far. */
  readonly handOver: (socket: Socket, bytes: Buffer) => void;
  readonly logger: Logger;
  readonly onDrop?: () => void;
}

export interface EngineServer {
  readonly server: Server;
  /** Closes connections between requests now; the others after their response. */
  closeIdleConnections(): void;
  closeAllConnections(): void;
}

// Bytes of the next requests held while one is answered; past this the socket is paused.
const HOLD_BYTES = 64 * 1024;

/** Builds the engine's server; listen on `server` as on any net.Server. */
export function createEngineServer(options: EngineServerOptions, handlers: EngineServerHandlers): EngineServer {
  const connections = new Set<Connection>();
  let dateSecond = 0;
  let dateText = '';
  const date = () => {
    const now = Date.now();
    const second = Math.floor(now / 1000);
    if (second !== dateSecond) {
      dateSecond = second;
      dateText = new Date(now).toUTCString();
    }
    return dateText;
  };
  let closing = false;
  // Header and idle limits are deadlines on each connection, checked by one sweep (as Node's
  // server does, every connectionsCheckingInterval): a request costs two field writes, no timer.
  let sweep: NodeJS.Timeout | undefined;
  const server = createServer({ noDelay: true }, (socket) => {
    const connection = new Connection(socket, options, handlers, date, () => connections.delete(connection), () => closing);
    connections.add(connection);
    sweep ??= setInterval(() => {
      const now = performance.now();
      for (const c of connections) c.checkDeadline(now);
    }, Math.min(1000, Math.max(50, options.headerTimeoutMs / 2)));
  });
  server.on('close', () => {
    clearInterval(sweep);
    sweep = undefined;
  });
  server.maxConnections = options.maxClientConnections;
  server.on('drop', () => handlers.onDrop?.());
  return {
    server,
    closeIdleConnections() {
      closing = true;
      for (const c of connections) c.closeIfIdle();
    },
    closeAllConnections() {
      for (const c of connections) c.socket.destroy();
    },
  };
}

class Connection {
  readonly socket: Socket;
  readonly #options: EngineServerOptions;
  readonly #handlers: EngineServerHandlers;
  readonly #date: () => string;
  readonly #forget: () => void;
  readonly #closing: () => boolean;
  readonly #parser: Http1Parser;
  /** The request being read (its body), until the parser completes it. */
  #request: EngineRequest | undefined;
  /** The response being written; requests behind it wait in #held. */
  #response: EngineResponse | undefined;
  #held: Buffer | undefined;
  /** The current message's bytes from earlier chunks (for a hand-over). */
  #messageChunks: Buffer[] = [];
  #messageStart = 0;
  #deadline = Infinity;
  #deadlineIsHeader = false;
  #pausedForBody = false;
  #handedOver = false;
  #ended = false;
  /** The chunk being parsed (a hand-over needs its bytes from the message's start). */
  #current: Buffer | undefined;
  readonly #onData = (chunk: Buffer) => this.#data(chunk);

  constructor(socket: Socket, options: EngineServerOptions, handlers: EngineServerHandlers, date: () => string, forget: () => void, closing: () => boolean) {
    this.socket = socket;
    this.#options = options;
    this.#handlers = handlers;
    this.#date = date;
    this.#forget = forget;
    this.#closing = closing;
    this.#parser = new Http1Parser({ kind: 'request', maxHeadBytes: options.maxHeadBytes ?? 16 * 1024 }, {
      onHead: (head) => this.#onHead(head),
      onBody: (chunk) => this.#onBody(chunk),
      onComplete: () => this.#onComplete(),
    });
    socket.on('data', this.#onData);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.#closed());
    socket.on('end', () => this.#peerEnded());
    this.#arm(options.clientIdleTimeoutMs, false);
  }

  closeIfIdle(): void {
    if (!this.#response && !this.#request && this.#parser.idle && !this.#handedOver) this.socket.end();
  }

  /** Sets the header or the idle deadline (checked by the server's sweep). */
  #arm(ms: number, isHeader: boolean): void {
    this.#deadlineIsHeader = isHeader;
    this.#deadline = performance.now() + ms;
  }

  #disarm(): void {
    this.#deadline = Infinity;
  }

  checkDeadline(now: number): void {
    if (now < this.#deadline) return;
    this.#deadline = Infinity;
    if (this.#deadlineIsHeader) this.#refuse(requestTimedOut());
    else this.socket.destroy();
  }

  #data(chunk: Buffer): void {
    if ((this.#response && !this.#request) || this.#held) {
      // A request is being answered: the next ones wait, in order.
      this.#held = this.#held ? Buffer.concat([this.#held, chunk]) : chunk;
      if (this.#held.length > HOLD_BYTES) this.socket.pause();
      return;
    }
    this.#feed(chunk);
  }

  #feed(chunk: Buffer): void {
    let offset = 0;
    this.#messageStart = 0;
    while (offset < chunk.length) {
      if (this.#parser.idle && !this.#request) this.#arm(this.#options.headerTimeoutMs, true);
      this.#current = chunk;
      const n = this.#parser.execute(chunk, offset);
      if (this.#handedOver || this.#ended) return;
      if (n < 0) {
        const err = this.#parser.error!;
        this.#handlers.logger.debug({ code: err.code, status: err.status }, 'rejected a malformed request');
        this.#refuse(err.status === 431 ? headersTooLarge() : malformedRequest(err.code));
        return;
      }
      offset += n;
      if (this.#parser.idle) this.#messageStart = offset;
      if (this.#response && !this.#request && offset < chunk.length) {
        // The rest belongs to requests behind this one.
        this.#held = chunk.subarray(offset);
        return;
      }
    }
    // Only a head still arriving may be handed over: body bytes are never kept here.
    if (!this.#parser.idle && !this.#response) this.#messageChunks.push(chunk.subarray(this.#messageStart));
  }

  #onHead(head: MessageHead): void {
    this.#disarm();
    const earlier = this.#messageChunks;
    this.#messageChunks = [];
    const v1x = head.versionMajor === 1;
    if (head.upgrade || !v1x) return this.#handOver(earlier);
    if (head.versionMinor === 1 && !head.hasHost) return this.#refuse(malformedRequest('HOST_MISSING'));
    const hasBody = head.chunked || head.contentLength > 0;
    if (head.expect !== undefined) {
      if (head.expect.toLowerCase() !== '100-continue') return this.#refuse(new ProxyError('expectation_failed', 'only Expect: 100-continue is supported'));
      if (hasBody) this.socket.write('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
    }
    const request = new EngineRequest(head, this.socket, hasBody);
    if (hasBody) {
      this.#request = request;
      request.onWanted = () => {
        if (this.#pausedForBody) {
          this.#pausedForBody = false;
          this.socket.resume();
        }
      };
    }
    const ctx: ResponseContext = {
      socket: this.socket,
      head: head.method === 'HEAD',
      v11: head.versionMinor === 1,
      keepAlive: head.keepAlive && !this.#closing(),
      onDone: (res, reusable) => this.#responseDone(res, reusable),
      date: this.#date,
    };
    const response = new EngineResponse(ctx);
    this.#response = response;
    this.#handlers.request(request, response);
  }

  #onBody(chunk: Buffer): void {
    const request = this.#request;
    if (!request) return;
    if (!request.push(chunk)) {
      this.#pausedForBody = true;
      this.socket.pause();
    }
  }

  #onComplete(): void {
    this.#messageChunks = [];
    const request = this.#request;
    this.#request = undefined;
    if (request) {
      request.complete = true;
      request.push(null);
    }
    if (!this.#response) this.#arm(this.#options.clientIdleTimeoutMs, false);
  }

  #responseDone(res: EngineResponse, reusable: boolean): void {
    if (this.#response !== res) return;
    this.#response = undefined;
    if (!reusable || this.#request || this.#ended) {
      // A body still arriving cannot be skipped safely on this connection: close it.
      if (!this.socket.destroyed) this.socket.end();
      this.#ended = true;
      return;
    }
    if (this.#closing()) {
      this.socket.end();
      this.#ended = true;
      return;
    }
    const held = this.#held;
    this.#held = undefined;
    this.#arm(this.#options.clientIdleTimeoutMs, false);
    if (held) {
      if (this.socket.isPaused() && !this.#pausedForBody) this.socket.resume();
      this.#feed(held);
    }
  }

  /** Gives the connection, at this message's first byte, to Node's server. */
  #handOver(earlier: Buffer[]): void {
    this.#handedOver = true;
    this.#disarm();
    const chunk = this.#current!;
    const bytes = Buffer.concat([...earlier, chunk.subarray(this.#messageStart)]);
    this.socket.off('data', this.#onData);
    this.#forget();
    this.#handlers.handOver(this.socket, bytes);
  }

  /** Answers a refused request and closes the connection. */
  #refuse(error: ProxyError): void {
    this.#ended = true;
    this.#disarm();
    if (this.#response && this.#response.headersSent) {
      this.socket.destroy();
      return;
    }
    if (!this.socket.writable) {
      this.socket.destroy();
      return;
    }
    this.socket.end(error.rawResponse());
  }

  #peerEnded(): void {
    // The caller sent everything it will: finish what is in flight, then close.
    if (!this.#response && !this.#request) this.socket.end();
  }

  #closed(): void {
    this.#ended = true;
    this.#disarm();
    this.#forget();
    const request = this.#request;
    this.#request = undefined;
    if (request && !request.complete) {
      // As IncomingMessage does: 'aborted', then 'close' (no 'error' nobody may be listening for).
      request.emit('aborted');
      request.destroy();
    }
    this.#response?.socketClosed();
  }
}
