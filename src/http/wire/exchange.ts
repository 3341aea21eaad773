// One request and its response on a caller's connection, as the wire engine serves them: the
// request's head as the handler reads it (Node's header object shape) and its body as a stream;
// the response written straight to the socket with the framing the caller's version allows.
import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { CallerRequest, CallerResponse } from '../exchange.js';
import type { MessageHead } from './parser.js';

// Fields Node keeps only the first of (IncomingMessage#headers); set-cookie is a list, cookie
// joined with '; ', every other repeat joined with ', '.
const FIRST_ONLY = new Set(['age', 'authorization', 'content-length', 'content-type', 'etag', 'expires', 'from', 'host', 'if-modified-since', 'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'referer', 'retry-after', 'server', 'user-agent']);

/** Node's header object from fields as sent. */
export function headersObject(fields: readonly string[]): IncomingHttpHeaders {
  const out: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!.toLowerCase();
    const value = fields[i + 1]!;
    const prior = out[name];
    if (prior === undefined) out[name] = name === 'set-cookie' ? [value] : value;
    else if (name === 'set-cookie') (prior as string[]).push(value);
    else if (FIRST_ONLY.has(name)) continue;
    else out[name] = `${prior as string}${name === 'cookie' ? '; ' : ', '}${value}`;
  }
  return out as IncomingHttpHeaders;
}

/** A request as the engine hands it to the handler. */
export class EngineRequest extends Readable implements CallerRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly socket: Socket;
  complete = false;
  /** Called when the handler wants more body bytes (the socket was paused for it). */
  onWanted: (() => void) | undefined;

  constructor(head: MessageHead, socket: Socket, hasBody: boolean) {
    super({ highWaterMark: 64 * 1024 });
    this.method = head.method;
    this.url = head.target;
    this.headers = headersObject(head.fields);
    this.socket = socket;
    this.complete = !hasBody;
  }

  override _read(): void {
    // Without a body the stream ends when first read (most requests are never read at all).
    if (this.complete && this.onWanted === undefined) this.push(null);
    else this.onWanted?.();
  }
}

// Below this a head and a body piece are copied into one Buffer: one write(2) without writev's
// per-call arrays and string conversion (the copy is cheaper than the syscall machinery).
const JOIN_BYTES = 16 * 1024;

/** Writes `head` (latin1) and then `chunk`: one Buffer when small, else both under one cork. */
export function writeJoined(socket: Socket, head: string, chunk: Buffer): boolean {
  if (chunk.length > JOIN_BYTES) {
    socket.cork();
    socket.write(head, 'latin1');
    const ok = socket.write(chunk);
    socket.uncork();
    return ok;
  }
  const out = Buffer.allocUnsafe(head.length + chunk.length);
  out.write(head, 0, 'latin1');
  chunk.copy(out, head.length);
  return socket.write(out);
}

/** Writes one chunk of chunked framing (size line, bytes, CRLF), after `prefix` (a head). */
export function writeChunk(socket: Socket, chunk: Buffer, prefix = ''): boolean {
  socket.cork();
  socket.write(`${prefix}${chunk.length.toString(16)}\r\n`, 'latin1');
  socket.write(chunk);
  const ok = socket.write('\r\n', 'latin1');
  socket.uncork();
  return ok;
}

/** How the response to one request may be framed and whether its connection stays open. */
export interface ResponseContext {
  readonly socket: Socket;
  readonly head: boolean;
  /** The caller speaks HTTP/1.1 (chunked allowed). */
  readonly v11: boolean;
  /** The caller asked to keep the connection, and nothing since said otherwise. */
  keepAlive: boolean;
  /** The response has been written in full (or cut): the connection moves on. */
  readonly onDone: (res: EngineResponse, reusable: boolean) => void;
  /** `Date` for this second (cached by the connection's server). */
  readonly date: () => string;
}

const enum Framing {
  None,
  Length,
  Chunked,
  UntilClose,
}

/** The response: head and body written straight to the caller's socket. */
export class EngineResponse extends EventEmitter implements CallerResponse {
  readonly #ctx: ResponseContext;
  #framing = Framing.None;
  #head: string | undefined;
  #extra: string[] | undefined;
  #finished = false;
  #closed = false;
  headersSent = false;
  statusCode = 200;

  constructor(ctx: ResponseContext) {
    super();
    this.#ctx = ctx;
  }

  get writableFinished(): boolean {
    return this.#finished;
  }

  get destroyed(): boolean {
    return this.#closed && !this.#finished;
  }

  get socket(): Socket {
    return this.#ctx.socket;
  }

  /** Adds a header to the head not yet written (the listener's `connection: close` while draining). */
  setHeader(name: string, value: string): void {
    if (name.toLowerCase() === 'connection' && value.toLowerCase() === 'close') this.#ctx.keepAlive = false;
    else (this.#extra ??= []).push(name, value);
  }

  /** Writes the status line and fields (from a flat list or an object); the framing is ours to choose. */
  writeHead(status: number, headers: Record<string, string | number> | string[]): this {
    if (this.headersSent) return this;
    this.statusCode = status;
    const ctx = this.#ctx;
    let lines = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'unknown'}\r\n`;
    let length = -1;
    let hasDate = false;
    const add = (name: string, value: string) => {
      if (name.length === 14 && name.toLowerCase() === 'content-length') length = Number(value);
      else if (name.length === 4 && name.toLowerCase() === 'date') hasDate = true;
      lines += `${name}: ${value}\r\n`;
    };
    if (Array.isArray(headers)) for (let i = 0; i < headers.length; i += 2) add(headers[i]!, headers[i + 1]!);
    else for (const name in headers) add(name, String(headers[name]));
    if (this.#extra) for (let i = 0; i < this.#extra.length; i += 2) add(this.#extra[i]!, this.#extra[i + 1]!);
    if (!hasDate) lines += `Date: ${ctx.date()}\r\n`;
    const bodyless = ctx.head || status === 204 || status === 304 || (status >= 100 && status < 200);
    if (bodyless) this.#framing = Framing.None;
    else if (length >= 0) this.#framing = Framing.Length;
    else if (ctx.v11) {
      this.#framing = Framing.Chunked;
      lines += 'Transfer-Encoding: chunked\r\n';
    } else {
      this.#framing = Framing.UntilClose;
      ctx.keepAlive = false;
    }
    lines += ctx.keepAlive ? (ctx.v11 ? '\r\n' : 'Connection: keep-alive\r\n\r\n') : 'Connection: close\r\n\r\n';
    this.#head = lines;
    this.headersSent = true;
    return this;
  }

  /** Writes body bytes (with the head, the first time); false: wait for 'drain' on the socket. */
  write(chunk: Buffer): boolean {
    if (this.#closed) return false;
    const socket = this.#ctx.socket;
    if (!this.headersSent) this.writeHead(this.statusCode, []);
    if (this.#framing === Framing.None) return this.#flushHead();
    if (this.#framing === Framing.Chunked) {
      if (chunk.length === 0) return this.#flushHead();
      const head = this.#head ?? '';
      this.#head = undefined;
      return writeChunk(socket, chunk, head);
    }
    if (this.#head !== undefined) {
      const head = this.#head;
      this.#head = undefined;
      return writeJoined(socket, head, chunk);
    }
    return socket.write(chunk);
  }

  #flushHead(): boolean {
    if (this.#head === undefined) return true;
    const head = this.#head;
    this.#head = undefined;
    return this.#ctx.socket.write(head, 'latin1');
  }

  /** Ends the response (with a last piece of body, for error answers). */
  end(body?: string | Buffer): this {
    if (this.#finished || this.#closed) return this;
    if (!this.headersSent) this.writeHead(this.statusCode, body === undefined ? { 'content-length': 0 } : { 'content-length': Buffer.byteLength(body) });
    const socket = this.#ctx.socket;
    if (body !== undefined && this.#framing !== Framing.None) {
      const bytes = typeof body === 'string' ? Buffer.from(body) : body;
      if (this.#framing === Framing.Chunked) {
        this.write(bytes);
        socket.write('0\r\n\r\n', 'latin1');
      } else if (this.#head !== undefined) {
        writeJoined(socket, this.#head, bytes);
        this.#head = undefined;
      } else socket.write(bytes);
    } else if (this.#framing === Framing.Chunked) {
      const last = this.#head !== undefined ? `${this.#head}0\r\n\r\n` : '0\r\n\r\n';
      this.#head = undefined;
      socket.write(last, 'latin1');
    } else this.#flushHead();
    this.#finished = true;
    this.#close(this.#framing !== Framing.UntilClose && this.#ctx.keepAlive);
    return this;
  }

  /** Cuts the response (and the connection: nothing else can be framed on it). */
  destroy(): this {
    if (this.#closed) return this;
    this.#ctx.socket.destroy();
    this.#close(false);
    return this;
  }

  /** The caller's socket closed under the response. */
  socketClosed(): void {
    this.#close(false);
  }

  #close(reusable: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#ctx.onDone(this, reusable);
    this.emit('close');
  }
}
