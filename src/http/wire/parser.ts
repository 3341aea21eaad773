// A strict incremental HTTP/1.1 message parser over Buffers, for both directions: the callers'
// requests and the instances' responses. It accepts and rejects what the llhttp Node ships does
// in its strict mode (test/http/wire/differential.test.ts checks that against Node's own
// parser), and produces only what the proxy needs: the start line, the fields as sent, the
// framing, and body bytes as slices of the Buffers it was given (never copied).
import { COLON, CR, FIELD_VALUE, HEX, HTAB, LF, QDTEXT, REASON, SP, TARGET, TOKEN } from './chars.js';

/** Why a message was refused, and the status a server answers it with. */
export class WireError extends Error {
  readonly code: string;
  readonly status: 400 | 431;
  constructor(code: string, message: string, status: 400 | 431 = 400) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

/** One message's head, as parsed. */
export interface MessageHead {
  /** Requests: the method; responses: ''. */
  method: string;
  /** Requests: the request target as sent; responses: ''. */
  target: string;
  versionMajor: number;
  versionMinor: number;
  /** Responses: the status code; requests: 0. */
  status: number;
  /** Fields as sent: name, value, name, value... (names keep their case; values trimmed). */
  fields: string[];
  /** The Content-Length, or -1 when there is none. */
  contentLength: number;
  /** The last transfer coding is chunked. */
  chunked: boolean;
  /** The connection may carry another message after this one (llhttp's should_keep_alive). */
  keepAlive: boolean;
  /** Connection: upgrade with an Upgrade field, or CONNECT; a response: 101. */
  upgrade: boolean;
  /** The Expect field's value, if any (requests). */
  expect: string | undefined;
  /** A Host field was present (requests). */
  hasHost: boolean;
}

export interface ParserEvents {
  /** A head is complete. Body bytes, if any, follow. */
  onHead(head: MessageHead): void;
  /** Body bytes: a slice of the Buffer given to execute(), valid only until it returns... or kept. */
  onBody(chunk: Buffer): void;
  /** The message is complete; execute() returns right after (see `pauseAfterMessage`). */
  onComplete(trailers: string[] | undefined): void;
}

export interface ParserOptions {
  readonly kind: 'request' | 'response';
  /** Largest head (start line and fields; trailers count apart), as Node's maxHeaderSize: 16 KiB. */
  readonly maxHeadBytes: number;
}

/** The methods llhttp knows (http.METHODS); any other is refused, as Node refuses it. */
const METHODS = new Set(['ACL', 'BIND', 'CHECKOUT', 'CONNECT', 'COPY', 'DELETE', 'GET', 'HEAD', 'LINK', 'LOCK', 'M-SEARCH', 'MERGE', 'MKACTIVITY', 'MKCALENDAR', 'MKCOL', 'MOVE', 'NOTIFY', 'OPTIONS', 'PATCH', 'POST', 'PROPFIND', 'PROPPATCH', 'PURGE', 'PUT', 'QUERY', 'REBIND', 'REPORT', 'SEARCH', 'SOURCE', 'SUBSCRIBE', 'TRACE', 'UNBIND', 'UNLINK', 'UNLOCK', 'UNSUBSCRIBE']);

const enum State {
  StartLine,
  Fields,
  BodyLength,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  Trailers,
  BodyUntilClose,
  /** A message is complete; the next execute() starts the next one. */
  Done,
  Failed,
}

// 2^53 - 1: lengths beyond are refused (llhttp allows up to 2^64 - 1; nobody sends those).
const MAX_LENGTH_DIGITS = 15;

// Buffer#latin1Slice: what toString('latin1', start, end) calls, without its argument checks.
const latin1 = (buf: Buffer, start: number, end: number): string => (buf as Buffer & { latin1Slice(start: number, end: number): string }).latin1Slice(start, end);

/** `name` equals `lower` (lower-case ASCII) ignoring case, without allocating. */
function isName(name: string, lower: string): boolean {
  if (name.length !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    const c = name.charCodeAt(i);
    if ((c >= 0x41 && c <= 0x5a ? c + 0x20 : c) !== lower.charCodeAt(i)) return false;
  }
  return true;
}

function isOws(b: number): boolean {
  return b === SP || b === HTAB;
}

/** Splits a comma-separated field value into lower-cased, trimmed tokens (empty ones kept). */
function tokens(value: string): string[] {
  return value.split(',').map((t) => t.trim().toLowerCase());
}

/** Strict incremental parser of one connection's messages, one at a time. */
export class Http1Parser {
  readonly #kind: 'request' | 'response';
  readonly #maxHeadBytes: number;
  readonly #events: ParserEvents;
  #state: State = State.StartLine;
  /** A line begun in an earlier Buffer (copied: lines are small). */
  #partial: Buffer | undefined;
  #headBytes = 0;
  #head: MessageHead | undefined;
  #remaining = 0;
  #trailers: string[] | undefined;
  #transferEncodings = 0;
  #chunkedSeen = false;
  #connectionClose = false;
  #connectionKeepAlive = false;
  #connectionUpgrade = false;
  #upgradeField = false;
  /** The request line had no version (HTTP/0.9), the one line that may end in a bare LF. */
  #versionless = false;
  /** The last message said the connection closes after it. */
  #closed = false;
  /** Responses: the request was HEAD (no body whatever the fields say). */
  noBody = false;
  error: WireError | undefined;

  constructor(options: ParserOptions, events: ParserEvents) {
    this.#kind = options.kind;
    this.#maxHeadBytes = options.maxHeadBytes;
    this.#events = events;
  }

  /** True between messages: nothing of the next one has been read. */
  get idle(): boolean {
    return (this.#state === State.StartLine || this.#state === State.Done) && this.#partial === undefined && this.#headBytes === 0;
  }

  /**
   * Parses bytes; returns how many were consumed. Stops right after a complete message (the
   * caller passes the rest again when it is ready for the next). On a refusal returns -1 and
   * sets `error`.
   */
  execute(buf: Buffer, offset = 0): number {
    if (this.#state === State.Failed) return -1;
    if (this.#state === State.Done) this.#state = State.StartLine;
    let pos = offset;
    const end = buf.length;
    try {
      while (pos < end) {
        switch (this.#state) {
          case State.StartLine:
          case State.Fields:
          case State.ChunkSize:
          case State.Trailers: {
            // CR and LF bytes before a start line are skipped one by one, as llhttp does (RFC
            // 9112 2.2 allows at least one empty line there).
            if (this.#state === State.StartLine && this.#partial === undefined) {
              while (pos < end && (buf[pos] === CR || buf[pos] === LF)) pos++;
              if (pos === end) return end - offset;
            }
            const lf = buf.indexOf(LF, pos);
            if (lf === -1) {
              this.#keepPartial(buf, pos, end);
              return end - offset;
            }
            this.#line(buf, pos, lf);
            pos = lf + 1;
            if ((this.#state as State) === State.Done) return pos - offset;
            break;
          }
          case State.BodyLength:
          case State.ChunkData: {
            const take = Math.min(this.#remaining, end - pos);
            this.#remaining -= take;
            this.#events.onBody(pos === 0 && take === end ? buf : buf.subarray(pos, pos + take));
            pos += take;
            if (this.#remaining === 0) {
              if (this.#state === State.ChunkData) this.#state = State.ChunkDataEnd;
              else {
                this.#complete(undefined);
                return pos - offset;
              }
            }
            break;
          }
          case State.ChunkDataEnd: {
            // Exactly CRLF after chunk data (the CR may end one Buffer and the LF start the next).
            const b = buf[pos]!;
            if (this.#remaining === 0) {
              if (b !== CR) throw new WireError('INVALID_CHUNK', 'expected CRLF after chunk data');
              this.#remaining = 1;
            } else {
              if (b !== LF) throw new WireError('INVALID_CHUNK', 'expected LF after chunk data');
              this.#remaining = 0;
              this.#state = State.ChunkSize;
            }
            pos += 1;
            break;
          }
          case State.BodyUntilClose:
            this.#events.onBody(pos === 0 ? buf : buf.subarray(pos));
            return end - offset;
          default:
            return pos - offset;
        }
      }
    } catch (err) {
      if (!(err instanceof WireError)) throw err;
      this.error = err;
      this.#state = State.Failed;
      return -1;
    }
    return end - offset;
  }

  /** The connection ended: completes a body read until close; an error if a message was cut. */
  finish(): WireError | undefined {
    if (this.#state === State.BodyUntilClose) {
      this.#complete(undefined);
      return undefined;
    }
    if (this.#state === State.Failed) return this.error;
    if (this.idle) return undefined;
    return new WireError('INCOMPLETE', 'the connection closed in the middle of a message');
  }

  #keepPartial(buf: Buffer, start: number, end: number): void {
    const piece = buf.subarray(start, end);
    this.#partial = this.#partial ? Buffer.concat([this.#partial, piece]) : Buffer.from(piece);
    this.#count(end - start);
  }

  #count(bytes: number): void {
    this.#headBytes += bytes;
    if (this.#headBytes > this.#maxHeadBytes) throw new WireError('HEADERS_TOO_LARGE', 'the message head is larger than the server accepts', 431);
  }

  /** One complete line: [start, lf) of buf, after the partial line kept so far. */
  #line(buf: Buffer, start: number, lf: number): void {
    let line: Buffer;
    let from: number;
    let to: number;
    if (this.#partial) {
      this.#count(lf - start);
      line = Buffer.concat([this.#partial, buf.subarray(start, lf)]);
      this.#partial = undefined;
      from = 0;
      to = line.length;
    } else {
      this.#count(lf - start + 1);
      line = buf;
      from = start;
      to = lf;
    }
    // (llhttp lets a versionless HTTP/0.9 request line end in a bare LF; only that.)
    const bareLf = to === from || line[to - 1] !== CR;
    if (bareLf && !(this.#state === State.StartLine && this.#kind === 'request')) throw new WireError('LF_WITHOUT_CR', 'a line ends in LF without CR');
    if (!bareLf) to -= 1;
    switch (this.#state) {
      case State.StartLine:
        // Empty lines before a start line are skipped (RFC 9112 2.2).
        if (to === from) {
          this.#headBytes = 0;
          return;
        }
        // After a message that closes the connection, only those may follow (llhttp: HPE_CLOSED_CONNECTION).
        if (this.#closed) throw new WireError('DATA_AFTER_CLOSE', 'data after a message that closes the connection');
        this.#startHead();
        if (this.#kind === 'request') {
          this.#requestLine(line, from, to);
          if (bareLf && !this.#versionless) throw new WireError('LF_WITHOUT_CR', 'a line ends in LF without CR');
        }
        else this.#statusLine(line, from, to);
        this.#state = State.Fields;
        return;
      case State.Fields:
        if (to === from) return this.#headComplete();
        return this.#field(line, from, to, this.#head!.fields, true);
      case State.ChunkSize:
        return this.#chunkSize(line, from, to);
      case State.Trailers:
        if (to === from) return this.#complete(this.#trailers);
        this.#trailers ??= [];
        return this.#field(line, from, to, this.#trailers, false);
    }
  }

  #startHead(): void {
    this.#head = { method: '', target: '', versionMajor: 1, versionMinor: 1, status: 0, fields: [], contentLength: -1, chunked: false, keepAlive: false, upgrade: false, expect: undefined, hasHost: false };
    this.#transferEncodings = 0;
    this.#chunkedSeen = false;
    this.#connectionClose = false;
    this.#connectionKeepAlive = false;
    this.#connectionUpgrade = false;
    this.#upgradeField = false;
    this.#trailers = undefined;
  }

  #requestLine(line: Buffer, from: number, to: number): void {
    const head = this.#head!;
    let i = from;
    while (i < to && line[i] !== SP) i++;
    const method = latin1(line, from, i);
    if (!METHODS.has(method)) throw new WireError('INVALID_METHOD', 'unknown or malformed method');
    if (i === to) throw new WireError('INVALID_METHOD', 'expected a space after the method');
    while (i < to && line[i] === SP) i++;
    const targetStart = i;
    while (i < to && line[i] !== SP) {
      if (TARGET[line[i]!] === 0) throw new WireError('INVALID_TARGET', 'invalid character in the request target');
      i++;
    }
    if (i === targetStart) throw new WireError('INVALID_TARGET', 'empty request target');
    const target = latin1(line, targetStart, i);
    if (!validTarget(target, method)) throw new WireError('INVALID_TARGET', 'malformed request target');
    // No version at all is an HTTP/0.9 simple request, as llhttp reads it (the engine hands
    // any version but 1.0 and 1.1 to Node's server).
    this.#versionless = i === to;
    if (i === to) {
      this.#head!.versionMajor = 0;
      this.#head!.versionMinor = 9;
    } else {
      while (i < to && line[i] === SP) i++;
      this.#version(line, i, to);
    }
    head.method = method;
    head.target = target;
  }

  #statusLine(line: Buffer, from: number, to: number): void {
    const head = this.#head!;
    if (to - from < 12 || line[from + 8] !== SP) throw new WireError('INVALID_STATUS_LINE', 'malformed status line');
    this.#version(line, from, from + 8);
    let status = 0;
    for (let i = from + 9; i < from + 12; i++) {
      const d = line[i]! - 0x30;
      if (d < 0 || d > 9) throw new WireError('INVALID_STATUS', 'the status is not three digits');
      status = status * 10 + d;
    }
    if (to > from + 12) {
      if (line[from + 12] !== SP) throw new WireError('INVALID_STATUS', 'expected a space after the status');
      for (let i = from + 13; i < to; i++) if (REASON[line[i]!] === 0) throw new WireError('INVALID_STATUS_LINE', 'invalid character in the reason phrase');
    }
    head.status = status;
  }

  /** `HTTP/x.y` at [from, to): 1.0, 1.1, and the 0.9 and 2.0 llhttp also lets through. */
  #version(line: Buffer, from: number, to: number): void {
    if (to - from !== 8 || latin1(line, from, from + 5) !== 'HTTP/' || line[from + 6] !== 0x2e) throw new WireError('INVALID_VERSION', 'malformed HTTP version');
    const major = line[from + 5]! - 0x30;
    const minor = line[from + 7]! - 0x30;
    const known = (major === 1 && (minor === 0 || minor === 1)) || (major === 0 && minor === 9) || (major === 2 && minor === 0);
    if (!known) throw new WireError('INVALID_VERSION', 'unsupported HTTP version');
    this.#head!.versionMajor = major;
    this.#head!.versionMinor = minor;
  }

  /** One `name: value` line at [from, to) of line. */
  #field(line: Buffer, from: number, to: number, into: string[], inHead: boolean): void {
    const first = line[from]!;
    if (isOws(first)) throw new WireError('OBS_FOLD', 'a field line starts with whitespace (obs-fold)');
    let i = from;
    while (i < to && TOKEN[line[i]!] === 1) i++;
    if (i === from || i === to || line[i] !== COLON) throw new WireError('INVALID_FIELD_NAME', 'invalid field name');
    const nameEnd = i;
    i++;
    while (i < to && isOws(line[i]!)) i++;
    const valueStart = i;
    let valueEnd = i;
    for (; i < to; i++) {
      const b = line[i]!;
      if (FIELD_VALUE[b] === 0) throw new WireError('INVALID_FIELD_VALUE', 'invalid character in a field value');
      if (!isOws(b)) valueEnd = i + 1;
    }
    const name = latin1(line, from, nameEnd);
    const value = latin1(line, valueStart, valueEnd);
    into.push(name, value);
    if (inHead) this.#special(name, value);
  }

  /** The fields that decide framing and the connection. */
  #special(name: string, value: string): void {
    const head = this.#head!;
    switch (name.length) {
      case 4:
        if (isName(name, 'host')) head.hasHost = true;
        return;
      case 6:
        if (isName(name, 'expect')) head.expect = value;
        return;
      case 7:
        if (isName(name, 'upgrade')) this.#upgradeField = true;
        return;
      case 10:
        if (!isName(name, 'connection')) return;
        if (value.length === 10 && isName(value, 'keep-alive')) {
          this.#connectionKeepAlive = true;
          return;
        }
        for (const token of tokens(value)) {
          if (token === 'close') this.#connectionClose = true;
          else if (token === 'keep-alive') this.#connectionKeepAlive = true;
          else if (token === 'upgrade') this.#connectionUpgrade = true;
        }
        return;
      case 14: {
        if (!isName(name, 'content-length')) return;
        if (head.contentLength !== -1) throw new WireError('DUPLICATE_CONTENT_LENGTH', 'more than one Content-Length');
        if (value.length === 0 || value.length > MAX_LENGTH_DIGITS) throw new WireError('INVALID_CONTENT_LENGTH', 'invalid Content-Length');
        let n = 0;
        for (let k = 0; k < value.length; k++) {
          const d = value.charCodeAt(k) - 0x30;
          if (d < 0 || d > 9) throw new WireError('INVALID_CONTENT_LENGTH', 'invalid Content-Length');
          n = n * 10 + d;
        }
        head.contentLength = n;
        return;
      }
      case 17: {
        if (!isName(name, 'transfer-encoding')) return;
        this.#transferEncodings += 1;
        // "chunked" must be a request's final coding: anything after it (even an empty token) is
        // refused. A response's framing is chunked when its last coding is (else: until close).
        for (const token of tokens(value)) {
          if (this.#chunkedSeen && this.#kind === 'request') throw new WireError('INVALID_TRANSFER_ENCODING', 'a transfer coding follows chunked');
          this.#chunkedSeen = token === 'chunked';
        }
        return;
      }
    }
  }

  #headComplete(): void {
    const head = this.#head!;
    head.chunked = this.#chunkedSeen;
    if (this.#transferEncodings > 0 && head.contentLength !== -1) throw new WireError('CONTENT_LENGTH_WITH_TRANSFER_ENCODING', 'Transfer-Encoding with Content-Length');
    const isRequest = this.#kind === 'request';
    head.upgrade = isRequest ? (this.#connectionUpgrade && this.#upgradeField) || head.method === 'CONNECT' : head.status === 101;
    // (llhttp lets an upgrade request's other codings through: its body is then empty.)
    if (isRequest && this.#transferEncodings > 0 && !head.chunked && !head.upgrade) throw new WireError('INVALID_TRANSFER_ENCODING', 'the final transfer coding of a request is not chunked');
    const noBody = isRequest ? false : this.noBody || head.status === 204 || head.status === 304 || (head.status >= 100 && head.status < 200);
    // llhttp's should_keep_alive: HTTP/1.1 (and x.y with both above 0) unless close; 1.0, 0.9 and
    // 2.0 only with keep-alive; never when the body runs until the connection closes.
    const untilClose = !isRequest && !noBody && !head.chunked && head.contentLength === -1;
    const v11 = head.versionMajor > 0 && head.versionMinor > 0;
    head.keepAlive = !untilClose && (v11 ? !this.#connectionClose : this.#connectionKeepAlive);
    this.#closed = !head.keepAlive;
    this.#headBytes = 0;
    this.#events.onHead(head);
    // An interim response (1xx) is a message of its own, followed by the real one. An upgrade's
    // bytes after its body (llhttp reads a body first) are not HTTP: the caller stops there.
    if (noBody || (head.upgrade && head.method === 'CONNECT')) return this.#complete(undefined);
    if (head.chunked) {
      this.#state = State.ChunkSize;
      this.#remaining = 0;
    } else if (head.contentLength > 0) {
      this.#state = State.BodyLength;
      this.#remaining = head.contentLength;
    } else if (head.contentLength === 0 || isRequest) {
      this.#complete(undefined);
    } else {
      this.#state = State.BodyUntilClose;
    }
  }

  /** `size[;ext[=value]]...` at [from, to). */
  #chunkSize(line: Buffer, from: number, to: number): void {
    let i = from;
    let size = 0;
    for (; i < to; i++) {
      const d = HEX[line[i]!]!;
      if (d === -1) break;
      if (i - from >= 13) throw new WireError('INVALID_CHUNK_SIZE', 'chunk size too large');
      size = size * 16 + d;
    }
    if (i === from) throw new WireError('INVALID_CHUNK_SIZE', 'invalid chunk size');
    while (i < to) {
      if (line[i] !== 0x3b) throw new WireError('INVALID_CHUNK_SIZE', 'invalid character after the chunk size');
      i++;
      while (i < to && TOKEN[line[i]!] === 1) i++;
      if (i < to && line[i] === 0x3d) {
        i++;
        if (i < to && line[i] === 0x22) i = quotedString(line, i, to);
        else while (i < to && TOKEN[line[i]!] === 1) i++;
      }
      if (i < to && line[i] !== 0x3b) throw new WireError('INVALID_CHUNK_EXTENSION', 'invalid character in a chunk extension');
    }
    this.#headBytes = 0;
    if (size === 0) {
      this.#state = State.Trailers;
      return;
    }
    this.#remaining = size;
    this.#state = State.ChunkData;
  }

  #complete(trailers: string[] | undefined): void {
    this.#state = State.Done;
    this.#headBytes = 0;
    const head = this.#head;
    this.#head = undefined;
    this.#trailers = undefined;
    if (head) this.#events.onComplete(trailers);
  }
}

/** The end of a quoted-string starting at line[i] === '"' (the index after the closing quote). */
function quotedString(line: Buffer, i: number, to: number): number {
  for (i++; i < to; i++) {
    const b = line[i]!;
    if (b === 0x22) return i + 1;
    if (b === 0x5c) {
      i++;
      if (i >= to || FIELD_VALUE[line[i]!] === 0) break;
    } else if (QDTEXT[b] === 0) break;
  }
  throw new WireError('INVALID_CHUNK_EXTENSION', 'invalid quoted chunk extension value');
}

/** origin-form `/...`, asterisk-form `*`, absolute-form `scheme://...`, authority-form for CONNECT. */
function validTarget(target: string, method: string): boolean {
  const first = target.charCodeAt(0);
  if (first === 0x2f) return true;
  if (target === '*') return true;
  // llhttp takes any target for CONNECT (the engine hands CONNECT to Node's server anyway).
  if (method === 'CONNECT') return true;
  return /^[A-Za-z]+:\/\//.test(target);
}
